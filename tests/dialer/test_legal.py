"""The legal-hours guard: parsing, clipping, and the dialer never calling outside the limits
whatever the windows say (time is always an argument)."""

from __future__ import annotations

import datetime as dt

import pytest

from ivr.dialer.legal import (
    CLOSED,
    LegalHours,
    format_range,
    legal_hours_from_options,
    parse_clock,
    parse_range,
    window_problem,
)
from ivr.dialer.windows import is_callable, next_window_start, stage_next_window, stage_window_open
from tests.dialer.conftest import STAGE, make_rules

MSK = dt.timezone(dt.timedelta(hours=3))
# Sunday 23 November 2025 and Monday 24 November 2025 (no Russian public holiday)
SUNDAY = dt.date(2025, 11, 23)
MONDAY = dt.date(2025, 11, 24)
WIDE_OPEN = {d: [(0, 24)] for d in range(8)}  # an admin's window that says "any time"


def never_holiday(day: dt.date) -> bool:
    return False


@pytest.mark.parametrize(("raw", "expected"), [
    ("9-13", (540, 780)), ("9:00-13:00", (540, 780)), ("09:00-13:00", (540, 780)), (" 9 – 13:30 ", (540, 810)),
    ("8:00-24:00", (480, 1440)), ("8-0:00", (480, 1440)),
])
def test_ranges_in_every_accepted_spelling(raw: str, expected: tuple[int, int]) -> None:
    assert parse_range(raw) == expected


@pytest.mark.parametrize("raw", ["", "9", "13-9", "9-9", "25-26", "9:60-10", "nine-ten", "9-13-15", "24-24"])
def test_malformed_ranges_are_refused(raw: str) -> None:
    assert parse_range(raw) is None


def test_clock_end_of_day_only_as_end() -> None:
    assert parse_clock("24:00") is None
    assert parse_clock("24:00", end=True) == 1440
    assert parse_clock("0:00") == 0


def test_weekends_and_holidays_take_the_weekend_limit() -> None:
    legal = LegalHours()
    assert legal.for_day(0, False) == (480, 1320)
    assert legal.for_day(5, False) == (540, 1200)
    assert legal.for_day(6, False) == (540, 1200)
    assert legal.for_day(2, True) == (540, 1200)  # a public holiday on a Wednesday
    assert legal.clip([(0, 600), (700, 1440)], 6, False) == [(540, 600), (700, 1200)]
    assert legal.clip([(0, 500)], 6, False) == []


def test_unreadable_options_close_the_days() -> None:
    legal = legal_hours_from_options({"legal_hours_weekday": "8-22", "legal_hours_weekend": "garbage"})
    assert legal.weekday == (480, 1320)
    assert legal.weekend is None
    assert legal.clip([(600, 700)], 6, False) == []
    assert legal_hours_from_options({}) == LegalHours()
    assert legal_hours_from_options({"legal_hours_weekday": 8}).weekday is None


def test_window_problem_names_the_broken_limit() -> None:
    legal = LegalHours()
    assert window_problem(6 * 60, 23 * 60 + 30, 6, legal) == (540, 1200)
    assert format_range(window_problem(6 * 60, 23 * 60 + 30, 6, legal) or (0, 0)) == "09:00-20:00"
    assert window_problem(8 * 60, 22 * 60, 0, legal) is None
    assert window_problem(8 * 60, 21 * 60, 7, legal) == (540, 1200)  # the holiday row
    assert window_problem(600, 700, 1, CLOSED) == (0, 0)


def test_dialer_never_calls_outside_the_limits_whatever_the_windows_say() -> None:
    rules = make_rules(days=WIDE_OPEN)
    stage_open = dict(rules=rules, stage=STAGE, tz_name="Europe/Moscow", country="RU")
    # Sunday 06:00 Moscow: the window says yes, the law says no
    assert not stage_window_open(**stage_open, now_utc=dt.datetime(2025, 11, 23, 3, 0, tzinfo=dt.UTC))
    # Sunday 09:00 Moscow opens, 20:00 closes
    assert stage_window_open(**stage_open, now_utc=dt.datetime(2025, 11, 23, 6, 0, tzinfo=dt.UTC))
    assert not stage_window_open(**stage_open, now_utc=dt.datetime(2025, 11, 23, 17, 0, tzinfo=dt.UTC))
    # Monday 08:00 opens; 22:00 closes
    assert stage_window_open(**stage_open, now_utc=dt.datetime(2025, 11, 24, 5, 0, tzinfo=dt.UTC))
    assert not stage_window_open(**stage_open, now_utc=dt.datetime(2025, 11, 24, 19, 0, tzinfo=dt.UTC))
    # the next start from Sunday 06:00 is Sunday 09:00, not "now"
    nxt = stage_next_window(**stage_open, now_utc=dt.datetime(2025, 11, 23, 3, 0, tzinfo=dt.UTC))
    assert nxt == dt.datetime(2025, 11, 23, 6, 0, tzinfo=dt.UTC)


def test_narrowed_limits_cut_the_windows_and_a_required_hour_outside_never_opens() -> None:
    legal = LegalHours(weekday=(10 * 60, 12 * 60), weekend=None)
    windows = make_rules(days=WIDE_OPEN).profile("default")
    at = dt.datetime.combine(MONDAY, dt.time(9, 30), tzinfo=MSK)
    assert not is_callable(at, windows, never_holiday, "as_weekend", legal=legal)
    assert is_callable(at.replace(hour=10), windows, never_holiday, "as_weekend", legal=legal)
    # a stage that insists on 07:00 never calls: the required hour lies outside the limits
    assert next_window_start(at.astimezone(dt.UTC), "Europe/Moscow", windows, never_holiday, "as_weekend",
                             required_hour=7, legal=legal) is None
    # weekends closed entirely: from Saturday the next start is Monday 10:00
    saturday = dt.datetime.combine(dt.date(2025, 11, 22), dt.time(12, 0), tzinfo=MSK)
    nxt = next_window_start(saturday.astimezone(dt.UTC), "Europe/Moscow", windows, never_holiday, "as_weekend",
                            legal=legal)
    assert nxt == dt.datetime.combine(MONDAY, dt.time(10, 0), tzinfo=MSK).astimezone(dt.UTC)


def test_holiday_on_a_weekday_keeps_the_weekend_limit_even_as_weekday() -> None:
    windows = make_rules(days=WIDE_OPEN).profile("default")
    wednesday_8 = dt.datetime(2025, 11, 19, 8, 30, tzinfo=MSK)
    assert is_callable(wednesday_8, windows, never_holiday, "as_weekday")
    assert not is_callable(wednesday_8, windows, lambda d: True, "as_weekday")


def test_closed_limits_mean_no_calls() -> None:
    windows = make_rules(days=WIDE_OPEN).profile("default")
    noon = dt.datetime.combine(MONDAY, dt.time(12, 0), tzinfo=MSK)
    assert not is_callable(noon, windows, never_holiday, "as_weekend", legal=CLOSED)
    assert next_window_start(noon.astimezone(dt.UTC), "Europe/Moscow", windows, never_holiday, "as_weekend",
                             legal=CLOSED) is None
