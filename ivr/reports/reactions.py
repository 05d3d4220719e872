"""Issue 16: what the before-due reminders and the thank-you calls changed.

Each part compares cases that got such a call with comparable cases that did not, on how soon
the money came. Both are observational comparisons (who answers the phone may pay sooner
anyway): the report shows the groups side by side and does not claim a cause.

Before the due date:

- cohort: debt cases whose due date (``DebtCase.opened_on``) is in the period and that existed
  before it (``created_at`` earlier than the due date: only those could be called early);
- *reached*: a robot attempt on a before-due stage (a stage anchored on the due date with a
  negative ``start_day``, active or not now) whose message was delivered (identity confirmed);
  *without*: every other case of the cohort (stage off, not reached, wrong party);
- *paid by the due date* / *within N days*: the case is paid off and its last payment
  (``Payment.paid_on`` of the payments applied to it; ``closed_at`` when billing closed it by an
  accounts import) is on or before the due date / the due date + N days;
- days to pay: average of (that payment date - due date) over the paid ones (negative = early).

Thank-you:

- cohort: thank-you rows (``thank_you_calls``, one per paid-off case that followed a robot call
  or promise) recorded in the period, whether thank-you calls were on or off;
- *thanked*: the thank-you was said (an attempt with purpose "thanks" whose message was
  delivered); *without*: the others (off, expired, machine, wrong party);
- the effect looked for is on the *next* bill: the account's first case opened after the thanked
  one. *next bill seen* counts the rows whose account has one; paid by its due date / within N
  days as above, as a share of the next bills seen.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.db.models import (
    CallAttempt,
    CaseState,
    DebtCase,
    LadderStage,
    Outcome,
    Payment,
    ThankYouCall,
)
from ivr.dialer.thanks import THANKS_PURPOSE
from ivr.reports.output import Column, Table
from ivr.reports.period import ROBOT, Period, pct

CENT = Decimal("0.1")


@dataclass(frozen=True)
class GroupRow:
    group: str  # before_due: reached | without; thanks: thanked | without
    cases: int
    next_bills: int | None  # thanks only: rows whose account has a later case
    paid_by_due: int
    paid_within: int
    paid_by_due_pct: Decimal | None
    paid_within_pct: Decimal | None
    avg_days_to_pay: Decimal | None


@dataclass(frozen=True)
class ReactionsReport:
    name: ClassVar[str] = "reactions"
    period: Period
    window_days: int
    before_due_stages: list[str]
    before_due: list[GroupRow]
    thanks: list[GroupRow]

    @property
    def title(self) -> str:
        return f"Payment reactions {self.period.label()}: payments within {self.window_days} days of the due date"

    def tables(self) -> list[Table]:
        n = self.window_days
        cols = (
            Column("group", "group"), Column("cases", "cases", True), Column("next_bills", "next bills seen", True),
            Column("paid_by_due", "paid by due date", True), Column("paid_within", f"paid within {n} d", True),
            Column("paid_by_due_pct", "by due %", True), Column("paid_within_pct", f"within {n} d %", True),
            Column("avg_days_to_pay", "avg days to pay", True),
        )

        def rows(groups: list[GroupRow]) -> list[tuple[object, ...]]:
            return [(g.group, g.cases, g.next_bills, g.paid_by_due, g.paid_within, g.paid_by_due_pct,
                     g.paid_within_pct, g.avg_days_to_pay) for g in groups]

        stages = ", ".join(self.before_due_stages) or "none defined"
        return [
            Table("before_due", f"Cases due in the period: reached before the due date (stages: {stages}) or not",
                  cols, rows(self.before_due)),
            Table("thanks", "Thank-you rows recorded in the period: the account's next bill", cols, rows(self.thanks)),
        ]


def _paid_dates(session: Session, case_ids: list[int]) -> dict[int, dt.date]:
    """The date each paid-off case was paid: its last payment, else the day it was closed."""
    out: dict[int, dt.date] = {}
    if not case_ids:
        return out
    for start in range(0, len(case_ids), 500):
        chunk = case_ids[start:start + 500]
        last = dict(session.execute(
            select(Payment.debt_case_id, func.max(Payment.paid_on)).where(Payment.debt_case_id.in_(chunk))
            .group_by(Payment.debt_case_id)
        ).all())
        for case_id, state, closed_at in session.execute(
            select(DebtCase.id, DebtCase.state, DebtCase.closed_at).where(DebtCase.id.in_(chunk))
        ):
            if state != CaseState.PAID.value:
                continue
            day = last.get(case_id) or (closed_at.date() if closed_at else None)
            if day is not None:
                out[case_id] = day
    return out


def _group(name: str, due: dict[int, dt.date], paid: dict[int, dt.date], window_days: int,
           cases: int, next_bills: int | None = None) -> GroupRow:
    by_due = within = 0
    delays: list[int] = []
    for case_id, due_on in due.items():
        day = paid.get(case_id)
        if day is None:
            continue
        delays.append((day - due_on).days)
        by_due += day <= due_on
        within += day <= due_on + dt.timedelta(days=window_days)
    base = len(due)
    avg = (Decimal(sum(delays)) / len(delays)).quantize(CENT) if delays else None
    return GroupRow(name, cases, next_bills, by_due, within, pct(by_due, base), pct(within, base), avg)


def before_due_stage_codes(session: Session) -> list[str]:
    return list(session.scalars(
        select(LadderStage.code).where(LadderStage.anchor == "due", LadderStage.start_day < 0)
        .order_by(LadderStage.position)
    ))


def _delivered_case_ids(session: Session, purpose: str, stages: list[str] | None, case_ids: list[int]) -> set[int]:
    out: set[int] = set()
    for start in range(0, len(case_ids), 500):
        query = (
            select(CallAttempt.debt_case_id).join(Outcome, Outcome.attempt_id == CallAttempt.id)
            .where(CallAttempt.purpose == purpose, Outcome.message_delivered.is_(True),
                   CallAttempt.debt_case_id.in_(case_ids[start:start + 500]))
        )
        if stages is not None:
            query = query.where(CallAttempt.stage_code.in_(stages))
        out.update(c for c in session.scalars(query) if c is not None)
    return out


def reactions_report(session: Session, period: Period, *, window_days: int = 7) -> ReactionsReport:
    stages = before_due_stage_codes(session)
    # -- before the due date
    cohort = {
        case_id: due_on
        for case_id, due_on, created_at in session.execute(
            select(DebtCase.id, DebtCase.opened_on, DebtCase.created_at)
            .where(DebtCase.opened_on >= period.start, DebtCase.opened_on < period.end)
        )
        if created_at.date() < due_on
    }
    ids = sorted(cohort)
    reached = _delivered_case_ids(session, ROBOT, stages, ids) if stages else set()
    paid = _paid_dates(session, ids)
    before_due = [
        _group("reached", {c: d for c, d in cohort.items() if c in reached}, paid, window_days, len(reached)),
        _group("without", {c: d for c, d in cohort.items() if c not in reached}, paid, window_days,
               len(cohort) - len(reached)),
    ]
    # -- thank-you: the next bill of the account
    rows = session.execute(
        select(ThankYouCall.debt_case_id, ThankYouCall.account_id, DebtCase.opened_on)
        .join(DebtCase, DebtCase.id == ThankYouCall.debt_case_id)
        .where(ThankYouCall.created_at >= period.start_at, ThankYouCall.created_at < period.end_at)
    ).all()
    thanked = _delivered_case_ids(session, THANKS_PURPOSE, None, sorted(r.debt_case_id for r in rows))
    later: dict[int, list[tuple[dt.date, int]]] = defaultdict(list)
    accounts = sorted({r.account_id for r in rows})
    for start in range(0, len(accounts), 500):
        for case_id, account_id, opened_on in session.execute(
            select(DebtCase.id, DebtCase.account_id, DebtCase.opened_on)
            .where(DebtCase.account_id.in_(accounts[start:start + 500]))
        ):
            later[account_id].append((opened_on, case_id))
    next_due: dict[str, dict[int, dt.date]] = {"thanked": {}, "without": {}}
    counts = {"thanked": 0, "without": 0}
    for r in rows:
        group = "thanked" if r.debt_case_id in thanked else "without"
        counts[group] += 1
        after = sorted((d, c) for d, c in later.get(r.account_id, []) if d > r.opened_on)
        if after:
            next_due[group][after[0][1]] = after[0][0]
    next_paid = _paid_dates(session, sorted(c for g in next_due.values() for c in g))
    thanks = [_group(g, next_due[g], next_paid, window_days, counts[g], len(next_due[g])) for g in ("thanked", "without")]
    return ReactionsReport(period=period, window_days=window_days, before_due_stages=stages,
                           before_due=before_due, thanks=thanks)
