"""Dates outside the accepted years are rejected by line, in accounts and payments alike."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import select

from ivr.billing.importer import import_accounts, import_payments
from ivr.db.models import Account, Payment
from tests.billing.conftest import NOW, TODAY

ACCOUNTS = """\
Лицевой счёт;ФИО;Телефон;Сумма долга;Дата платежа;Дата блокировки
D-1;Первый Пётр;89161110001;100,00;10.11.2026;01.01.0001
D-2;Второй Иван;89161110002;100,00;10.11.2026;31.12.9999
D-3;Третий Олег;89161110003;100,00;1999-12-31;25.11.2026
D-4;Четвёртый Лев;89161110004;100,00;01.01.2000;31.12.2100
D-5;Пятый Ян;89161110005;100,00;10.11.2026;01.01.2101
"""


def test_accounts_with_dates_outside_the_years_are_rejected_by_line(db, write_file, settings):
    report = import_accounts(db.sessions, write_file("a.csv", ACCOUNTS), settings=settings, today=TODAY, now=NOW)
    assert [(e.line, e.field, e.reason) for e in report.errors] == [
        (2, "block_date", "bad date '01.01.0001' (outside the years 2000-2100 (IVR_IMPORT_YEARS))"),
        (3, "block_date", "bad date '31.12.9999' (outside the years 2000-2100 (IVR_IMPORT_YEARS))"),
        (4, "due_date", "bad date '1999-12-31' (outside the years 2000-2100 (IVR_IMPORT_YEARS))"),
        (6, "block_date", "bad date '01.01.2101' (outside the years 2000-2100 (IVR_IMPORT_YEARS))"),
    ]
    with db.sessions() as s:  # the first and last day of the range are fine
        assert list(s.scalars(select(Account.external_id))) == ["D-4"]


def test_the_years_come_from_the_setting(db, write_file, settings):
    wide = dataclasses.replace(settings, import_years=(1990, 2999))
    report = import_accounts(db.sessions, write_file("a.csv", ACCOUNTS), settings=wide, today=TODAY, now=NOW)
    assert [e.line for e in report.errors] == [2, 3]  # 0001 and 9999 are still out
    assert report.rows_ok == 3


def test_payments_outside_the_years_are_rejected_by_line(db, write_file, settings):
    import_accounts(db.sessions, write_file("a.csv", ACCOUNTS), settings=settings, today=TODAY, now=NOW)
    payments = "payment_id;account;amount;paid_on\nP-1;D-4;10;01.01.0001\nP-2;D-4;10;12.11.2026\n"
    report = import_payments(db.sessions, write_file("p.csv", payments), settings=settings, now=NOW)
    assert [(e.line, e.reason) for e in report.errors] == [
        (2, "bad date '01.01.0001' (outside the years 2000-2100 (IVR_IMPORT_YEARS))")]
    with db.sessions() as s:
        assert s.scalars(select(Payment.paid_on)).all() == [dt.date(2026, 11, 12)]
