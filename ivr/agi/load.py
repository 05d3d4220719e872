"""How well the FastAGI side is carrying its calls, measured where the calls run.

Two kinds of delay are the server's own, and both grow when the process is overloaded:

* **reply delay**: a reply line from Asterisk was read -> the script's next command was written;
* **first-command delay**: the environment block was complete -> the first command was written
  (the subscriber hears silence meanwhile: the worst symptom of an overloaded server).

`LoadMeter` keeps the most recent samples of both (a bounded ring, constant memory with thousands
of calls up) and the number of calls in progress; `snapshot()` is what the server publishes (in
its heartbeat, or directly to a dialer in the same process) and what the dialer's back-pressure
gate (ivr.dialer.backpressure) reads.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

# Enough samples for a stable p99 (a few seconds of traffic at 2,000 calls) and cheap to sort
# once a second; only samples of the last HORIZON seconds count, so a past spike does not keep the
# dialer slowed down once the server has caught up.
WINDOW = 2048
HORIZON = 5.0


@dataclass(frozen=True)
class LoadSnapshot:
    in_flight: int  # calls whose script is running
    p99_ms: float  # p99 of the recent reply and first-command delays (0 without samples)
    max_ms: float
    samples: int

    def as_dict(self) -> dict[str, float | int]:
        return {"in_flight": self.in_flight, "p99_ms": round(self.p99_ms, 2), "max_ms": round(self.max_ms, 2),
                "samples": self.samples}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> LoadSnapshot:
        return cls(in_flight=int(data.get("in_flight", 0)),  # type: ignore[call-overload]
                   p99_ms=float(data.get("p99_ms", 0.0)),  # type: ignore[arg-type]
                   max_ms=float(data.get("max_ms", 0.0)),  # type: ignore[arg-type]
                   samples=int(data.get("samples", 0)))  # type: ignore[call-overload]


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


class LoadMeter:
    """Delay samples (seconds) of the server's calls; `in_flight` is read from the server."""

    def __init__(self, in_flight: Callable[[], int] = lambda: 0, *, window: int = WINDOW, horizon: float = HORIZON,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.in_flight = in_flight
        self.horizon = horizon
        self._samples: deque[tuple[float, float]] = deque(maxlen=window)
        self.now = clock

    def record(self, delay: float, at: float | None = None) -> None:
        self._samples.append((self.now() if at is None else at, delay))

    def snapshot(self) -> LoadSnapshot:
        since = self.now() - self.horizon
        # deque.copy() runs in C under the GIL: safe while the server's loop appends (the
        # heartbeat may read this from a worker thread)
        values = [d for t, d in self._samples.copy() if t >= since]
        return LoadSnapshot(in_flight=self.in_flight(), p99_ms=p99(values) * 1e3,
                            max_ms=max(values, default=0.0) * 1e3, samples=len(values))
