"""The forecast on the live page (issue 13): when today's plan finishes with the current lines and
with half and double as many, and the callbacks each queue should expect today and tomorrow.

The forecast reads every open case (ivr.forecast_db.plan_today checks each one the way the dialer
would), which takes seconds on a large base, so no page request ever computes it: the first
request starts a computation on a background thread and the page shows "being computed"; later
requests get the last result, and one older than FORECAST_TTL starts the next computation. At most
one computation runs at a time per web process.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from ivr.config import Settings
from ivr.dialer.windows import zone

log = logging.getLogger(__name__)

FORECAST_TTL = 120.0  # real seconds


class LiveForecast:
    """The last forecast of one web process, refreshed in the background."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings,
                 now: Callable[[], dt.datetime], *, ttl: float = FORECAST_TTL) -> None:
        self._sessions = sessions
        self._settings = settings
        self._now = now
        self._ttl = ttl
        self._lock = threading.Lock()
        self._data: dict[str, Any] | None = None
        self._made = float("-inf")
        self._running: threading.Thread | None = None
        self._error: str | None = None

    def current(self) -> dict[str, Any] | None:
        """The last forecast (None until the first one is made); starts a new one when stale."""
        with self._lock:
            stale = time.monotonic() - self._made >= self._ttl
            if stale and self._running is None:
                self._running = threading.Thread(target=self._compute, name="live-forecast", daemon=True)
                self._running.start()
            return self._data

    def wait(self, timeout: float) -> bool:
        """For tests and the first page of a fresh process: wait for a running computation."""
        thread = self._running
        if thread is not None:
            thread.join(timeout)
        return self._data is not None

    @property
    def error(self) -> str | None:
        return self._error

    def _compute(self) -> None:
        # imported here: the model and the case plan are only needed once a live page is open
        from ivr.dialer.policy import load_rules
        from ivr.forecast import default_what_if
        from ivr.forecast_db import SIMULATOR_LINES, forecast_json, lines_of

        started = time.monotonic()
        try:
            lines = lines_of(self._settings) or SIMULATOR_LINES
            with self._sessions() as session:
                data = forecast_json(session, load_rules(session, self._settings.default_timezone),
                                     self._now(), lines, default_what_if(lines))
            data = with_local_times(data, self._settings.default_timezone)
            with self._lock:
                self._data, self._made, self._error = data, time.monotonic(), None
            log.info("live forecast made in %.1f s", time.monotonic() - started)
        except Exception as exc:  # the page shows the failure; the next request tries again
            log.exception("live forecast failed")
            with self._lock:
                self._error = type(exc).__name__
                self._made = time.monotonic()
        finally:
            with self._lock:
                self._running = None


def with_local_times(data: dict[str, Any], tz_name: str) -> dict[str, Any]:
    """Adds `finish_local` (HH:MM, or the date too when not today) in the company's time zone to
    the forecast and to each what-if row, so the page never shows a bare UTC instant."""
    tz = zone(tz_name) or ZoneInfo("UTC")
    at = _parse(data.get("at"))
    today = at.astimezone(tz).date() if at is not None else None

    def local(value: str | None) -> str | None:
        when = _parse(value)
        if when is None:
            return None
        moment = when.astimezone(tz)
        return moment.strftime("%H:%M") if moment.date() == today else moment.strftime("%d.%m %H:%M")

    out = dict(data)
    out["finish_local"] = local(data.get("finish"))
    out["opens_local"] = local(data.get("opens"))
    out["by_lines"] = [{**row, "finish_local": local(row.get("finish"))} for row in data.get("by_lines", [])]
    out["time_zone"] = tz_name
    return out


def _parse(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    when = dt.datetime.fromisoformat(value)
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
