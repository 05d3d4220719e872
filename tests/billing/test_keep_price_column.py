"""Issue 16: the optional "keep this month's price until" column of the accounts file."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ivr.billing.importer import import_accounts
from ivr.db.models import Account
from tests.billing.conftest import TODAY

FILE = """Лицевой счёт;ФИО;Телефон;Сумма долга;Дата платежа;Цена действует до
2001;Иванов Иван;89161234567;1 800,00;25.11.2026;25.11.2026
2002;Петров Пётр;89161234568;900,00;25.11.2026;
2003;Сидоров Семён;89161234569;700,00;25.11.2026;31.11.2026
"""


def test_keep_price_until_imported_optional_and_a_bad_date_keeps_the_account(any_db, write_file, settings) -> None:
    report = import_accounts(any_db.sessions, write_file("acc.csv", FILE), settings=settings, today=TODAY)
    assert report.rows_ok == 3 and report.created == 3
    # a bad optional date is a warning on a kept row: the account is still called, without the phrase
    assert [(e.line, e.field) for e in report.errors] == [(4, "keep_price_until")]
    assert "were kept" in report.errors[0].reason
    with any_db.sessions() as s:
        got = dict(s.execute(select(Account.external_id, Account.keep_price_until)).all())
    assert got == {"2001": dt.date(2026, 11, 25), "2002": None, "2003": None}
    again = import_accounts(any_db.sessions, write_file("acc.csv", FILE), settings=settings, today=TODAY)
    assert again.unchanged == 3  # the new column takes part in "changes nothing"
