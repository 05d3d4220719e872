"""Contact limits per person (= account), across all numbers and stages.

A limit "N calls per day/week/month" is enforced in BOTH readings, whichever is stricter at
the moment:

- calendar periods in the subscriber's local calendar: day = local date, week = ISO week
  (Monday 00:00 local), month = calendar month;
- rolling windows ending now: day = 24 h, week = 7 days, month = 31 days.

Regulators word limits as "per day/week/month" (230-FZ: "не более одного раза в сутки"), which
can be read either way; satisfying both means we comply with either reading. The cost is a few
calls less (after a call at 18:00 the next one with a 1/day limit waits until 18:00 tomorrow).

`counts = attempts` counts every originate (in-flight ones included); `counts = answered`
counts calls that were picked up. The history passed in says which ones were answered; the
loader (selector/claims) marks in-flight and lost attempts as answered to stay conservative.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

from ivr.dialer.policy import Limit
from ivr.dialer.windows import local_midnight_utc, to_utc, zone

log = logging.getLogger(__name__)

UTC = dt.UTC
ROLLING = {"day": dt.timedelta(days=1), "week": dt.timedelta(days=7), "month": dt.timedelta(days=31)}
# How far back a history must reach to evaluate every limit (a local month can start 31 days
# and up to ~26 hours of UTC offset ago).
HISTORY_LOOKBACK = dt.timedelta(days=33)

History = Sequence[tuple[dt.datetime, bool]]  # (attempt time, answered)


def period_start(local_date: dt.date, period: str) -> dt.date:
    if period == "day":
        return local_date
    if period == "week":
        return local_date - dt.timedelta(days=local_date.weekday())
    if period == "month":
        return local_date.replace(day=1)
    raise ValueError(f"unknown period {period!r}")


def next_period_start(local_date: dt.date, period: str) -> dt.date:
    if period == "day":
        return local_date + dt.timedelta(days=1)
    if period == "week":
        return period_start(local_date, "week") + dt.timedelta(days=7)
    if period == "month":
        first = local_date.replace(day=1)
        return (first + dt.timedelta(days=32)).replace(day=1)
    raise ValueError(f"unknown period {period!r}")


def _counted(history: Iterable[tuple[dt.datetime, bool]], limit: Limit) -> list[dt.datetime]:
    return sorted(to_utc(t) for t, answered in history if limit.counts == "attempts" or answered)


def _reopen_one(times: list[dt.datetime], limit: Limit, now: dt.datetime, tz: ZoneInfo) -> dt.datetime | None:
    """When this limit allows a call again: `now` if it does now, None if never (max_calls 0)."""
    if limit.max_calls <= 0:
        return None
    reopen = now
    # calendar period in local time
    today = now.astimezone(tz).date()
    start = local_midnight_utc(period_start(today, limit.period), tz)
    in_period = [t for t in times if t >= start]
    if len(in_period) >= limit.max_calls:
        reopen = max(reopen, local_midnight_utc(next_period_start(today, limit.period), tz))
    # rolling window ending now; the oldest entries must leave it until fewer than max remain
    length = ROLLING[limit.period]
    in_window = [t for t in times if t > now - length]
    excess = len(in_window) - limit.max_calls
    if excess >= 0:
        reopen = max(reopen, in_window[excess] + length)
    return reopen


def limits_reopen_at(
    history: History, limits: Sequence[Limit], now_utc: dt.datetime, tz: str | ZoneInfo
) -> dt.datetime | None:
    """Earliest UTC instant >= now at which every limit allows one more call.

    Returns `now_utc` when a call is allowed now and None when never (unknown zone, a limit of
    zero calls). With no new calls, each limit only loosens over time, so the answer is the
    latest of the per-limit reopen times.
    """
    zone_info = zone(tz) if isinstance(tz, str) else tz
    if zone_info is None:
        return None
    now = to_utc(now_utc)
    reopen = now
    try:
        for limit in limits:
            one = _reopen_one(_counted(history, limit), limit, now, zone_info)
            if one is None:
                return None
            reopen = max(reopen, one)
    except Exception:  # noqa: BLE001 - fail closed
        log.exception("contact limit evaluation failed")
        return None
    return reopen


def within_limits(
    history: History, limits: Sequence[Limit], now_utc: dt.datetime, tz: str | ZoneInfo
) -> bool:
    """May the person be called once more at `now_utc`? (fails closed)"""
    reopen = limits_reopen_at(history, limits, now_utc, tz)
    return reopen is not None and reopen <= to_utc(now_utc)
