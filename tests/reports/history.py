"""A known history for the report tests, built with the ORM on a seeded database.

Period: November 2024, PERIOD = [2024-11-01, 2024-12-01). Ladder stages from the seed: reminder,
firm, final_warning, blocked; reasons from the seed (norms 35/20/10/8/5/7/5/10).

Cases (Cn on account An unless said; amounts in roubles):

  case  opened      initial  stage     closed            payments
  C1    2024-10-20  1000.00  reminder  2024-11-09 12:00  1000.00 on 11-09
  C2    2024-10-25   500.00  firm      -                 100.25 on 11-13, 200.00 on 11-14
  C3    2024-10-01  2000.00  firm      2024-11-04 18:00  500.00 on 10-15, 1500.00 on 11-04
  C4    2024-10-10   800.00  firm      -                 -
  C5    2024-11-10   300.00  reminder  -                 300.00 on 11-25
  C6    2024-09-01  1200.00  firm      2024-10-20 00:00  1200.00 on 10-18   (closed before the period)
  C7    2024-12-01   700.00  reminder  -                 -                   (opens at `to`: outside)
  C8    2024-10-05   600.00  reminder  -                 100.00 on 11-05     (never called)
  C9    2024-10-15   400.00  firm      -                 400.00 on 11-08
  C10   2024-10-18   900.00  reminder  -                 (50.00 on 11-02 to account A10, no case)
  C11   2024-10-01  1500.00  firm      -                 200.00 on 11-20
  C12   2024-10-02   250.00  reminder  - (not closed)    250.00 on 10-20     (paid off before the period)
  C13   2024-10-20   450.00  reminder  -                 -
  C14   2024-10-12  1000.00  firm      -                 -
  C15   2024-10-22   350.00  reminder  -                 350.00 on 11-20
  C16   2024-10-08   650.00  firm      -                 -
  C17   2024-10-28   150.55  reminder  -                 50.00 on 11-29
  C18   2024-10-03  1100.00  firm      -                 -
  C19   2024-10-26   220.10  reminder  -                 220.10 on 12-01
  C20   2024-10-11   480.00  firm      -                 -                   (account A9, C9's account)

Attempts (robot unless said; stage = the case's stage unless said; "conf" = identity confirmed;
duration in seconds): see ATTEMPTS below, one line each, numbered #1..#42 in the docstrings of
the tests. Promises: PROMISES; callback tasks: TASKS.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.db.models import (
    Account,
    CallAttempt,
    CallbackTask,
    DebtCase,
    Outcome,
    Payment,
    Promise,
    Reason,
    User,
)
from ivr.reports.period import Period

PERIOD = Period(dt.date(2024, 11, 1), dt.date(2024, 12, 1))


def at(text: str) -> dt.datetime:
    """'11-05 14:00' (2024) or a full ISO datetime."""
    if len(text) <= 14:
        month_day, _, clock = text.partition(" ")
        return dt.datetime.fromisoformat(f"2024-{month_day}T{clock or '00:00'}")
    return dt.datetime.fromisoformat(text)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text if len(text) > 5 else f"2024-{text}")


@dataclass(frozen=True)
class CaseSpec:
    label: str
    account: str
    opened: str
    initial: str
    stage: str
    closed: str | None = None
    state: str = "active"


CASES = [
    CaseSpec("C1", "A1", "10-20", "1000.00", "reminder", "11-09 12:00", "paid"),
    CaseSpec("C2", "A2", "10-25", "500.00", "firm"),
    CaseSpec("C3", "A3", "10-01", "2000.00", "firm", "11-04 18:00", "paid"),
    CaseSpec("C4", "A4", "10-10", "800.00", "firm"),
    CaseSpec("C5", "A5", "11-10", "300.00", "reminder"),
    CaseSpec("C6", "A6", "09-01", "1200.00", "firm", "10-20 00:00", "paid"),
    CaseSpec("C7", "A7", "12-01", "700.00", "reminder"),
    CaseSpec("C8", "A8", "10-05", "600.00", "reminder"),
    CaseSpec("C9", "A9", "10-15", "400.00", "firm"),
    CaseSpec("C10", "A10", "10-18", "900.00", "reminder"),
    CaseSpec("C11", "A11", "10-01", "1500.00", "firm"),
    CaseSpec("C12", "A12", "10-02", "250.00", "reminder"),
    CaseSpec("C13", "A13", "10-20", "450.00", "reminder"),
    CaseSpec("C14", "A14", "10-12", "1000.00", "firm"),
    CaseSpec("C15", "A15", "10-22", "350.00", "reminder"),
    CaseSpec("C16", "A16", "10-08", "650.00", "firm"),
    CaseSpec("C17", "A17", "10-28", "150.55", "reminder"),
    CaseSpec("C18", "A18", "10-03", "1100.00", "firm"),
    CaseSpec("C19", "A19", "10-26", "220.10", "reminder"),
    CaseSpec("C20", "A9", "10-11", "480.00", "firm"),
]

# (number, case, when, result, identity, kind, reason code, duration s, stage override, purpose)
# identity None = no Outcome row (the call was not picked up, or an operator call).
ATTEMPTS: list[tuple[int, str, str, str | None, str | None, str | None, str | None, float | None, str | None, str]] = [
    (1, "C1", "11-05 10:00", "busy", None, None, None, None, None, "robot"),
    (2, "C1", "11-05 14:00", "answered", "confirmed", "promise", None, 95.5, None, "robot"),
    (3, "C2", "11-03 09:30", "no_answer", None, None, None, None, "reminder", "robot"),
    (4, "C2", "11-06 11:00", "answered", "confirmed", "reason", "forgot", 70, "reminder", "robot"),
    (5, "C2", "11-20 12:00", "answered", "confirmed", "reason", "money_trouble", 80, None, "robot"),
    (6, "C3", "11-02 10:00", "machine", "unknown", "machine", None, 30, None, "robot"),
    (7, "C3", "11-04 10:00", "answered", "confirmed", "paid_claim", None, 50, None, "robot"),
    (8, "C4", "11-07 15:00", "answered", "confirmed", "reason", "no_invoice", 90, None, "robot"),
    (9, "C4", "11-15 15:00", "answered", "confirmed", "reason", None, 60, None, "robot"),
    (10, "C5", "11-12 10:00", "answered", "confirmed", "no_input", None, 40, None, "robot"),
    (11, "C5", "11-13 10:00", "answered", "confirmed", "reason", "service_quality", 85, None, "robot"),
    (12, "C9", "11-05 16:00", "wrong_party", "denied", "wrong_party", None, 20, None, "robot"),
    (13, "C9", "11-06 16:00", "machine", "unknown", "machine", None, 25, None, "robot"),
    (14, "C10", "11-06 17:00", "answered", "unknown", "hangup", None, 10, None, "robot"),
    (15, "C10", "11-30 23:00", None, None, None, None, None, None, "robot"),  # still in flight
    (16, "C11", "2024-10-31T23:59:59", "answered", "confirmed", "promise", None, 100, None, "robot"),  # before
    (17, "C11", "11-02 10:00", "busy", None, None, None, None, None, "robot"),
    (18, "C11", "11-03 10:00", "no_answer", None, None, None, None, None, "robot"),
    (19, "C11", "11-04 10:00", "congestion", None, None, None, None, None, "robot"),
    (20, "C11", "11-05 10:00", "failed", None, None, None, None, None, "robot"),
    (21, "C11", "11-20 10:00", "answered", None, None, None, 200, None, "operator"),  # click-to-call
    (22, "C11", "2024-12-01T00:00:00", "answered", "confirmed", "reason", "forgot", 60, None, "robot"),  # at `to`
    (23, "C13", "11-10 11:00", "answered", "confirmed", "reason", "forgot", 65, None, "robot"),
    (24, "C13", "11-11 11:00", "answered", "confirmed", "reason", "forgot", 65, None, "robot"),
    (25, "C13", "11-12 11:00", "answered", "confirmed", "reason", "competitor", 75, None, "robot"),
    (26, "C13", "11-18 11:00", "answered", "confirmed", "promise", None, 90, None, "robot"),
    (27, "C14", "11-09 12:00", "answered", "confirmed", "reason", "forgot", 60, None, "robot"),
    (28, "C14", "11-10 12:00", "answered", "confirmed", "reason", "money_trouble", 60, None, "robot"),
    (29, "C14", "11-11 12:00", "answered", "confirmed", "reason", "not_decision_maker", 60, None, "robot"),
    (30, "C14", "11-16 12:00", "answered", "confirmed", "human_request", None, 45, None, "robot"),
    (31, "C14", "11-17 12:00", "answered", "confirmed", "opt_out", None, 35, None, "robot"),
    (32, "C15", "11-14 13:00", "answered", "confirmed", "human_request", None, 40, None, "robot"),
    (33, "C15", "11-15 13:00", "answered", "confirmed", "hangup", None, 15, None, "robot"),
    (34, "C16", "11-19 14:00", "answered", "confirmed", "opt_out", None, 30, None, "robot"),
    (35, "C17", "11-21 14:00", "answered", "confirmed", "refusal", None, 55, None, "robot"),
    (36, "C17", "11-22 14:00", "answered", "confirmed", "no_input", None, 45, None, "robot"),
    (37, "C18", "11-23 15:00", "answered", "confirmed", "no_input", None, 50, None, "robot"),
    (38, "C19", "11-24 15:00", "answered", "confirmed", "hangup", None, 20, None, "robot"),
    (39, "C19", "11-25 15:00", "answered", "confirmed", None, None, 12.5, None, "robot"),  # kind never set
    (40, "C20", "11-08 09:00", "machine", "unknown", "machine", None, 28, None, "robot"),
    (41, "C20", "11-09 09:00", "no_answer", None, None, None, None, None, "robot"),
    (42, "C6", "10-15 10:00", "answered", "confirmed", "reason", "forgot", 60, None, "robot"),  # before
]

# (case, created, source, stage, promised, status, resolved, attempt number)
PROMISES = [
    ("C1", "11-05 14:00", "robot", "reminder", "11-10", "kept", "11-09 12:00", 2),
    ("C13", "11-18 11:00", "robot", "reminder", "11-25", "broken", "11-26 00:00", 26),
    ("C4", "11-20 10:00", "operator", "firm", "11-28", "pending", None, None),
    ("C15", "11-16 10:00", "operator", "reminder", "11-20", "kept", "11-20 09:00", None),
    ("C5", "11-14 10:00", "operator", "reminder", "11-18", "cancelled", "11-15 10:00", None),
    ("C14", "11-25 10:00", "operator", "firm", "11-29", "broken", "11-30 00:00", None),
    ("C11", "2024-10-31T23:59:59", "robot", "firm", "11-05", "broken", "11-06 00:00", 16),  # before the period
    ("C13", "2024-12-01T00:00:00", "operator", "reminder", "12-05", "pending", None, None),  # at `to`
]

# (case, amount, paid on); case None = paid to the account only (A10)
PAYMENTS = [
    ("C1", "1000.00", "11-09"),
    ("C2", "100.25", "11-13"),
    ("C2", "200.00", "11-14"),
    ("C3", "500.00", "10-15"),
    ("C3", "1500.00", "11-04"),
    ("C5", "300.00", "11-25"),
    ("C6", "1200.00", "10-18"),
    ("C8", "100.00", "11-05"),
    ("C9", "400.00", "11-08"),
    ("C11", "200.00", "11-20"),
    ("C12", "250.00", "10-20"),
    ("C15", "350.00", "11-20"),
    ("C17", "50.00", "11-29"),
    ("C19", "220.10", "2024-12-01"),
    (None, "50.00", "11-02"),
]

# (queue, case, attempt number, created, state, result, reason code)
TASKS = [
    ("billing", "C4", 8, "11-07 15:01", "done", "resolved", "no_invoice"),
    ("quality", "C5", 11, "11-13 10:02", "claimed", None, "service_quality"),
    ("retention", "C13", 25, "11-12 11:02", "done", "promise", "competitor"),
    ("billing", "C14", 30, "11-16 12:01", "open", None, None),
    ("billing", "C15", 32, "11-14 13:01", "done", "promise", None),
    ("retention", "C16", None, "10-30 10:00", "done", "refused", None),  # before the period
    ("quality", "C2", None, "11-28 09:00", "done", "unreachable", None),
    ("billing", "C2", None, "11-29 09:00", "done", "wrong_number", None),
    ("retention", "C17", None, "2024-12-01T00:00:00", "open", None, None),  # at `to`
]


@dataclass
class History:
    cases: dict[str, int]  # label -> DebtCase.id
    accounts: dict[str, int]  # label -> Account.id
    attempts: dict[int, int]  # number -> CallAttempt.id


class Builder:
    """Small helpers to add rows; also used by edge-case tests for their own little histories."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._seq = itertools.count(1)
        self.reasons = {r.code: r for r in session.scalars(select(Reason))}

    def account(self, external_id: str) -> Account:
        account = Account(external_id=external_id, holder_name=f"Holder {external_id}", balance=Decimal("0"))
        self.session.add(account)
        self.session.flush()
        return account

    def case(self, account: Account, opened: dt.date, initial: str, stage: str, closed: dt.datetime | None = None,
             state: str = "active") -> DebtCase:
        debt = DebtCase(account_id=account.id, opened_on=opened, amount_initial=Decimal(initial),
                        amount_owed=Decimal(initial), stage_code=stage, state=state, closed_at=closed)
        self.session.add(debt)
        self.session.flush()
        return debt

    def attempt(self, case: DebtCase, when: dt.datetime, result: str | None, *, identity: str | None = None,
                kind: str | None = None, reason: str | None = None, duration: float | None = None,
                stage: str | None = None, purpose: str = "robot") -> CallAttempt:
        n = next(self._seq)
        attempt = CallAttempt(
            debt_case_id=case.id, account_id=case.account_id, phone=f"+7900000{n:04d}",
            stage_code=stage or case.stage_code, purpose=purpose, action_id=f"test-{n}",
            state="done" if result else "dialing", result=result, created_at=when,
            answered_at=when if result in ("answered", "machine", "wrong_party") else None,
            ended_at=when + dt.timedelta(seconds=duration or 0) if result else None,
            duration_s=Decimal(str(duration)) if duration is not None else None,
        )
        self.session.add(attempt)
        self.session.flush()
        if identity is not None:
            self.session.add(Outcome(
                attempt_id=attempt.id, debt_case_id=case.id, identity=identity, kind=kind,
                reason_id=self.reasons[reason].id if reason else None, paid_claim=kind == "paid_claim",
                opted_out=kind == "opt_out", human_requested=kind == "human_request",
                message_delivered=identity == "confirmed", created_at=when,
            ))
        return attempt

    def payment(self, account_id: int, case_id: int | None, amount: str, paid_on: dt.date) -> Payment:
        payment = Payment(external_id=f"pay-{next(self._seq)}", account_id=account_id, debt_case_id=case_id,
                          amount=Decimal(amount), paid_on=paid_on)
        self.session.add(payment)
        return payment

    def promise(self, case: DebtCase, created: dt.datetime, status: str, *, stage: str | None, promised: dt.date,
                source: str = "robot", resolved: dt.datetime | None = None, attempt_id: int | None = None) -> Promise:
        promise = Promise(debt_case_id=case.id, attempt_id=attempt_id, source=source, promised_date=promised,
                          status=status, stage_code=stage, created_at=created, resolved_at=resolved)
        self.session.add(promise)
        return promise

    def task(self, queue: str, case: DebtCase, created: dt.datetime, state: str, result: str | None = None, *,
             attempt_id: int | None = None, reason: str | None = None) -> CallbackTask:
        task = CallbackTask(
            account_id=case.account_id, debt_case_id=case.id, attempt_id=attempt_id, queue=queue,
            reason_id=self.reasons[reason].id if reason else None, state=state, result=result,
            created_at=created, due_at=created, done_at=created + dt.timedelta(hours=2) if state == "done" else None,
        )
        self.session.add(task)
        return task


def build_history(session: Session) -> History:
    """Write the known history above; the caller commits."""
    b = Builder(session)
    accounts: dict[str, Account] = {}
    cases: dict[str, DebtCase] = {}
    for spec in CASES:
        if spec.account not in accounts:
            accounts[spec.account] = b.account(spec.account)
        cases[spec.label] = b.case(accounts[spec.account], day(spec.opened), spec.initial, spec.stage,
                                   at(spec.closed) if spec.closed else None, spec.state)
    attempts: dict[int, CallAttempt] = {}
    for number, label, when, result, identity, kind, reason, duration, stage, purpose in ATTEMPTS:
        attempts[number] = b.attempt(cases[label], at(when), result, identity=identity, kind=kind, reason=reason,
                                     duration=duration, stage=stage, purpose=purpose)
    for label, created, source, stage, promised, status, resolved, by_call in PROMISES:
        b.promise(cases[label], at(created), status, stage=stage, promised=day(promised), source=source,
                  resolved=at(resolved) if resolved else None,
                  attempt_id=attempts[by_call].id if by_call else None)
    for case_label, amount, paid_on in PAYMENTS:
        if case_label is None:
            b.payment(accounts["A10"].id, None, amount, day(paid_on))
        else:
            b.payment(cases[case_label].account_id, cases[case_label].id, amount, day(paid_on))
    for queue, label, raised_by, created, state, result, reason in TASKS:
        b.task(queue, cases[label], at(created), state, result,
               attempt_id=attempts[raised_by].id if raised_by else None, reason=reason)
    session.flush()
    return History(
        cases={k: v.id for k, v in cases.items()},
        accounts={k: v.id for k, v in accounts.items()},
        attempts={k: v.id for k, v in attempts.items()},
    )


# Operator work (issue 13), added by `add_operator_work` on top of the history above.
# Tasks by their index in TASKS: (index, operator, claimed at); done ones keep who closed them.
#   0 billing C4 resolved, done 11-07 17:01, claimed 10-31 23:00 (before): done in the period, not taken
#   1 quality C5 claimed 11-13 11:00
#   2 retention C13 promise, done 11-12 13:02
#   4 billing C15 promise, done 11-14 15:01
#   5 retention C16 refused, done 10-30 12:00 (before the period: neither)
#   6 quality C2 unreachable, done 11-28 11:00
#   7 billing C2 wrong_number, done 11-29 11:00
TASK_OPERATORS = [
    (0, "ivanova", "2024-10-31T23:00:00"),
    (1, "petrov", "11-13 11:00"),
    (2, "petrov", "11-12 12:00"),
    (4, "ivanova", "11-14 14:00"),
    (5, "ivanova", "10-30 11:00"),
    (6, "petrov", "11-28 10:00"),
    (7, "ivanova", "11-29 10:00"),
]
# Click-to-calls: (case, operator, when, result, duration s, override reason); #21 is petrov's.
OPERATOR_CALLS = [
    ("C4", "ivanova", "11-07 16:05", "answered", 125.5, None),
    ("C15", "ivanova", "11-14 14:10", "no_answer", None, None),
    ("C16", "ivanova", "2024-10-31T23:30:00", "answered", 60, None),  # before the period
    ("C2", "petrov", "11-28 10:05", "answered", 44.5, "asked to be called before work"),
]
OPERATORS = ("ivanova", "petrov", "sidorov")  # sidorov did nothing: not listed


def add_operator_work(session: Session, history: History) -> dict[str, int]:
    """Operators, their claims and click-to-calls on the known history; the caller commits."""
    users = {}
    for name in OPERATORS:
        user = User(username=name, role="operator", password_hash="x")
        session.add(user)
        session.flush()
        users[name] = user.id
    tasks = session.scalars(select(CallbackTask).order_by(CallbackTask.id)).all()
    for index, name, claimed in TASK_OPERATORS:
        tasks[index].claimed_by = users[name]
        tasks[index].claimed_at = at(claimed)
    session.get_one(CallAttempt, history.attempts[21]).operator_id = users["petrov"]
    b = Builder(session)
    b._seq = itertools.count(100)
    for label, name, when, result, duration, reason in OPERATOR_CALLS:
        case = session.get_one(DebtCase, history.cases[label])
        attempt = b.attempt(case, at(when), result, duration=duration, purpose="operator")
        attempt.operator_id, attempt.override_reason = users[name], reason
    session.flush()
    return users
