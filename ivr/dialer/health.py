"""Is the robot side up? The dialer only dials while the FastAGI server answers (issue 15).

Two signals:

- a probe of the URL Asterisk will use (IVR_AGI_PUBLIC_URL): a TCP connect to its host and
  port, at most every `probe_interval` seconds of the clock. `hagi://` names a DNS SRV record
  that Asterisk resolves itself; it is not probed (the AGISTATUS signal still applies).
- the AGISTATUS of answered calls, from AMI: the dialplan runs AGI() and Asterisk sets
  AGISTATUS=FAILURE when it could not reach the FastAGI server (ami-agi-server-down.txt). After
  `failure_threshold` answered calls in a row whose script never ran, dialling pauses for
  `failure_pause` seconds even if our own probe connects (Asterisk's network path may differ
  from ours); then one call is tried again, and one more failure pauses again.

The state is `HealthState(ok, reason, since)`; a change is logged once, as an error when dialling
pauses ("ALARM") and as a warning when it resumes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from ivr import dialplan_vars
from ivr.clock import Clock

log = logging.getLogger(__name__)

DEFAULT_AGI_PORT = 4573
Probe = Callable[[], Awaitable[str | None]]  # None when healthy, else why not


@dataclass(frozen=True)
class HealthState:
    ok: bool
    reason: str
    since: dt.datetime


def tcp_probe(url: str, timeout: float = 2.0) -> Probe:
    """A probe that opens (and closes) a TCP connection to an agi:// URL's host and port."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()

    async def probe() -> str | None:
        if scheme == "hagi":
            return None  # DNS SRV: Asterisk picks the server; AGISTATUS tells us if it failed
        if scheme != "agi" or not parts.hostname:
            return f"FastAGI URL {url!r} is not agi://host[:port]"
        port = parts.port or DEFAULT_AGI_PORT
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), timeout)
        except (OSError, TimeoutError) as exc:
            return f"FastAGI server {parts.hostname}:{port} does not answer ({exc or type(exc).__name__})"
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return None

    return probe


class AgiHealth:
    def __init__(self, probe: Probe | None, clock: Clock, *, probe_interval: float = 5.0,
                 failure_threshold: int = 3, failure_pause: float = 60.0) -> None:
        self._probe = probe
        self.clock = clock
        self.probe_interval = probe_interval
        self.failure_threshold = max(1, failure_threshold)
        self.failure_pause = dt.timedelta(seconds=failure_pause)
        self.state = HealthState(True, "", clock.now())
        self._probed_at: dt.datetime | None = None
        self._probe_problem: str | None = None
        self._failures = 0  # answered calls in a row whose script never ran
        self._last_failure: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return self.state.ok

    async def check(self) -> HealthState:
        """Probe when due and return the current state (dial only when `.ok`)."""
        now = self.clock.now()
        due = self._probed_at is None or (now - self._probed_at).total_seconds() >= self.probe_interval
        if self._probe is not None and (due or not self.state.ok):
            self._probed_at = now
            try:
                self._probe_problem = await self._probe()
            except Exception as exc:  # noqa: BLE001 - a broken probe means "not known healthy"
                self._probe_problem = f"FastAGI probe failed: {exc!r}"
        self._update(now)
        return self.state

    def record_call(self, agi_status: str | None, script_ran: bool) -> None:
        """An answered call ended: did its script run? (AGISTATUS=FAILURE with no step: no.)"""
        now = self.clock.now()
        if agi_status == dialplan_vars.AGI_FAILURE and not script_ran:
            self._failures += 1
            self._last_failure = now
        elif script_ran:
            self._failures = 0
        self._update(now)

    def _update(self, now: dt.datetime) -> None:
        reason = self._probe_problem
        if reason is None and self._failures >= self.failure_threshold:
            assert self._last_failure is not None
            if now - self._last_failure < self.failure_pause:
                reason = (f"{self._failures} answered calls in a row got AGISTATUS=FAILURE (the robot's "
                          f"script never ran); pausing {self.failure_pause.total_seconds():.0f}s")
            else:
                self._failures = self.failure_threshold - 1  # try one call; one more failure pauses again
        ok = reason is None
        if ok != self.state.ok:
            if ok:
                log.warning("FastAGI healthy again: dialling resumes (was paused since %s: %s)",
                            self.state.since.isoformat(timespec="seconds"), self.state.reason)
            else:
                log.error("ALARM: dialling paused: %s", reason)
            self.state = HealthState(ok, reason or "", now)
        elif not ok and reason != self.state.reason:
            self.state = HealthState(False, reason or "", self.state.since)
