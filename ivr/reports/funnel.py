"""Funnel report: from the debt cases of the period to what the right person said.

Everything is counted per debt case, over the robot attempts placed in the period (and stage);
see ivr.reports.period for "open case", "robot attempt in the period" and "picked up".

- open: cases open at some time in the period.
- attempted: open cases with at least one robot attempt.
- answered: attempted cases with at least one attempt picked up (by the person, a machine or a
  wrong party). reach % = answered / attempted.
- right party: answered cases with at least one outcome whose identity is confirmed.
- Each right-party case is counted once, under its *best* outcome among its confirmed calls, in
  this order: promise > paid_claim > reason > human_request > opt_out > refusal > no_input >
  message_only > hangup. (message_only - the debt message was heard, no menu choice - is not in
  the brief's list; it ranks above a plain hang-up. A confirmed call without a final kind, still
  in flight or lost, counts as hangup.)
- Answered cases without a right-party answer are split: wrong party (someone said it was not
  them: result or kind wrong_party, or identity denied) before machine (result or kind machine);
  the rest are *unidentified* (picked up, but identity never confirmed or denied: hung up or
  silent at the identity question).
  So: answered = right party + wrong party + machine + unidentified, and right party = the sum of
  the best outcomes.
- attempts / attempts picked up count calls, not cases (attempt reach %); like everything here,
  only calls on the open cases (an attempt without a debt case is not counted).
- faults (issue 15) count calls spoiled on our side, by result: refused (Asterisk refused the
  Originate: no call), interrupted (Asterisk restarted or the robot died mid-call), robot_failed
  (answered, the script never ran: FastAGI down), lost (reconciled, fate unknown), not_sent.
  They are not contacts and are retried soon; a high count is an operations alarm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from ivr.db.models import AttemptResult, CallAttempt, DebtCase, Outcome
from ivr.reports.output import Column, Table
from ivr.reports.period import (
    PICKED_UP,
    Period,
    open_case_filters,
    open_case_ids,
    pct,
    robot_attempt_filters,
)

FAULT_KINDS = (
    "refused", AttemptResult.INTERRUPTED.value, AttemptResult.ROBOT_FAILED.value, "lost", "not_sent",
)
RANKING = (
    "promise", "paid_claim", "reason", "human_request", "opt_out", "refusal", "no_input", "message_only", "hangup",
)
LABELS = {
    "open": "cases open", "attempted": "attempted", "answered": "answered", "right_party": "right party",
    "promise": "promise to pay", "paid_claim": "already paid", "reason": "reason given",
    "human_request": "asked for a person", "opt_out": "opted out", "refusal": "refused", "no_input": "no input",
    "message_only": "heard the message only", "hangup": "hung up", "wrong_party": "wrong party",
    "machine": "answering machine", "unidentified": "identity not established",
}


@dataclass(frozen=True)
class FunnelStep:
    key: str  # open | attempted | answered | right_party | a RANKING kind | wrong_party | machine | unidentified
    label: str
    cases: int
    parent: str | None  # the step this one is a part of
    pct_of_parent: Decimal | None
    pct_of_open: Decimal | None


@dataclass(frozen=True)
class FunnelReport:
    name: ClassVar[str] = "funnel"
    period: Period
    stage: str | None
    cases_open: int
    attempted: int
    answered: int
    right_party: int
    outcomes: dict[str, int]  # right-party cases by best outcome, in RANKING order
    wrong_party: int
    machine: int
    unidentified: int
    attempts: int
    attempts_picked_up: int
    reach_pct: Decimal | None  # answered / attempted cases
    attempt_reach_pct: Decimal | None  # attempts picked up / attempts
    steps: list[FunnelStep] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)  # attempts by fault result (FAULT_KINDS)

    @property
    def title(self) -> str:
        stage = f", stage {self.stage}" if self.stage else ""
        return f"Funnel {self.period.label()}{stage}: {self.cases_open} cases"

    def tables(self) -> list[Table]:
        cols = (
            Column("step", "step"), Column("label", "label"), Column("cases", "cases", True),
            Column("pct_of_parent", "% of parent", True), Column("pct_of_open", "% of open", True),
        )
        rows = [(s.key, s.label, s.cases, s.pct_of_parent, s.pct_of_open) for s in self.steps]
        calls = (Column("attempts", "attempts", True), Column("picked_up", "picked up", True),
                 Column("reach_pct", "reach %", True))
        faults = (Column("result", "result"), Column("attempts", "attempts", True))
        return [
            Table("funnel", "Cases by step", cols, rows),
            Table("attempts", "Calls", calls, [(self.attempts, self.attempts_picked_up, self.attempt_reach_pct)]),
            Table("faults", "Calls spoiled on our side (not contacts)", faults,
                  [(kind, self.faults.get(kind, 0)) for kind in FAULT_KINDS]),
        ]


def funnel_report(session: Session, period: Period, *, stage: str | None = None) -> FunnelReport:
    cases_open = session.scalar(select(func.count()).select_from(DebtCase).where(*open_case_filters(period, stage))) or 0

    picked = or_(CallAttempt.result.in_(PICKED_UP), Outcome.id.is_not(None))
    confirmed = Outcome.identity == "confirmed"
    rank = case(
        (confirmed, case({kind: i for i, kind in enumerate(RANKING)}, value=Outcome.kind, else_=len(RANKING) - 1)),
        else_=None,
    )
    wrong = or_(
        CallAttempt.result == AttemptResult.WRONG_PARTY.value, Outcome.kind == "wrong_party", Outcome.identity == "denied"
    )
    machine = or_(CallAttempt.result == AttemptResult.MACHINE.value, Outcome.kind == "machine")
    per_case = (
        select(
            CallAttempt.debt_case_id.label("case_id"),
            func.count().label("attempts"),
            func.sum(case((picked, 1), else_=0)).label("picked"),
            func.min(rank).label("best"),
            func.max(case((wrong, 1), else_=0)).label("wrong"),
            func.max(case((machine, 1), else_=0)).label("machine"),
        )
        .outerjoin(Outcome, Outcome.attempt_id == CallAttempt.id)
        .where(*robot_attempt_filters(period, stage), CallAttempt.debt_case_id.in_(open_case_ids(period, stage)))
        .group_by(CallAttempt.debt_case_id)
        .subquery()
    )
    not_right = and_(per_case.c.best.is_(None), per_case.c.picked > 0)
    totals = session.execute(
        select(
            func.count(),
            func.sum(case((per_case.c.picked > 0, 1), else_=0)),
            func.count(per_case.c.best),
            func.sum(case((and_(not_right, per_case.c.wrong == 1), 1), else_=0)),
            func.sum(case((and_(not_right, per_case.c.wrong == 0, per_case.c.machine == 1), 1), else_=0)),
            func.sum(per_case.c.attempts),
            func.sum(per_case.c.picked),
        )
    ).one()
    attempted, answered, right_party, wrong_party, machines, attempts, picked_up = (int(v or 0) for v in totals)
    best_counts: dict[int, int] = dict(
        session.execute(
            select(per_case.c.best, func.count()).where(per_case.c.best.is_not(None)).group_by(per_case.c.best)
        ).all()
    )
    outcomes = {kind: int(best_counts.get(i, 0)) for i, kind in enumerate(RANKING)}
    faults = {kind: 0 for kind in FAULT_KINDS}
    for result, count in session.execute(
        select(CallAttempt.result, func.count())
        .where(*robot_attempt_filters(period, stage), CallAttempt.debt_case_id.in_(open_case_ids(period, stage)),
               CallAttempt.result.in_(FAULT_KINDS))
        .group_by(CallAttempt.result)
    ).all():
        faults[str(result)] = int(count)
    unidentified = answered - right_party - wrong_party - machines

    steps = [
        _step("open", cases_open, None, cases_open, cases_open),
        _step("attempted", attempted, "open", cases_open, cases_open),
        _step("answered", answered, "attempted", attempted, cases_open),
        _step("right_party", right_party, "answered", answered, cases_open),
        *(_step(kind, n, "right_party", right_party, cases_open) for kind, n in outcomes.items()),
        _step("wrong_party", wrong_party, "answered", answered, cases_open),
        _step("machine", machines, "answered", answered, cases_open),
        _step("unidentified", unidentified, "answered", answered, cases_open),
    ]
    return FunnelReport(
        period=period, stage=stage, cases_open=cases_open, attempted=attempted, answered=answered,
        right_party=right_party, outcomes=outcomes, wrong_party=wrong_party, machine=machines,
        unidentified=unidentified, attempts=attempts, attempts_picked_up=picked_up,
        reach_pct=pct(answered, attempted), attempt_reach_pct=pct(picked_up, attempts), steps=steps,
        faults=faults,
    )


def _step(key: str, cases: int, parent: str | None, parent_cases: int, open_cases: int) -> FunnelStep:
    return FunnelStep(
        key=key, label=LABELS[key], cases=cases, parent=parent,
        pct_of_parent=pct(cases, parent_cases) if parent else None, pct_of_open=pct(cases, open_cases),
    )
