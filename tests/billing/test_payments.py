"""Payments: applying one to the debt, and the payments import (dedupe, unknown accounts)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from ivr.billing.importer import import_payments
from ivr.billing.payments import apply_payment
from ivr.db.models import Account, CaseState, DebtCase, ImportRun, Payment, PhoneNumber, Promise
from tests.billing.conftest import NOW, TODAY


def make_account(session, external_id="1001", *cases: tuple[dt.date, str]) -> Account:
    """An account with open cases given as (opened_on, amount_owed)."""
    total = sum((Decimal(a) for _d, a in cases), Decimal("0"))
    acc = Account(external_id=external_id, holder_name="Иванов Иван", balance=total)
    acc.phones.append(PhoneNumber(number="+79161234567", priority=1))
    session.add(acc)
    session.flush()
    for opened, amount in cases:
        session.add(DebtCase(account_id=acc.id, opened_on=opened, amount_initial=Decimal(amount),
                             amount_owed=Decimal(amount), state=CaseState.ACTIVE.value))
    session.flush()
    return acc


def pay(session, acc, amount, paid_on=TODAY, external_id="P-1") -> Payment:
    payment = Payment(external_id=external_id, account_id=acc.id, amount=Decimal(amount), paid_on=paid_on)
    session.add(payment)
    apply_payment(session, payment, now=NOW)
    session.flush()
    return payment


def cases_of(session, acc):
    return list(session.scalars(select(DebtCase).where(DebtCase.account_id == acc.id).order_by(DebtCase.opened_on)))


def test_partial_payment_reduces_what_is_owed(session):
    acc = make_account(session, "1001", (dt.date(2026, 11, 1), "1800.00"))
    payment = pay(session, acc, "500.00")
    (case,) = cases_of(session, acc)
    assert (case.amount_owed, case.amount_initial, case.state, case.closed_at) == (
        Decimal("1300.00"), Decimal("1800.00"), "active", None)
    assert acc.balance == Decimal("1300.00") and payment.debt_case_id == case.id


def test_full_payment_closes_the_case_and_keeps_the_promise(session):
    acc = make_account(session, "1001", (dt.date(2026, 11, 1), "1800.00"))
    (case,) = cases_of(session, acc)
    case.state = CaseState.PROMISED.value
    kept = Promise(debt_case_id=case.id, promised_date=TODAY + dt.timedelta(days=1))
    late = Promise(debt_case_id=case.id, promised_date=TODAY - dt.timedelta(days=2))
    session.add_all([kept, late])
    session.flush()
    session.refresh(case)
    pay(session, acc, "1800.00")
    assert (case.state, case.amount_owed, case.closed_at) == ("paid", Decimal("0.00"), NOW)
    assert (kept.status, kept.resolved_at) == ("kept", NOW)
    assert late.status == "pending"  # overdue before the money came: the promise watcher's call
    assert acc.balance == Decimal("0.00")


def test_payment_goes_to_the_oldest_case_first_and_overpayment_is_credit(session):
    acc = make_account(session, "1001", (dt.date(2026, 11, 1), "1000.00"), (dt.date(2026, 10, 1), "300.00"))
    payment = pay(session, acc, "500.00")
    older, newer = cases_of(session, acc)
    assert (older.state, older.amount_owed) == ("paid", Decimal("0.00"))
    assert (newer.state, newer.amount_owed) == ("active", Decimal("800.00"))
    assert payment.debt_case_id == older.id
    pay(session, acc, "1000.00", external_id="P-2")
    assert newer.state == "paid" and acc.balance == Decimal("-200.00")


def test_payment_without_open_debt_only_moves_the_balance(session):
    acc = make_account(session, "1001")
    payment = pay(session, acc, "100.00")
    assert payment.debt_case_id is None and acc.balance == Decimal("-100.00")


PAYMENTS = """Номер платежа;Лицевой счёт;Сумма;Дата платежа
P-1;1001;500,00;14.11.2026
P-2;1002;2 350,00;15.11.2026
P-3;9999;100,00;15.11.2026
P-1;1001;500,00;14.11.2026
P-4;1001;abc;15.11.2026
P-5;1001;100,00;30.12.2026
"""


def test_import_payments_applies_dedupes_and_reports(any_db, write_file, settings):
    with any_db.sessions.begin() as s:
        make_account(s, "1001", (dt.date(2026, 11, 1), "1800.00"))
        make_account(s, "1002", (dt.date(2026, 11, 5), "2350.00"))
    path = write_file("payments.csv", PAYMENTS)
    report = import_payments(any_db.sessions, path, settings=settings, now=NOW, today=TODAY)
    assert [(e.line, e.reason) for e in report.errors] == [
        (4, "unknown account '9999'"),
        (5, "duplicate payment id 'P-1' (first on line 2)"),
        (6, "bad amount 'abc' (not a number)"),
        (7, "bad date '30.12.2026' (in the future)"),
    ]
    assert (report.rows_total, report.rows_ok, report.created, report.unchanged, report.cases_closed) == (6, 2, 2, 0, 1)
    with any_db.sessions() as s:
        owed = {a.external_id: (a.balance, [(c.state, c.amount_owed) for c in a.cases])
                for a in s.scalars(select(Account))}
        assert owed == {"1001": (Decimal("1300.00"), [("active", Decimal("1300.00"))]),
                        "1002": (Decimal("0.00"), [("paid", Decimal("0.00"))])}
        assert s.scalar(select(ImportRun).where(ImportRun.kind == "payments")).created == 2

    again = import_payments(any_db.sessions, path, settings=settings, now=NOW, today=TODAY)
    assert (again.created, again.unchanged, again.rows_ok, again.cases_closed) == (0, 2, 2, 0)
    with any_db.sessions() as s:
        assert s.scalar(select(Account.balance).where(Account.external_id == "1001")) == Decimal("1300.00")
        assert len(s.scalars(select(Payment)).all()) == 2


def test_a_payment_id_reused_with_other_values_is_reported(db, write_file, settings):
    with db.sessions.begin() as s:
        make_account(s, "1001", (dt.date(2026, 11, 1), "1800.00"))
    import_payments(db.sessions, write_file("a.csv", "Номер платежа;Лицевой счёт;Сумма;Дата платежа\nP-1;1001;500,00;14.11.2026"),
                    settings=settings, now=NOW, today=TODAY)
    report = import_payments(db.sessions, write_file("b.csv", "Номер платежа;Лицевой счёт;Сумма;Дата платежа\nP-1;1001;700,00;14.11.2026"),
                             settings=settings, now=NOW, today=TODAY)
    assert report.created == 0 and report.nothing_read
    assert report.errors[0].reason == ("payment 'P-1' was already imported with other values "
                                       "(account 1001, 500.00 on 14.11.2026); left as it was")
    with db.sessions() as s:
        assert s.scalar(select(Account.balance)) == Decimal("1300.00")


def test_payment_currency_must_match_the_account(db, write_file, settings):
    with db.sessions.begin() as s:
        make_account(s, "1001", (dt.date(2026, 11, 1), "1800.00"))
    report = import_payments(
        db.sessions, write_file("c.csv", "payment_id,account,amount,date,currency\nP-9,1001,10.00,2026-11-14,USD\n"
                                "P-10,1001,10.00,2026-11-14,руб", encoding="utf-8"),
        settings=settings, now=NOW, today=TODAY)
    assert [(e.line, e.reason) for e in report.errors] == [(2, "bad currency 'USD' (the account is in RUB)")]
    assert report.created == 1


def test_dry_run_payments_change_nothing(db, write_file, settings):
    with db.sessions.begin() as s:
        make_account(s, "1002", (dt.date(2026, 11, 5), "2350.00"))
    report = import_payments(db.sessions, write_file("p.csv", PAYMENTS), settings=settings, now=NOW,
                             today=TODAY, dry_run=True)
    assert report.created == 1 and report.dry_run
    with db.sessions() as s:
        assert s.scalars(select(Payment)).all() == []
        assert s.scalar(select(DebtCase.state)) == "active"
