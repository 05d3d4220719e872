"""Plain data exchanged between the AMI client, the dialer and the simulator."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class OriginateRequest:
    action_id: str  # ours, unique per attempt; also the IVR_CALL_ID channel variable
    channel: str  # e.g. "PJSIP/79161234567@debt-trunk"
    context: str
    exten: str
    priority: int = 1
    timeout_ms: int = 30000
    caller_id: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OriginateResult:
    """From `Event: OriginateResponse` (matched by ActionID)."""

    action_id: str
    success: bool
    reason: int  # Asterisk's originate reason: 4 answered, 5 busy, 3 no answer, 8 congestion, 0 failed
    channel: str
    uniqueid: str | None  # None when Asterisk says "<unknown>"
    result: str  # AttemptResult value: answered | busy | no_answer | congestion | failed


@dataclass(frozen=True)
class CallEnded:
    """From `Event: Hangup` of a channel that carried our IVR_CALL_ID."""

    call_id: str
    uniqueid: str
    channel: str
    cause: int
    cause_txt: str
    result: str  # AttemptResult value mapped from the cause
    agi_status: str | None = None  # AGISTATUS seen on the call's channels (e.g. FAILURE: AGI server down)


@dataclass(frozen=True)
class ChannelInfo:
    """A live channel found while reconciling (Status / CoreShowChannels)."""

    channel: str
    uniqueid: str
    call_id: str | None
    state: str
