"""Event-loop stall watchdog for the long-running processes (`ivr run`, `ivr agi-server`).

Every call of a process shares one event loop: anything that blocks it (a cold file read, a slow
synchronous query, a long computation, a thread holding the GIL) stops every call's next command
at once. Such stalls are invisible from inside the loop while they last, so a small thread watches
a heartbeat the loop sets every `tick` seconds; when the heartbeat is older than `threshold`, it
takes the loop thread's Python stack right then (where the loop is stuck, not where it was later)
and logs it, and logs the stall's full length when the loop turns again. The counts go into the
process's heartbeat, so `ivr status` shows them.

This is how the 0.1-1.6 s stalls in scripts/bench_run_upload.py were found (a manifest read on
the loop, waiting for the disk): without it they showed only as a bad turnaround p99.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

THRESHOLD = 0.25  # seconds without a loop turn that count as a stall (the call p99 bound is 10 ms)
TICK = 0.05
STACK_FRAMES = 12  # innermost frames logged


@dataclass
class Stall:
    started: float  # monotonic
    where: str  # innermost frame of the loop thread when the stall was seen: "file:line function"
    stack: str
    length: float = 0.0


class LoopWatch:
    """Start with `start()` from the loop's thread; `stop()` from anywhere."""

    def __init__(self, *, threshold: float = THRESHOLD, tick: float = TICK,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        if tick <= 0 or threshold <= tick:
            raise ValueError(f"loop watch: need 0 < tick ({tick}) < threshold ({threshold})")
        self.threshold = threshold
        self.tick = tick
        self._monotonic = monotonic
        self._wall = wall
        self._beat = monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.count = 0
        self.longest = 0.0
        self.last: Stall | None = None
        self.last_at: dt.datetime | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._heartbeat()
        self._thread = threading.Thread(target=self._watch, name="ivr-loop-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._timer is not None:
            self._timer.cancel()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def snapshot(self) -> dict[str, Any]:
        """For the process heartbeat: stalls so far, the longest, where the last one was."""
        return {"threshold_ms": round(self.threshold * 1000), "count": self.count,
                "longest_ms": round(self.longest * 1000),
                "last_at": None if self.last_at is None else self.last_at.isoformat(timespec="seconds"),
                "last_ms": None if self.last is None else round(self.last.length * 1000),
                "last_where": None if self.last is None else self.last.where}

    # -- on the loop ------------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        self._beat = self._monotonic()
        if not self._stopped.is_set() and self._loop is not None:
            self._timer = self._loop.call_later(self.tick, self._heartbeat)

    # -- on the watch thread ----------------------------------------------------------------------

    def _watch(self) -> None:
        current: Stall | None = None
        while not self._stopped.wait(self.tick / 2):
            beat = self._beat
            now = self._monotonic()
            if current is None:
                if now - beat > self.threshold:
                    current = self._seen(beat, now)
            elif beat > current.started:  # the loop turned again
                self._ended(current, beat)
                current = None

    def _seen(self, beat: float, now: float) -> Stall:
        frame = sys._current_frames().get(self._loop_thread or 0)
        frames = traceback.extract_stack(frame)[-STACK_FRAMES:] if frame is not None else []
        del frame
        where = f"{frames[-1].filename}:{frames[-1].lineno} {frames[-1].name}" if frames else "?"
        stack = "".join(traceback.format_list(frames)).rstrip()
        stall = Stall(started=beat, where=where, stack=stack)
        self.count += 1
        self.last, self.last_at = stall, self._wall()
        log.warning("event loop blocked for %.0f ms so far (every call of this process waits); the loop "
                    "thread is at %s:\n%s", (now - beat) * 1000, where, stack)
        return stall

    def _ended(self, stall: Stall, beat: float) -> None:
        # the heartbeat that ended the stall came up to one tick after the loop turned
        stall.length = max(0.0, beat - stall.started - self.tick)
        self.longest = max(self.longest, stall.length)
        log.warning("event loop blocked for %.0f ms in all (seen at %s)", stall.length * 1000, stall.where)
