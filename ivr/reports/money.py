"""Money report: debt at the start, debt recovered after a robot reached the debtor vs not, and the
average debt per account over the period.

Debt is reconstructed from the case's ``amount_initial`` minus the payments linked to the case
(``Payment.debt_case_id``) paid before a given day, floored at zero. Payments that billing did not
link to a case are not counted. One currency is assumed (the amounts are summed as they are).

- debt at start: cases opened before the start (``opened_on < start``), not closed before it, with
  a positive debt once the payments before the start are taken off.
- The cases of the period are the open cases (ivr.reports.period; the stage filter likewise), split
  into two groups:
  * reached: the robot had a right-party call with the case in the period (identity confirmed).
    The case's anchor day is the UTC day of its FIRST such call.
  * not reached: every other case; its anchor day is the start of the period, or the day the case
    opened if later.
  A case's debt is its debt just before its anchor day. Cases with no debt left on their anchor
  day (paid off, billing not yet closed them) are in neither group.
- recovered: payments to the case paid from the anchor day through the anchor day + N days
  (``window_days``, default 7; both ends included, so the window may reach past the period's end).
  rate % = recovered / debt of the group. Overpayments are counted as paid, so a rate can pass 100.
- series: for each day (or each 7th day from the start, granularity "week"; "auto" picks days for
  periods up to 62 days), the debt at the END of that day: cases opened on or before it, not
  closed on or before it, minus payments up to and including it; total owed, the number of
  accounts that owe, and the average per account.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.db.models import CallAttempt, DebtCase, Outcome, Payment
from ivr.reports.output import Column, Table
from ivr.reports.period import (
    Period,
    money,
    open_case_filters,
    open_case_ids,
    pct,
    ratio,
    robot_attempt_filters,
)

GRANULARITIES = ("auto", "day", "week")
AUTO_DAILY_MAX_DAYS = 62
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class RecoveryRow:
    group: str  # reached | not_reached | total
    cases: int
    debt: Decimal  # debt of these cases just before their anchor day
    recovered: Decimal  # paid within the window after the anchor day
    paying_cases: int  # cases with any payment in their window
    rate_pct: Decimal | None  # recovered / debt


@dataclass(frozen=True)
class DebtPoint:
    day: dt.date
    total_owed: Decimal
    accounts: int  # accounts owing at the end of the day
    average: Decimal | None  # total_owed / accounts


@dataclass(frozen=True)
class MoneyReport:
    name: ClassVar[str] = "money"
    period: Period
    stage: str | None
    window_days: int
    granularity: str  # day | week (what "auto" became)
    debt_at_start: Decimal
    cases_at_start: int
    accounts_at_start: int
    average_at_start: Decimal | None  # debt_at_start / accounts_at_start
    reached: RecoveryRow
    not_reached: RecoveryRow
    total: RecoveryRow
    series: list[DebtPoint] = field(default_factory=list)

    @property
    def title(self) -> str:
        stage = f", stage {self.stage}" if self.stage else ""
        return f"Money {self.period.label()}{stage}: debt at start {self.debt_at_start}"

    def tables(self) -> list[Table]:
        start_cols = (Column("debt_at_start", "debt at start", True), Column("cases", "cases", True),
                      Column("accounts", "accounts", True), Column("average", "average per account", True))
        start = [(self.debt_at_start, self.cases_at_start, self.accounts_at_start, self.average_at_start)]
        rec_cols = (Column("group", "group"), Column("cases", "cases", True), Column("debt", "debt", True),
                    Column("recovered", "recovered", True), Column("paying_cases", "paying cases", True),
                    Column("rate_pct", "recovered %", True))
        rec = [(r.group, r.cases, r.debt, r.recovered, r.paying_cases, r.rate_pct)
               for r in (self.reached, self.not_reached, self.total)]
        ser_cols = (Column("day", "day"), Column("total_owed", "total owed", True),
                    Column("accounts", "accounts", True), Column("average", "average per account", True))
        ser = [(p.day, p.total_owed, p.accounts, p.average) for p in self.series]
        return [
            Table("start", "Debt at the start of the period", start_cols, start),
            Table("recovery", f"Recovered within {self.window_days} days: reached by the robot vs not", rec_cols, rec),
            Table("series", f"Average debt per account (end of each {self.granularity})", ser_cols, ser),
        ]


@dataclass
class _Case:
    id: int
    account_id: int
    opened_on: dt.date
    closed_at: dt.datetime | None
    initial: Decimal
    payments: list[tuple[dt.date, Decimal]] = field(default_factory=list)  # sorted by day

    def owed_before(self, day: dt.date) -> Decimal:
        paid = sum((amount for paid_on, amount in self.payments if paid_on < day), ZERO)
        return max(ZERO, self.initial - paid)

    def paid_between(self, first: dt.date, last: dt.date) -> Decimal:
        return sum((amount for paid_on, amount in self.payments if first <= paid_on <= last), ZERO)


def money_report(
    session: Session, period: Period, *, stage: str | None = None, window_days: int = 7, granularity: str = "auto"
) -> MoneyReport:
    if window_days < 0:
        raise ValueError(f"window_days must be >= 0, got {window_days}")
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, got {granularity!r}")
    if granularity == "auto":
        granularity = "day" if period.days <= AUTO_DAILY_MAX_DAYS else "week"

    cases = _load_cases(session, period, stage, window_days)
    first_reach = _first_reach(session, period, stage)

    at_start = [c for c in cases if c.opened_on < period.start and c.owed_before(period.start) > 0]
    debt_at_start = sum((c.owed_before(period.start) for c in at_start), ZERO)
    accounts_at_start = len({c.account_id for c in at_start})

    groups: dict[str, list[tuple[Decimal, Decimal]]] = {"reached": [], "not_reached": []}
    for c in cases:
        reached_at = first_reach.get(c.id)
        anchor = reached_at.date() if reached_at is not None else max(period.start, c.opened_on)
        debt = c.owed_before(anchor)
        if debt <= 0:
            continue
        recovered = c.paid_between(anchor, anchor + dt.timedelta(days=window_days))
        groups["reached" if reached_at is not None else "not_reached"].append((debt, recovered))

    reached = _recovery("reached", groups["reached"])
    not_reached = _recovery("not_reached", groups["not_reached"])
    return MoneyReport(
        period=period, stage=stage, window_days=window_days, granularity=granularity,
        debt_at_start=money(debt_at_start), cases_at_start=len(at_start), accounts_at_start=accounts_at_start,
        average_at_start=ratio(debt_at_start, accounts_at_start), reached=reached, not_reached=not_reached,
        total=_recovery("total", groups["reached"] + groups["not_reached"]),
        series=_series(cases, period.dates(1 if granularity == "day" else 7)),
    )


def _load_cases(session: Session, period: Period, stage: str | None, window_days: int) -> list[_Case]:
    rows = session.execute(
        select(DebtCase.id, DebtCase.account_id, DebtCase.opened_on, DebtCase.closed_at, DebtCase.amount_initial)
        .where(*open_case_filters(period, stage))
        .order_by(DebtCase.id)
    ).all()
    cases = {r.id: _Case(r.id, r.account_id, r.opened_on, r.closed_at, money(r.amount_initial)) for r in rows}
    # Payments summed per case and day in SQL; the latest day any window can reach bounds the scan.
    last_day = period.last_day + dt.timedelta(days=window_days)
    payments = session.execute(
        select(Payment.debt_case_id, Payment.paid_on, func.sum(Payment.amount))
        .where(Payment.debt_case_id.in_(open_case_ids(period, stage)), Payment.paid_on <= last_day)
        .group_by(Payment.debt_case_id, Payment.paid_on)
        .order_by(Payment.paid_on)
    ).all()
    for case_id, paid_on, amount in payments:
        cases[case_id].payments.append((paid_on, money(amount)))
    return list(cases.values())


def _first_reach(session: Session, period: Period, stage: str | None) -> dict[int, dt.datetime]:
    rows = session.execute(
        select(CallAttempt.debt_case_id, func.min(CallAttempt.created_at))
        .join(Outcome, Outcome.attempt_id == CallAttempt.id)
        .where(*robot_attempt_filters(period, stage), Outcome.identity == "confirmed",
               CallAttempt.debt_case_id.is_not(None))
        .group_by(CallAttempt.debt_case_id)
    ).all()
    return {case_id: at for case_id, at in rows if case_id is not None and at is not None}


def _recovery(group: str, members: list[tuple[Decimal, Decimal]]) -> RecoveryRow:
    debt = sum((d for d, _ in members), ZERO)
    recovered = sum((r for _, r in members), ZERO)
    return RecoveryRow(
        group=group, cases=len(members), debt=money(debt), recovered=money(recovered),
        paying_cases=sum(1 for _, r in members if r > 0), rate_pct=pct(recovered, debt),
    )


def _series(cases: list[_Case], days: list[dt.date]) -> list[DebtPoint]:
    """Debt at the end of each day, by sweeping the cases' openings, payments and closings in
    date order (one pass, instead of re-adding every case for every day)."""
    events: list[tuple[dt.date, int, str, Decimal]] = []  # (day, case index, open|pay|close, amount)
    for i, c in enumerate(cases):
        events.append((c.opened_on, i, "open", ZERO))
        events.extend((paid_on, i, "pay", amount) for paid_on, amount in c.payments)
        if c.closed_at is not None:
            events.append((c.closed_at.date(), i, "close", ZERO))
    events.sort(key=lambda e: e[0])  # the order within a day does not matter: we read the day's end

    opened = [False] * len(cases)
    closed = [False] * len(cases)
    paid = [ZERO] * len(cases)
    owed = [ZERO] * len(cases)  # what each case adds to the total now
    owing_cases: Counter[int] = Counter()  # account -> cases with a positive debt
    debtors = 0  # accounts with at least one such case
    total = ZERO
    points: list[DebtPoint] = []
    k = 0
    for day in days:
        while k < len(events) and events[k][0] <= day:
            _, i, kind, amount = events[k]
            c = cases[i]
            if kind == "open":
                opened[i] = True
            elif kind == "close":
                closed[i] = True
            else:
                paid[i] += amount
            new = max(ZERO, c.initial - paid[i]) if opened[i] and not closed[i] else ZERO
            if new > 0 and owed[i] <= 0:
                owing_cases[c.account_id] += 1
                debtors += owing_cases[c.account_id] == 1
            elif new <= 0 and owed[i] > 0:
                owing_cases[c.account_id] -= 1
                debtors -= owing_cases[c.account_id] == 0
            total += new - owed[i]
            owed[i] = new
            k += 1
        points.append(DebtPoint(day, money(total), debtors, ratio(total, debtors)))
    return points
