"""Back-pressure from the FastAGI side: the dialer never originates more calls than the robot is
carrying well, so an overload lowers the dialling rate instead of the quality of the calls up.

The FastAGI server measures its own delays (ivr.agi.load: reply read -> next command written,
environment block -> first command written) and counts its calls in progress. The dialer keeps a
**window**, the number of calls it may have up at once, adjusted like TCP's congestion window:

* the recent p99 delay is above `target_ms`: the window shrinks to 70 % of the calls up
  (multiplicative decrease, at most once per `interval`): new originates stop until calls end;
* the p99 is below half the target and the window is nearly used: it grows by an eighth (at
  least `step`), so a healthy server is filled within a minute or so;
* never above `max_calls` (IVR_AGI_MAX_CALLS: a hard cap on calls on the FastAGI side).

Calls already up are never touched: only new originates wait. `Window` is pure (time is an
argument); `AgiGate` wires it to a load source (the server in this process, or the heartbeats
`ivr agi-server` processes publish) for the dialer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ivr.agi.load import LoadSnapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateSettings:
    max_calls: int = 2000  # hard cap on calls up on the FastAGI side (all its processes)
    target_ms: float = 100.0  # p99 of the server's own delay above which the dialer backs off
    # calls allowed before a delay over the target was measured; None = max_calls, so that
    # nothing changes for a server that keeps up (the channel limits and calls per second apply)
    start_window: int | None = None
    min_window: int = 2  # never below: calls keep being placed (slowly) so delays get measured
    step: int = 2  # least growth of the window per adjustment
    interval: float = 1.0  # seconds between two adjustments (a new measurement must come in)
    decrease: float = 0.7

    @classmethod
    def from_settings(cls, settings: Any) -> GateSettings:
        """IVR_AGI_MAX_CALLS and IVR_AGI_DELAY_TARGET_MS."""
        return cls(max_calls=int(settings.agi_max_calls), target_ms=float(settings.agi_delay_target_ms))


def combine(loads: Iterable[LoadSnapshot]) -> LoadSnapshot | None:
    """Several FastAGI processes (workers, hosts) as one: calls add up, the worst p99 counts."""
    loads = list(loads)
    if not loads:
        return None
    return LoadSnapshot(in_flight=sum(x.in_flight for x in loads), p99_ms=max(x.p99_ms for x in loads),
                        max_ms=max(x.max_ms for x in loads), samples=sum(x.samples for x in loads))


class Window:
    """The number of calls the dialer may have up at once (pure: `now` is given, in seconds)."""

    def __init__(self, settings: GateSettings, now: float) -> None:
        self.settings = settings
        start = settings.max_calls if settings.start_window is None else settings.start_window
        self.size = min(start, settings.max_calls)
        self.smallest = self.size
        self.decreases = 0
        self._adjusted_at = now

    def observe(self, load: LoadSnapshot, calls_up: int, now: float) -> None:
        """Adjust to a measurement; `calls_up` is what the dialer has up (ringing or answered)."""
        s = self.settings
        if now - self._adjusted_at < s.interval:
            return
        self._adjusted_at = now
        up = max(load.in_flight, calls_up)
        if load.samples and load.p99_ms > s.target_ms:
            new = max(s.min_window, int(min(self.size, up) * s.decrease))
            if new < self.size:
                log.warning("FastAGI p99 delay %.0f ms over the %.0f ms target with %d call(s) up: "
                            "dialling window %d -> %d", load.p99_ms, s.target_ms, up, self.size, new)
                self.size = new
                self.decreases += 1
                self.smallest = min(self.smallest, new)
        elif load.p99_ms <= s.target_ms / 2 and up >= self.size * 0.8:
            self.size = min(s.max_calls, self.size + max(s.step, self.size // 8))

    def allowance(self, load: LoadSnapshot | None, calls_up: int) -> int:
        """How many new originates may go out now."""
        up = max(calls_up, load.in_flight if load is not None else 0)
        return max(0, min(self.size, self.settings.max_calls) - up)


LoadSource = Callable[[], "LoadSnapshot | None | Awaitable[LoadSnapshot | None]"]


class AgiGate:
    """The dialer's view: `allowance(calls_up, now)` reads the load source and the window. With
    no measurement at all (an `ivr agi-server` that publishes none), only `max_calls` applies:
    whether the robot answers at all is ivr.dialer.health's job."""

    def __init__(self, settings: GateSettings, source: LoadSource, now: float) -> None:
        self.settings = settings
        self.source = source
        self.window = Window(settings, now)
        self.last: LoadSnapshot | None = None

    async def allowance(self, calls_up: int, now: float) -> int:
        got = self.source()
        load = await got if inspect.isawaitable(got) else got
        self.last = load  # type: ignore[assignment]
        if load is None:
            return max(0, self.settings.max_calls - calls_up)
        self.window.observe(load, calls_up, now)  # type: ignore[arg-type]
        return self.window.allowance(load, calls_up)  # type: ignore[arg-type]


# --- where the load comes from ------------------------------------------------------------------
AGI_ROLE = "agi"  # heartbeat role of `ivr agi-server` processes (each worker has its own row)
LOAD_FRESH = dt.timedelta(seconds=5)  # a load report older than this is not used
REMOTE_EVERY = 1.0  # seconds between two reads of the heartbeat table


def read_agi_loads(session: Session, now: dt.datetime) -> list[LoadSnapshot]:
    """The load every live `ivr agi-server` process published in its heartbeat (fresh ones only)."""
    from ivr import heartbeat

    out = []
    for peer in heartbeat.read(session, now, keep=LOAD_FRESH):
        if peer.role != AGI_ROLE or peer.stopped or now - peer.updated_at > LOAD_FRESH:
            continue
        data = (peer.info.get("agi") or {}).get("load")
        if isinstance(data, dict):
            out.append(LoadSnapshot.from_dict(data))
    return out


def load_source(sessions: sessionmaker[Session], local: Callable[[], LoadSnapshot] | None) -> LoadSource:
    """The FastAGI load the dialer sees: the server in this process (read directly) plus the
    `ivr agi-server` processes' heartbeats (read at most every REMOTE_EVERY seconds, in a
    worker thread: never a query on the event loop)."""
    state: dict[str, Any] = {"at": None, "remote": []}

    async def source() -> LoadSnapshot | None:
        now = time.monotonic()
        if state["at"] is None or now - state["at"] >= REMOTE_EVERY:
            state["at"] = now

            def read() -> list[LoadSnapshot]:
                with sessions() as session:
                    return read_agi_loads(session, dt.datetime.now(dt.UTC))

            try:
                state["remote"] = await asyncio.to_thread(read)
            except Exception:  # noqa: BLE001 - no reading is "no measurement", not a stopped dialer
                log.exception("reading the FastAGI load from the heartbeats failed")
                state["remote"] = []
        loads = list(state["remote"])
        if local is not None:
            loads.append(local())
        return combine(loads)

    return source
