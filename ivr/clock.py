"""Time as a collaborator. Pure logic takes `now` as an argument; long-running parts (dialer,
simulator, demo) get a Clock so that the demo can run a campaign on a fast clock."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Current time, timezone-aware UTC."""

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of this clock's time."""

    @property
    def speed(self) -> float:
        """How many clock seconds pass per real second."""


class SystemClock:
    speed = 1.0

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FastClock:
    """Runs `speed` times faster than real time from `start` (the demo's campaign clock)."""

    def __init__(self, start: dt.datetime, speed: float) -> None:
        if start.tzinfo is None:
            raise ValueError("FastClock start must be timezone-aware")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._start = start
        self._t0 = time.monotonic()
        self.speed = speed

    def now(self) -> dt.datetime:
        return self._start + dt.timedelta(seconds=(time.monotonic() - self._t0) * self.speed)

    def jump(self, delta: dt.timedelta) -> None:
        """Move the clock forward (skip a night in the demo)."""
        self._start += delta

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.speed)


class FixedClock:
    """For tests: time stands still until advanced."""

    speed = 1.0

    def __init__(self, now: dt.datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("FixedClock time must be timezone-aware")
        self._now = now

    def now(self) -> dt.datetime:
        return self._now

    def advance(self, delta: dt.timedelta) -> None:
        self._now += delta

    async def sleep(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=seconds)
        await asyncio.sleep(0)
