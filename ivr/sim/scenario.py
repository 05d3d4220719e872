"""What a simulated callee does, and what the simulator records about each call.

A `ScenarioBook` maps the dialled number (digits only) to a `Callee`. The simulator asks it once
per Originate, so a book may be a plain dict's `__getitem__`, a default, or a random population
(ivr.sim.population).

Key presses are *reactive* by default: `keys[k]` answers the k-th input opportunity of the call,
whatever the robot's timing. An input opportunity is a command that listens for digits:
GET DATA, WAIT FOR DIGIT, GET OPTION, RECORD FILE, and STREAM FILE / CONTROL STREAM FILE / SAY *
with a non-empty escape-digit list. The press starts `delay` seconds after that command starts and
is sent like Asterisk's SendDTMF(digits,250,100): 100 ms per digit, 250 ms between digits, `w` is
a 0.5 s pause; a digit reaches the robot when it ends. Chosen behaviour (documented because real
people differ): if the command ends before the press is due, the press is NOT lost, it waits for
the next input opportunity; once the first digit is on its way the press is consumed, and its
later digits land on whatever command runs then (or are lost if none listens), exactly as on a
real line. While a press is still being sent, a new input opportunity does not take another key.

`timeline` is the transcript style instead: (seconds after answer, digits) sent regardless of
what the robot does; digits that land while no command listens are lost, as in
agi-dtmf-while-idle.txt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

OUTCOMES = ("answer", "busy", "no_answer", "congestion", "failed", "machine")
DTMF_CHARS = frozenset("0123456789*#ABCDw")


@dataclass
class KeyPress:
    digits: str  # e.g. "1", "2511", "" (press nothing at this input: let it time out)
    delay: float = 0.6  # seconds after the input-accepting command starts

    def __post_init__(self) -> None:
        bad = set(self.digits) - DTMF_CHARS
        if bad:
            raise ValueError(f"KeyPress digits may only hold 0-9 * # A-D w, got {sorted(bad)}")
        if self.delay < 0:
            raise ValueError("KeyPress delay must not be negative")


@dataclass
class Callee:
    outcome: str = "answer"  # answer | busy | no_answer | congestion | failed | machine
    answer_after: float = 2.0  # ring time before the outcome (answer, busy, congestion, failed)
    keys: list[KeyPress] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    hangup_after: float | None = None  # seconds after answer
    hangup_at_input: int | None = None  # hang up 0.5 s into the N-th input opportunity (1-based)
    # hang up 0.5 s into the N-th command that plays or listens (1-based), digits or not: a
    # hang-up during a plain playback such as a greeting, at a point set by the script's progress
    hangup_at_media: int | None = None
    language: str | None = None  # CHANNEL(language) of the call; None means Asterisk's "en"

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown Callee outcome {self.outcome!r}; use one of {OUTCOMES}")
        if self.answer_after < 0:
            raise ValueError("answer_after must not be negative")
        if self.hangup_after is not None and self.hangup_after < 0:
            raise ValueError("hangup_after must not be negative")
        if self.hangup_at_input is not None and self.hangup_at_input < 1:
            raise ValueError("hangup_at_input is 1-based")
        if self.hangup_at_media is not None and self.hangup_at_media < 1:
            raise ValueError("hangup_at_media is 1-based")
        for at, digits in self.timeline:
            if at < 0 or set(digits) - DTMF_CHARS:
                raise ValueError(f"bad timeline entry {(at, digits)!r}")

    @property
    def answers(self) -> bool:
        return self.outcome in ("answer", "machine")


ScenarioBook = Callable[[str], Callee]  # number (digits only) → behaviour


def book_from_mapping(mapping: Mapping[str, Callee], default: Callee | None = None) -> ScenarioBook:
    """A ScenarioBook over a dict; numbers not in it get `default` (a plain answering callee)."""
    fallback = default if default is not None else Callee()

    def book(number: str) -> Callee:
        return mapping.get(number, fallback)

    return book


@dataclass
class CallRecord:
    """What happened to one Originate. Times are the event loop's clock (real seconds);
    `duration` is in simulated seconds (real seconds x speed)."""

    action_id: str | None
    call_id: str | None  # the IVR_CALL_ID variable, if the Originate set it
    number: str
    requested_channel: str
    context: str
    outcome: str  # the Callee's outcome
    speed: float
    originated_at: float
    channel: str | None = None  # ";1" half, e.g. Local/79161234567@trunk-00000003;1
    uniqueid: str | None = None
    reason: int | None = None  # the OriginateResponse Reason
    answered_at: float | None = None
    ended_at: float | None = None
    hangup_cause: int | None = None  # cause of the ";1" half
    hangup_by: str | None = None  # callee | script | dialplan | ami | restart | network
    amd_status: str | None = None
    agi_route: str | None = None
    agi_status: str | None = None  # SUCCESS | FAILURE | HANGUP, like the AGISTATUS variable
    commands: list[str] = field(default_factory=list)  # AGI command lines, as received
    digits_delivered: str = ""  # digits a command accepted
    digits_lost: str = ""  # digits that reached the channel while nothing listened for them
    input_opportunities: int = 0

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def duration(self) -> float | None:
        """Simulated seconds from answer to the end of the call (None if never answered)."""
        if self.answered_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.answered_at) * self.speed
