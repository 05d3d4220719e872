"""Issue 16: the reactions report (before-due reminders and thank-you calls, with vs without)."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal as D

from sqlalchemy.orm import Session

from ivr.db.models import (
    Account,
    CallAttempt,
    DebtCase,
    Outcome,
    Payment,
    PhoneNumber,
    ThankYouCall,
)
from ivr.reports import Period, render_table
from ivr.reports.reactions import reactions_report
from ivr.wiring import Database

NOV = Period(dt.date(2026, 11, 1), dt.date(2026, 12, 1))
_n = itertools.count(1)


def account(s: Session) -> Account:
    n = next(_n)
    acc = Account(external_id=f"R{n}", holder_name=f"H{n}", balance=D("0"))
    acc.phones.append(PhoneNumber(number=f"+7916555{n:04d}", priority=1))
    s.add(acc)
    s.flush()
    return acc


def case(s: Session, acc: Account, due: dt.date, *, created: dt.date, paid_on: dt.date | None) -> DebtCase:
    c = DebtCase(account_id=acc.id, opened_on=due, amount_initial=D("100"), amount_owed=D("0") if paid_on else D("100"),
                 state="paid" if paid_on else "active", created_at=dt.datetime.combine(created, dt.time(9)))
    s.add(c)
    s.flush()
    if paid_on:
        s.add(Payment(external_id=f"P{c.id}", account_id=acc.id, debt_case_id=c.id, amount=D("100"), paid_on=paid_on))
    return c


def call(s: Session, c: DebtCase, *, stage: str, purpose: str = "robot", delivered: bool = True) -> None:
    a = CallAttempt(debt_case_id=c.id, account_id=c.account_id, phone="+79160000000", stage_code=stage,
                    purpose=purpose, action_id=f"x-{c.id}-{purpose}", state="done", result="answered")
    s.add(a)
    s.flush()
    s.add(Outcome(attempt_id=a.id, debt_case_id=c.id, identity="confirmed" if delivered else "denied",
                  message_delivered=delivered, kind="thanked" if purpose == "thanks" else "message_only"))


def thanks_row(s: Session, c: DebtCase, state: str) -> None:
    s.add(ThankYouCall(account_id=c.account_id, debt_case_id=c.id, paid_on=dt.date(2026, 11, 5), trigger="call",
                       state=state, due_at=dt.datetime(2026, 11, 5, 10), expires_at=dt.datetime(2026, 11, 8),
                       created_at=dt.datetime(2026, 11, 5, 9)))


def _t(g):  # type: ignore[no-untyped-def]
    return (g.group, g.cases, g.next_bills, g.paid_by_due, g.paid_within, g.paid_by_due_pct, g.paid_within_pct,
            g.avg_days_to_pay)


def test_before_due_and_thank_you_groups(db: Database) -> None:
    due = dt.date(2026, 11, 25)
    with db.sessions.begin() as s:
        # before the due date: A reached and paid a day early; B reached, paid 3 days late;
        # C not reached (a wrong party only), paid 10 days late; D never called, unpaid;
        # E opened only after its due date (could not be called early): not in the cohort
        a = case(s, account(s), due, created=dt.date(2026, 11, 15), paid_on=dt.date(2026, 11, 24))
        call(s, a, stage="before_due")
        b = case(s, account(s), due, created=dt.date(2026, 11, 15), paid_on=dt.date(2026, 11, 28))
        call(s, b, stage="before_due")
        c = case(s, account(s), due, created=dt.date(2026, 11, 15), paid_on=dt.date(2026, 12, 5))
        call(s, c, stage="before_due", delivered=False)
        case(s, account(s), due, created=dt.date(2026, 11, 15), paid_on=None)
        case(s, account(s), due, created=dt.date(2026, 11, 26), paid_on=None)
        # thank-you: X thanked, next bill paid on its due date; Y off, next bill paid 11 days
        # late; Z expired, no next bill yet
        for state, next_paid in (("done", dt.date(2026, 12, 25)), ("off", dt.date(2027, 1, 5)), ("expired", None)):
            acc = account(s)
            first = case(s, acc, dt.date(2026, 10, 25), created=dt.date(2026, 10, 26), paid_on=dt.date(2026, 11, 5))
            thanks_row(s, first, state)
            if state == "done":
                call(s, first, stage="thanks", purpose="thanks")
            if next_paid:
                case(s, acc, dt.date(2026, 12, 25), created=dt.date(2026, 12, 26), paid_on=next_paid)
    with db.sessions() as s:
        report = reactions_report(s, NOV, window_days=7)
    assert report.before_due_stages == ["before_due"]  # the shipped stage, inactive, still counted
    assert [_t(g) for g in report.before_due] == [
        ("reached", 2, None, 1, 2, D("50.00"), D("100.00"), D("1.0")),
        ("without", 2, None, 0, 0, D("0.00"), D("0.00"), D("10.0")),
    ]
    assert [_t(g) for g in report.thanks] == [
        ("thanked", 1, 1, 1, 1, D("100.00"), D("100.00"), D("0.0")),
        ("without", 2, 1, 0, 0, D("0.00"), D("0.00"), D("11.0")),
    ]
    text = render_table(report)
    assert "reached" in text and "thanked" in text and "within 7 d %" in text


def test_cli(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from ivr.cli import main

    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{tmp_path / 'r.sqlite3'}")
    env = ["--env-file", str(tmp_path / "none.env"), "report", "reactions", "--from", "2026-11-01", "--to", "2026-12-01"]
    assert main([*env, "--days", "3", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["window_days"] == 3 and [g["group"] for g in data["thanks"]] == ["thanked", "without"]
    assert main([*env, "--chart", str(tmp_path / "x.svg")]) == 2
    assert "no chart" in capsys.readouterr().err
