"""Contact limits: calendar periods in the subscriber's local calendar AND rolling windows."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ivr.dialer.limits import limits_reopen_at, next_period_start, period_start, within_limits
from ivr.dialer.policy import Limit

UTC = dt.UTC
MSK = ZoneInfo("Europe/Moscow")
KYIV = ZoneInfo("Europe/Kyiv")


def at(tz: ZoneInfo, y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=tz).astimezone(UTC)


def test_period_arithmetic() -> None:
    day = dt.date(2026, 12, 31)  # Thursday
    assert period_start(day, "week") == dt.date(2026, 12, 28)
    assert next_period_start(day, "week") == dt.date(2027, 1, 4)
    assert period_start(day, "month") == dt.date(2026, 12, 1)
    assert next_period_start(day, "month") == dt.date(2027, 1, 1)
    assert next_period_start(dt.date(2026, 1, 31), "month") == dt.date(2026, 2, 1)
    assert next_period_start(day, "day") == dt.date(2027, 1, 1)


def test_one_answered_call_a_day_waits_24_hours() -> None:
    limits = [Limit("day", 1, "answered")]
    history = [(at(MSK, 2026, 3, 2, 10), True)]
    assert not within_limits(history, limits, at(MSK, 2026, 3, 2, 19), MSK)
    # a new local day, but less than 24 h: the rolling reading still forbids it
    assert not within_limits(history, limits, at(MSK, 2026, 3, 3, 9, 59), MSK)
    assert within_limits(history, limits, at(MSK, 2026, 3, 3, 10), MSK)
    assert limits_reopen_at(history, limits, at(MSK, 2026, 3, 2, 19), MSK) == at(MSK, 2026, 3, 3, 10)


def test_answered_limit_ignores_unanswered_attempts_but_attempt_limit_does_not() -> None:
    history = [(at(MSK, 2026, 3, 2, h), False) for h in (9, 10, 11)]
    now = at(MSK, 2026, 3, 2, 12)
    assert within_limits(history, [Limit("day", 1, "answered")], now, MSK)
    assert within_limits(history, [Limit("day", 4, "attempts")], now, MSK)
    assert not within_limits(history, [Limit("day", 3, "attempts")], now, MSK)


def test_day_is_the_local_date_even_when_it_has_25_hours() -> None:
    # Kyiv falls back on 25 Oct 2026: 00:10 and 23:50 local are 24 h 40 min apart, so a rolling
    # 24 h window would allow the second call; the local calendar day does not.
    limits = [Limit("day", 1, "attempts")]
    history = [(at(KYIV, 2026, 10, 25, 0, 10), False)]
    now = at(KYIV, 2026, 10, 25, 23, 50)
    assert now - history[0][0] > dt.timedelta(hours=24)
    assert not within_limits(history, limits, now, KYIV)
    assert limits_reopen_at(history, limits, now, KYIV) == at(KYIV, 2026, 10, 26, 0, 0)


def test_week_is_the_local_iso_week() -> None:
    # Mon 19 Oct 00:10 Kyiv is still Sunday 18 Oct in UTC; the ISO week Mon 19 - Sun 25 has 169 h.
    limits = [Limit("week", 1, "attempts")]
    first = at(KYIV, 2026, 10, 19, 0, 10)
    assert first.date() == dt.date(2026, 10, 18)
    history = [(first, False)]
    now = at(KYIV, 2026, 10, 25, 23, 50)
    assert now - first > dt.timedelta(days=7)  # rolling would allow it
    assert not within_limits(history, limits, now, KYIV)
    assert within_limits(history, limits, at(KYIV, 2026, 10, 26, 0, 0), KYIV)


def test_month_is_the_local_calendar_month() -> None:
    limits = [Limit("month", 1, "attempts")]
    first = at(KYIV, 2026, 10, 1, 0, 10)  # 30 Sep in UTC
    history = [(first, False)]
    now = at(KYIV, 2026, 10, 31, 23, 50)
    assert now - first > dt.timedelta(days=31)
    assert not within_limits(history, limits, now, KYIV)
    assert limits_reopen_at(history, limits, now, KYIV) == at(KYIV, 2026, 11, 1)


def test_rolling_week_reopens_when_the_oldest_call_leaves() -> None:
    limits = [Limit("week", 2, "answered")]
    history = [(at(MSK, 2026, 3, 2, 10), True), (at(MSK, 2026, 3, 3, 10), True)]
    now = at(MSK, 2026, 3, 4, 12)
    assert limits_reopen_at(history, limits, now, MSK) == at(MSK, 2026, 3, 9, 10)


def test_several_limits_take_the_latest_reopen() -> None:
    limits = [Limit("day", 4, "attempts"), Limit("day", 1, "answered"), Limit("week", 2, "answered")]
    history = [(at(MSK, 2026, 3, 2, 10), True), (at(MSK, 2026, 3, 3, 11), True), (at(MSK, 2026, 3, 4, 9), False)]
    now = at(MSK, 2026, 3, 4, 12)
    assert limits_reopen_at(history, limits, now, MSK) == at(MSK, 2026, 3, 9, 10)


def test_in_flight_attempts_count() -> None:
    # the loader passes in-flight attempts as answered: a call in progress blocks another
    history = [(at(MSK, 2026, 3, 2, 11, 59), True)]
    assert not within_limits(history, [Limit("day", 1, "answered")], at(MSK, 2026, 3, 2, 12), MSK)


def test_fail_closed() -> None:
    assert not within_limits([], [Limit("day", 0, "attempts")], at(MSK, 2026, 3, 2, 12), MSK)
    assert limits_reopen_at([], [Limit("day", 0, "attempts")], at(MSK, 2026, 3, 2, 12), MSK) is None
    assert not within_limits([], [Limit("day", 5, "attempts")], at(MSK, 2026, 3, 2, 12), "Nowhere/Land")
    assert within_limits([], [], at(MSK, 2026, 3, 2, 12), MSK)
    # naive times (as read from the database) are UTC
    naive = at(MSK, 2026, 3, 2, 10).replace(tzinfo=None)
    assert not within_limits([(naive, True)], [Limit("day", 1, "answered")], at(MSK, 2026, 3, 2, 12), MSK)
