"""Pacing: a calls-per-second cap and the channel limit of each Asterisk server.

Both run on the injected clock, so the demo's fast clock and the tests' fixed clock pace the same
way as real time.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Mapping

from ivr.clock import Clock

log = logging.getLogger(__name__)


class TokenBucket:
    """At most `rate` originates per second, with bursts of at most `burst` (default 1: calls are
    spaced 1/rate apart, which is what trunks and carriers want)."""

    def __init__(self, rate: float, clock: Clock, burst: float = 1.0) -> None:
        if rate <= 0:
            raise ValueError("calls per second must be positive")
        self.rate = rate
        self.burst = max(1.0, burst)
        self._clock = clock
        self._tokens = self.burst
        self._last = clock.now()

    def _refill(self) -> None:
        now = self._clock.now()
        elapsed = (now - self._last).total_seconds()
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._last = max(self._last, now)

    def wait_time(self) -> float:
        """Seconds (of the clock) until one token is available."""
        self._refill()
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.rate

    def try_take(self) -> bool:
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def take(self) -> None:
        """Wait (on the clock) for a token and take it."""
        while not self.try_take():
            await self._clock.sleep(self.wait_time())


class LinePool:
    """Lines in use per server: ours (by action id) plus those other dialers use (from the DB)."""

    def __init__(self, limits: Mapping[str, int]) -> None:
        self.limits = dict(limits)
        self._ours: dict[str, str] = {}  # action_id -> server
        self._reserved: Counter[str] = Counter()  # reserved for a claim in progress
        self._external: Counter[str] = Counter()

    def ours(self, server: str) -> int:
        return sum(1 for s in self._ours.values() if s == server) + self._reserved[server]

    def in_use(self, server: str) -> int:
        return self.ours(server) + self._external[server]

    def free(self, server: str) -> int:
        return max(0, self.limits.get(server, 0) - self.in_use(server))

    def total_free(self, servers: Collection[str]) -> int:
        return sum(self.free(s) for s in servers)

    def sync(self, in_flight_by_server: Mapping[str | None, int]) -> None:
        """Lines in flight per server as the database sees them (all dialers, ours included)."""
        self._external = Counter({
            server: max(0, count - self.ours(server))
            for server, count in in_flight_by_server.items()
            if server is not None
        })

    def reserve(self, servers: Collection[str]) -> str | None:
        """The allowed server with the most free lines (ties by name), reserved; None if full."""
        best = max(sorted(servers), key=self.free, default=None)
        if best is None or self.free(best) <= 0:
            return None
        self._reserved[best] += 1
        return best

    def cancel(self, server: str) -> None:
        if self._reserved[server] > 0:
            self._reserved[server] -= 1

    def attach(self, server: str, action_id: str) -> None:
        """The reservation became an attempt."""
        self.cancel(server)
        self._ours[action_id] = server

    def release(self, action_id: str) -> str | None:
        """The attempt ended; its line is free. Unknown ids (another dialer's) are ignored."""
        return self._ours.pop(action_id, None)

    def forget_except(self, alive: Collection[str]) -> None:
        """Drop our lines whose attempts are no longer in flight (finished elsewhere)."""
        for action_id in [a for a in self._ours if a not in alive]:
            del self._ours[action_id]

    def our_ids(self) -> frozenset[str]:
        """Action ids of our attempts holding lines (reconcile: what this process made)."""
        return frozenset(self._ours)

    def server_of(self, action_id: str) -> str | None:
        return self._ours.get(action_id)

    def holds(self, action_id: str) -> bool:
        return action_id in self._ours
