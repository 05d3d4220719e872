"""Rate-limited warnings for events a hostile or broken peer can repeat at will (refused
connections, bad environment blocks, stray lines, replayed call ids).

One line per kind of event per interval, with the count of the ones held back since the last line:
thousands of bad connections a second must not turn into thousands of log lines (a flood of ~1,100
newline-only connections once wrote 73,680 lines in 10 s and buried the one warning that mattered).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

_ALL: list[RateLimitedLog] = []


def reset_all() -> None:
    """Forget what every limiter has written (tests that read the log start from a clean slate)."""
    for limiter in _ALL:
        limiter.reset()


class RateLimitedLog:
    """``warning(key, msg, *args)`` logs at most once per `interval` seconds per `key`."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()  # the call script's route runs on the loop, its DB work in threads
        _ALL.append(self)

    def reset(self) -> None:
        with self._lock:
            self._last.clear()
            self._held.clear()

    def warning(self, key: str, msg: str, *args: object) -> bool:
        """True if the line was written, False if it was counted and held back."""
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
            if len(self._last) > 1024:  # keys are a handful of event kinds; bound them anyway
                self._last = {key: now}
        if held:
            self._log.warning(msg + " (and %d more like it in the last %.0fs)", *args, held, self.interval)
        else:
            self._log.warning(msg, *args)
        return True
