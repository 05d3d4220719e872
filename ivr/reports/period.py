"""The report period, and the selections and rounding every report shares.

A period is the half-open range of UTC dates ``[start, end)``: a call placed at 00:00:00 of
``end`` belongs to the next period. Times in the database are naive UTC, so the bounds are
compared as naive datetimes at midnight.

Shared definitions (the reports' docstrings refer to them):

- *robot attempt in the period*: ``CallAttempt.purpose == "robot"`` and ``created_at`` in the
  period (and, with a stage filter, ``CallAttempt.stage_code == stage``: the stage the case was in
  when the call was placed). Operator click-to-call attempts are never counted as robot work.
- *case open in the period*: ``opened_on < end`` and not closed before the period began
  (``closed_at`` empty or ``>= start``). With a stage filter: such a case that is in the stage now
  *or* had a robot attempt in that stage in the period (so a case that moved on to the next stage
  during the period still counts where it was called).
- *picked up*: the attempt's result is answered, machine or wrong party, or the call script wrote
  an outcome for it.
- Percentages are Decimals rounded half-up to 0.01; a percentage of nothing is ``None`` (shown as
  "-"), never a division by zero. Money is Decimal rounded to 0.01.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, or_, select

from ivr.db.models import AttemptResult, CallAttempt, DebtCase

PICKED_UP = (AttemptResult.ANSWERED.value, AttemptResult.MACHINE.value, AttemptResult.WRONG_PARTY.value)
ROBOT = "robot"
CENT = Decimal("0.01")


class PeriodError(ValueError):
    """A period that cannot be reported on (bad date, empty or reversed range)."""


@dataclass(frozen=True)
class Period:
    start: dt.date  # first day, included
    end: dt.date  # first day after the period, excluded

    def __post_init__(self) -> None:
        for bound in (self.start, self.end):
            if not isinstance(bound, dt.date) or isinstance(bound, dt.datetime):
                raise PeriodError(f"period bounds must be dates, got {bound!r}")
        if self.end <= self.start:
            raise PeriodError(f"period end {self.end} must be after its start {self.start}")

    @property
    def start_at(self) -> dt.datetime:
        """The start as a naive UTC datetime (how the database stores times)."""
        return dt.datetime.combine(self.start, dt.time())

    @property
    def end_at(self) -> dt.datetime:
        return dt.datetime.combine(self.end, dt.time())

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    def dates(self, step_days: int = 1) -> list[dt.date]:
        """Days of the period from the start, every `step_days` days."""
        if step_days < 1:
            raise ValueError("step_days must be >= 1")
        return [self.start + dt.timedelta(days=i) for i in range(0, self.days, step_days)]

    def label(self) -> str:
        """Human form with the last day included: '2024-11-01 .. 2024-11-30'."""
        return f"{self.start.isoformat()} .. {self.last_day.isoformat()}"

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        start = dt.date(year, month, 1)
        end = dt.date(year + (month == 12), month % 12 + 1, 1)
        return cls(start, end)


def parse_date(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise PeriodError(f"{what}: expected a date as YYYY-MM-DD, got {text!r}") from None


def parse_period(from_text: str | None, to_text: str | None, today: dt.date, default_days: int = 30) -> Period:
    """Period from optional ISO dates. `to` is excluded; by default it is tomorrow (so today is in
    the period) and `from` is `default_days` before `to`."""
    end = parse_date(to_text, "--to") if to_text else today + dt.timedelta(days=1)
    start = parse_date(from_text, "--from") if from_text else end - dt.timedelta(days=default_days)
    if end <= start:
        raise PeriodError(f"--to ({end}) must be after --from ({start}); --to is the first day NOT reported")
    return Period(start, end)


# --- shared selections --------------------------------------------------------------------------

def robot_attempt_filters(period: Period, stage: str | None = None) -> list[ColumnElement[bool]]:
    """WHERE clauses for CallAttempt: robot attempts placed in the period (and stage)."""
    clauses: list[ColumnElement[bool]] = [
        CallAttempt.purpose == ROBOT,
        CallAttempt.created_at >= period.start_at,
        CallAttempt.created_at < period.end_at,
    ]
    if stage is not None:
        clauses.append(CallAttempt.stage_code == stage)
    return clauses


def open_case_filters(period: Period, stage: str | None = None) -> list[ColumnElement[bool]]:
    """WHERE clauses for DebtCase: cases open at some time in the period (see module docstring)."""
    clauses: list[ColumnElement[bool]] = [
        DebtCase.opened_on < period.end,
        or_(DebtCase.closed_at.is_(None), DebtCase.closed_at >= period.start_at),
    ]
    if stage is not None:
        called_in_stage = exists().where(CallAttempt.debt_case_id == DebtCase.id, *robot_attempt_filters(period, stage))
        clauses.append(or_(DebtCase.stage_code == stage, called_in_stage))
    return clauses


def open_case_ids(period: Period, stage: str | None = None) -> Select[Any]:
    """SELECT of the ids of the cases open in the period, for use in IN (...)."""
    return select(DebtCase.id).where(*open_case_filters(period, stage))


# --- rounding -----------------------------------------------------------------------------------

def pct(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    """100 * part / whole rounded half-up to 0.01; None when whole is zero."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(CENT, rounding=ROUND_HALF_UP)


def money(value: Any) -> Decimal:
    """A sum from the database as Decimal cents (SQLite sums Numeric as floats)."""
    if value is None:
        return Decimal("0.00")
    if isinstance(value, float):
        value = repr(value)
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def ratio(value: Decimal, whole: int | Decimal) -> Decimal | None:
    """value / whole rounded to cents (an average), None when whole is zero."""
    if not whole:
        return None
    return (Decimal(value) / Decimal(whole)).quantize(CENT, rounding=ROUND_HALF_UP)
