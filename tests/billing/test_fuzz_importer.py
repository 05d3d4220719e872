"""Fuzzing the importer: account and payment files of good rows mixed with junk (stray quotes,
huge fields, garbage, bad values), in any encoding, delimiter and line end. No exception escapes
but the importer's own file error, and every good row is stored."""

from __future__ import annotations

import csv
import io
import itertools
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ivr.billing.importer import ImportFileError, import_accounts, import_payments
from ivr.config import Settings
from ivr.db.models import Account, Payment
from ivr.wiring import Database
from tests.billing.conftest import NOW, TODAY

# one database per test (SQLite, then PostgreSQL), shared by its examples: each example's ids are new
FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_run = itertools.count(1)
SETTINGS = Settings(default_region="RU", default_language="ru", default_currency="RUB", default_timezone="Europe/Moscow")

ACCOUNT_HEADER = ["Лицевой счёт", "ФИО", "Телефон", "Сумма долга", "Дата платежа", "Дата блокировки"]
PAYMENT_HEADER = ["Номер платежа", "Лицевой счёт", "Сумма", "Дата платежа"]
NAMES = st.sampled_from(["Иванов Иван", "Пётр Семёнов", "O'Brien, Anna", 'Анна "Ёлка" Орлова', "Їжак Євген"])
PHONES = st.sampled_from(["8 (916) 123-45-67", "+7 916 765 43 21", "89031112233, 84951234567", "9161112233"])
AMOUNTS = st.sampled_from(["1 800,50", "950", "0,00", "-150,00", "12.30"])
DATES = st.sampled_from(["10.11.2026", "2026-11-25", ""])
# junk: never contains '#', which every good id has, so junk cannot take a good row's id
JUNK_TEXT = st.text(alphabet=st.sampled_from('abc019 .-+=@";,|\tЖжё№'), max_size=50)
JUNK = st.one_of(
    JUNK_TEXT,
    JUNK_TEXT.map(lambda t: '"' + t),
    JUNK_TEXT.map(lambda t: 'x;"' + t),
    st.integers(min_value=131_073, max_value=135_000).map(lambda n: "1;" + "я" * n + ";2"),
    st.just("Z-1;Плохой;12345;много;31.02.2026;01.01.0001"),  # bad values: a rejected row
    st.just("Z-2;Дорогой;8 809 123-45-67;10;;"),  # premium-rate number only: rejected
)


@st.composite
def files(draw: st.DrawFn, header: list[str], rows: list[list[str]]) -> bytes:
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1251"]))
    delimiter = draw(st.sampled_from([";", ",", "\t", "|"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    junk = draw(st.lists(JUNK, max_size=8))
    order = draw(st.permutations([("good", i) for i in range(len(rows))] + [("junk", i) for i in range(len(junk))]))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    for kind, index in order:
        if kind == "good":
            writer.writerow(rows[index])
        else:
            out.write(junk[index] + newline)
    return out.getvalue().encode(encoding)


def account_rows(run: int) -> st.SearchStrategy[list[list[str]]]:
    row = st.tuples(NAMES, PHONES, AMOUNTS, DATES, DATES)
    return st.lists(row, min_size=1, max_size=10).map(
        lambda items: [[f"#{run}-{n}", *item] for n, item in enumerate(items)])


def stored_ids(db: Database, run: int) -> set[str]:
    with db.sessions() as s:
        return set(s.scalars(select(Account.external_id).where(Account.external_id.like(f"#{run}-%"))))


@FUZZ
@given(st.data())
def test_every_good_account_of_a_mixed_file_is_stored(any_db: Database, data: st.DataObject) -> None:
    run = next(_run)
    rows = data.draw(account_rows(run))
    content = data.draw(files(ACCOUNT_HEADER, rows))
    try:
        report = import_accounts(any_db.sessions, io.BytesIO(content), settings=SETTINGS, today=TODAY, now=NOW,
                                 parallel=False)
    except ImportFileError as exc:
        # only a Windows-1251 junk line that happens to be valid UTF-8 makes a file "mixed"
        assert "mixes encodings" in str(exc), str(exc)
        assert stored_ids(any_db, run) == set()
        return
    assert stored_ids(any_db, run) == {r[0] for r in rows}
    assert report.rows_ok >= len(rows) and report.rows_total == report.rows_ok + report.rows_bad
    assert all(e.line > 1 and e.reason for e in report.errors)


@FUZZ
@given(st.data())
def test_every_good_payment_of_a_mixed_file_is_stored(any_db: Database, data: st.DataObject) -> None:
    run = next(_run)
    account = f"#{run}-acc"
    with any_db.sessions.begin() as s:
        s.add(Account(external_id=account, holder_name="Плательщик", balance=Decimal("1000000")))
    amounts = data.draw(st.lists(st.sampled_from(["10", "1 800,50", "0.01"]), min_size=1, max_size=10))
    rows = [[f"#{run}-p{n}", account, amount, "12.11.2026"] for n, amount in enumerate(amounts)]
    content = data.draw(files(PAYMENT_HEADER, rows))
    try:
        import_payments(any_db.sessions, io.BytesIO(content), settings=SETTINGS, now=NOW)
    except ImportFileError as exc:
        assert "mixes encodings" in str(exc), str(exc)
        return
    with any_db.sessions() as s:
        stored = set(s.scalars(select(Payment.external_id).where(Payment.external_id.like(f"#{run}-p%"))))
    assert stored == {r[0] for r in rows}
