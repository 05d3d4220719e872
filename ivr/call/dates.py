"""Promise-to-pay dates keyed on the phone keypad. Pure: `today` and the horizon are arguments.

Accepted input:
- four digits DDMM ("2511" = 25 November); the year is this year, or next year when the date has
  already passed this year and next year's date is within the horizon (late December promising
  an early-January date);
- shortcuts that cannot collide with DDMM: "*1" today, "*2" tomorrow.
A promise is valid only if it is a real date, not in the past and not later than the horizon.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger(__name__)

SHORTCUTS = {"*1": 0, "*2": 1}


class DateProblem(StrEnum):
    NOT_A_DATE = "not_a_date"  # wrong length, not digits, 31.02, month 13 ...
    PAST = "past"
    BEYOND_HORIZON = "beyond_horizon"


@dataclass(frozen=True)
class DateParse:
    date: dt.date | None
    problem: DateProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def promise_horizon(today: dt.date, block_date: dt.date | None, days_after_block: int, max_days: int) -> dt.date:
    """Latest date a promise may name: block date + N days, but never more than max_days ahead
    and never before today (a case already past its block date can still promise today)."""
    latest = _shifted(today, max_days)
    if block_date is not None:
        latest = min(latest, _shifted(block_date, days_after_block))
    return max(latest, today)


def _shifted(day: dt.date, days: int) -> dt.date:
    """day + days, clamped to the calendar: a block date such as 31.12.9999 already in the
    database must still give a horizon (else the account's audio could never be prepared)."""
    try:
        return day + dt.timedelta(days=days)
    except OverflowError:
        log.warning("date %s + %d days is outside the calendar; clamped", day, days)
        return dt.date.max if days > 0 else dt.date.min


def parse_promise(keys: str, today: dt.date, horizon: dt.date) -> DateParse:
    keys = keys.strip()
    if keys in SHORTCUTS:
        return _check(today + dt.timedelta(days=SHORTCUTS[keys]), today, horizon)
    if len(keys) != 4 or not keys.isdigit():
        return DateParse(None, DateProblem.NOT_A_DATE)
    day, month = int(keys[:2]), int(keys[2:])
    try:
        this_year = dt.date(today.year, month, day)
    except ValueError:
        # 29.02 in a non-leap year may still be next year's date; anything else is not a date
        try:
            next_year = dt.date(today.year + 1, month, day)
        except ValueError:
            return DateParse(None, DateProblem.NOT_A_DATE)
        return _check(next_year, today, horizon)
    if this_year < today:
        following: dt.date | None
        try:
            following = dt.date(today.year + 1, month, day)
        except ValueError:
            following = None
        if following is not None and following <= horizon:
            return DateParse(following, None)
        return DateParse(this_year, DateProblem.PAST)
    return _check(this_year, today, horizon)


def _check(date: dt.date, today: dt.date, horizon: dt.date) -> DateParse:
    if date < today:
        return DateParse(date, DateProblem.PAST)
    if date > horizon:
        return DateParse(date, DateProblem.BEYOND_HORIZON)
    return DateParse(date, None)


def valid_dates(today: dt.date, horizon: dt.date) -> list[dt.date]:
    """Every date a promise may name (the read-back audio is rendered for each before the call)."""
    return [today + dt.timedelta(days=i) for i in range((horizon - today).days + 1)]
