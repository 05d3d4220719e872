import datetime as dt

import pytest

from ivr.call.dates import DateProblem, parse_promise, promise_horizon, valid_dates

TODAY = dt.date(2026, 11, 22)
HORIZON = dt.date(2026, 11, 30)


@pytest.mark.parametrize(
    ("keys", "date", "problem"),
    [
        ("2511", dt.date(2026, 11, 25), None),
        ("2211", dt.date(2026, 11, 22), None),  # today is fine
        ("3011", dt.date(2026, 11, 30), None),  # the horizon itself is fine
        ("*1", TODAY, None),
        ("*2", dt.date(2026, 11, 23), None),
        ("0112", dt.date(2026, 12, 1), DateProblem.BEYOND_HORIZON),
        ("2111", dt.date(2026, 11, 21), DateProblem.PAST),
        ("0101", dt.date(2026, 1, 1), DateProblem.PAST),  # next year's 1 Jan is beyond the horizon
        ("3102", None, DateProblem.NOT_A_DATE),
        ("0013", None, DateProblem.NOT_A_DATE),
        ("0000", None, DateProblem.NOT_A_DATE),
        ("251", None, DateProblem.NOT_A_DATE),
        ("25111", None, DateProblem.NOT_A_DATE),
        ("", None, DateProblem.NOT_A_DATE),
        ("*3", None, DateProblem.NOT_A_DATE),
        ("25*1", None, DateProblem.NOT_A_DATE),
    ],
)
def test_parse_promise(keys, date, problem):
    result = parse_promise(keys, TODAY, HORIZON)
    assert result.date == date
    assert result.problem == problem
    assert result.ok is (problem is None)


def test_year_rolls_over_in_late_december():
    today = dt.date(2026, 12, 29)
    horizon = dt.date(2027, 1, 10)
    assert parse_promise("0501", today, horizon).date == dt.date(2027, 1, 5)
    assert parse_promise("0501", today, horizon).ok
    assert parse_promise("2812", today, horizon).problem == DateProblem.PAST


def test_leap_day_next_year():
    today = dt.date(2027, 12, 1)
    assert parse_promise("2902", today, dt.date(2028, 3, 1)).date == dt.date(2028, 2, 29)
    assert parse_promise("2902", dt.date(2026, 2, 1), dt.date(2026, 3, 31)).problem == DateProblem.NOT_A_DATE


def test_horizon_from_block_date_and_cap():
    assert promise_horizon(TODAY, dt.date(2026, 11, 25), 5, 30) == dt.date(2026, 11, 30)
    assert promise_horizon(TODAY, dt.date(2027, 3, 1), 5, 30) == dt.date(2026, 12, 22)
    assert promise_horizon(TODAY, None, 5, 10) == dt.date(2026, 12, 2)
    # block date long gone: the subscriber may still promise today
    assert promise_horizon(TODAY, dt.date(2026, 10, 1), 5, 30) == TODAY
    assert valid_dates(TODAY, dt.date(2026, 11, 24)) == [TODAY, dt.date(2026, 11, 23), dt.date(2026, 11, 24)]


def test_horizon_of_dates_at_the_ends_of_the_calendar():
    # such dates are rejected at import, but may already be in a database: never an OverflowError
    assert promise_horizon(TODAY, dt.date(9999, 12, 31), 5, 30) == TODAY + dt.timedelta(days=30)
    assert promise_horizon(TODAY, dt.date(1, 1, 1), -5, 30) == TODAY
    assert promise_horizon(dt.date(9999, 12, 20), None, 5, 30) == dt.date(9999, 12, 31)
