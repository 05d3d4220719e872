"""The running service watching itself: a heartbeat row every few seconds, and one log line a
minute saying what the robot does and, when it cannot call anyone, why.

Both run as one task on the service's event loop; database work goes to a thread so that calls
on the same loop are never held up by it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ivr import heartbeat
from ivr.clock import Clock
from ivr.dialer.outlook import Outlook, outlook
from ivr.dialer.policy import Rules

log = logging.getLogger(__name__)

GIST_EVERY = 60.0  # seconds between two status lines while there is work


class Monitor:
    def __init__(self, *, sessions: sessionmaker[Session], rules_loader: Callable[[Session], Rules], clock: Clock,
                 instance: str, role: str, info: Callable[[], dict[str, Any]],
                 beat_every: float = heartbeat.INTERVAL, gist_every: float = GIST_EVERY,
                 outlook_fn: Callable[[dt.datetime], Outlook] | None = None) -> None:
        self.sessions = sessions
        self.rules_loader = rules_loader
        self.clock = clock
        self.instance = instance
        self.role = role
        self.info = info
        self.beat_every = beat_every
        self.gist_every = gist_every
        self.started_at = dt.datetime.now(dt.UTC)
        self.last_outlook: Outlook | None = None
        self._idle_said: str | None = None
        # `ivr run`: the outlook is computed in another process (ivr.jobs.outlook_runner)
        self._outlook_fn = outlook_fn

    def outlook(self) -> Outlook:
        if self._outlook_fn is not None:
            return self._outlook_fn(self.clock.now())
        with self.sessions() as session:
            return outlook(session, self.rules_loader(session), self.clock.now())

    def _beat(self) -> None:
        heartbeat.beat(self.sessions, self.instance, self.role, self.info(), dt.datetime.now(dt.UTC),
                       started_at=self.started_at)

    async def _gist(self) -> None:
        try:
            self.last_outlook = await asyncio.to_thread(self.outlook)
            self.say(self.last_outlook)
        except Exception:  # noqa: BLE001
            log.exception("status line failed")

    def say(self, out: Outlook) -> None:
        """The minute line. While there is work: the gist; when nothing is callable, why, once
        per change (a quiet night is one line, not one a minute)."""
        info = self.info()
        lines = info.get("lines", {})
        health = (info.get("dialer") or {}).get("health") or {}
        used = ", ".join(f"{name} {v.get('in_use', 0)}/{v.get('limit', 0)}" for name, v in sorted(lines.items()))
        when, why = out.next_call
        if out.open_cases == 0:
            text = "nothing to call: no open debt case (import a billing file: ivr import accounts FILE)"
        elif health and not health.get("ok", True):
            text = (f"ALARM: dialling paused since {health.get('since')}: {health.get('reason')}; "
                    f"{out.gist()}")
        elif out.callable_now or out.in_flight:
            text = f"status: {out.gist()}; lines {used or 'none'}"
            self._idle_said = None
            log.info("%s", text)
            return
        else:
            nxt = f"next call {when.isoformat(timespec='minutes')} UTC: {why}" if when else "no call planned"
            text = f"nothing callable now ({out.open_cases} open cases: {out.gist()}); {nxt}"
        if text != self._idle_said:
            log.info("%s", text)
            self._idle_said = text

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_gist = loop.time() + min(5.0, self.gist_every)  # first line soon after start
        gist: asyncio.Task[None] | None = None
        while not stop.is_set():
            try:
                await asyncio.to_thread(self._beat)
            except Exception as exc:  # noqa: BLE001 - a missed beat must not stop the service
                log.warning("heartbeat not written: %s", exc)
            # the outlook may wait for the import process (busy with a long ladder pass): it runs
            # beside the beats, which must go on every second
            if loop.time() >= next_gist and (gist is None or gist.done()):
                next_gist = loop.time() + self.gist_every
                gist = asyncio.ensure_future(self._gist())
            try:
                await asyncio.wait_for(stop.wait(), self.beat_every)
            except TimeoutError:
                pass
        if gist is not None and not gist.done():
            gist.cancel()
        try:
            await asyncio.to_thread(heartbeat.stopped, self.sessions, self.instance, dt.datetime.now(dt.UTC))
        except Exception as exc:  # noqa: BLE001
            log.warning("heartbeat not marked stopped: %s", exc)
