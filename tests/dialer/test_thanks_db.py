"""Issue 16, the thank-you rows in the database on SQLite and PostgreSQL: recorded when a payment
pays a case off after a confirmed robot call, selected under the debt call's checks (opt-out,
window, limits), claimed under the person's lock, settled from the attempt's result."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from ivr.billing.payments import apply_payment
from ivr.db.models import Account, CallAttempt, DebtCase, OptOut, Outcome, Payment, ThankYouCall
from ivr.db.options import set_option
from ivr.dialer import attempts as attempts_mod
from ivr.dialer.claims import claim
from ivr.dialer.policy import load_rules
from ivr.dialer.thanks_store import record_paid_cases, select_thanks
from ivr.wiring import Database
from tests.dialer.conftest import add_case

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # Monday 12:00 in Moscow
NAIVE = NOW.replace(tzinfo=None)


def confirmed_call(s, case: DebtCase, when: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    a = CallAttempt(debt_case_id=case.id, account_id=case.account_id, phone="+79160000000", stage_code="reminder",
                    action_id=f"old-{case.id}", state="done", result="answered", created_at=when, originated_at=when)
    s.add(a)
    s.flush()
    s.add(Outcome(attempt_id=a.id, debt_case_id=case.id, identity="confirmed", message_delivered=True, kind="refusal"))


def pay(s, case: DebtCase, amount: str, when: dt.datetime) -> int:  # type: ignore[no-untyped-def]
    payment = Payment(external_id=f"P-{case.id}-{amount}", account_id=case.account_id, amount=Decimal(amount),
                      paid_on=when.date(), created_at=when)
    s.add(payment)
    s.flush()
    s.refresh(s.get(Account, case.account_id))
    apply_payment(s, payment, now=when)
    s.flush()
    return record_paid_cases(s, [(case, payment)], when)


def test_recorded_selected_claimed_settled(any_db: Database) -> None:
    two_days_ago = NAIVE - dt.timedelta(days=2)
    with any_db.sessions.begin() as s:
        set_option(s, "thank_you_calls", True)
        thanked = add_case(s, owed="1800.00")
        confirmed_call(s, thanked, two_days_ago)
        partial = add_case(s, owed="1800.00")
        confirmed_call(s, partial, two_days_ago)
        no_contact = add_case(s, owed="500.00")
        opted = add_case(s, owed="500.00")
        confirmed_call(s, opted, two_days_ago)
        far = add_case(s, owed="500.00", tz="Asia/Kamchatka")  # 21:00 there: outside the window
        confirmed_call(s, far, two_days_ago)
        import_at = NAIVE - dt.timedelta(hours=2)
        assert pay(s, thanked, "1800.00", import_at) == 1
        assert pay(s, partial, "800.00", import_at) == 0  # not paid off
        assert pay(s, no_contact, "500.00", import_at) == 0  # the robot never reached them
        assert pay(s, opted, "500.00", import_at) == 1
        assert pay(s, far, "500.00", import_at) == 1
        s.add(OptOut(account_id=opted.account_id))
        ids = (thanked.id, opted.id, far.id)
    with any_db.sessions() as s:
        rules = load_rules(s)
        found = select_thanks(s, rules, NOW, 10)
        s.commit()
        assert [c.case_id for c in found] == [ids[0]]  # the opted-out and the one outside its window wait
        far_due = s.scalar(select(ThankYouCall.due_at).where(ThankYouCall.debt_case_id == ids[2]))
        assert far_due == dt.datetime(2026, 3, 2, 21, 0)  # 09:00 on Tuesday in Kamchatka
        attempt = claim(s, found[0], "d1", NOW, rules=rules, server="sim")
        assert attempt is not None and attempt.purpose == "thanks" and attempt.stage_code == "thanks"
        attempt_id = attempt.id
    with any_db.sessions() as s:
        row = s.scalar(select(ThankYouCall).where(ThankYouCall.debt_case_id == ids[0]))
        assert (row.state, row.attempts, row.last_attempt_id) == ("pending", 1, attempt_id)  # type: ignore[union-attr]
        assert select_thanks(s, load_rules(s), NOW, 10) == []  # in flight: the person is locked
    with any_db.sessions.begin() as s:
        attempt = s.get(CallAttempt, attempt_id)
        attempt.state, attempt.result = "done", "no_answer"  # type: ignore[union-attr]
        attempts_mod.apply_case_result(s, attempt, "no_answer", load_rules(s), NOW)  # type: ignore[arg-type]
    with any_db.sessions() as s:
        row = s.scalar(select(ThankYouCall).where(ThankYouCall.debt_case_id == ids[0]))
        assert (row.state, row.attempts, row.due_at) == ("pending", 1, NAIVE + dt.timedelta(minutes=240))  # type: ignore[union-attr]
        assert s.get(Account, s.get(DebtCase, ids[0]).account_id).dial_lock_owner is None  # type: ignore[union-attr]
        assert s.get(DebtCase, ids[0]).state == "paid"  # type: ignore[union-attr]


async def test_the_dialer_places_thank_you_calls_on_lines_debt_calls_leave_free(db: Database) -> None:
    from ivr.clock import FixedClock
    from tests.dialer.test_engine import make_dialer

    with db.sessions.begin() as s:
        set_option(s, "thank_you_calls", True)
        debts = [add_case(s, phones=[f"+7916444{i:04d}"]).id for i in range(3)]
        paid = add_case(s, owed="100.00", phones=["+79164449999"])
        confirmed_call(s, paid, NAIVE - dt.timedelta(days=3))
        assert pay(s, paid, "100.00", NAIVE - dt.timedelta(hours=2)) == 1
        paid_id = paid.id
    dialer, originators, _ = make_dialer(db, FixedClock(NOW))  # 5 lines: 2 + 3
    assert await dialer.run_once() == 4
    with db.sessions() as s:
        placed = {(a.debt_case_id, a.purpose, a.stage_code) for a in s.scalars(select(CallAttempt).where(
            CallAttempt.action_id.like("dial-1-%")))}
    assert placed == {*((d, "robot", "reminder") for d in debts), (paid_id, "thanks", "thanks")}
    # the same route as every call: the call script tells a thank-you by the attempt's purpose
    assert {r.variables["IVR_SCRIPT"] for o in originators.values() for r in o.requests} == {"debt-call"}
