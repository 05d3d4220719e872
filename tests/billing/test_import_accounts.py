"""Account import end to end, on SQLite and PostgreSQL (any_db)."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from sqlalchemy import select

from ivr.billing.columns import ColumnMap
from ivr.billing.importer import ImportFileError, import_accounts
from ivr.db.base import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.models import Account, CaseState, DebtCase, ImportRun, PhoneNumber, Promise
from ivr.db.seed import seed
from tests.billing.conftest import NOW, TODAY

HEADER = "Лицевой счёт;ФИО;Телефон;Сумма долга;Валюта;Дата платежа;Дата блокировки;Часовой пояс;Язык;Услуга;Тариф"
CP1251_FILE = HEADER + """
1001;Иванов Иван Иванович;8 (916) 123-45-67;1 800,50;RUB;10.11.2026;25.11.2026;;;Охрана квартиры;Базовый
1002;Петрова Анна Сергеевна;"+7 495 123 45 67; 8 916 765 43 21";2 350,00;руб.;05.11.2026;20.11.2026;Europe/Moscow;;Видеонаблюдение;Облако
1003;Сидоров Пётр;12345;900,00;RUB;01.11.2026;21.11.2026;;;Охрана;Эконом
;Без Номера;89161234500;100,00;RUB;01.11.2026;;;;;
1005;Кузнецова Ольга;89161234501;1 8OO,00;RUB;01.11.2026;;;;;
1006;Орлов Олег;89161234502;500,00;RUB;31.02.2026;;;;;
1007;Зайцев Игорь;89161234503;500,00;ЮАНЬ;01.11.2026;;;;;
1008;Морозова Ирина;89161234504;500,00;RUB;01.11.2026;;Europe/Mosсow;;;
1001;Двойник Иван;89161234505;10,00;RUB;01.11.2026;;;;;
1010;Короткая Строка;89161234506;500,00
1011;Волков Андрей;"8 (383) 212-34-56, 123";0,00;RUB;01.11.2026;;;uk;Охрана дома;Премиум
1012;Семенова Анна;+380 44 123 45 67;-150,00;;;;;en;;
1013;Белов Борис;89031112233;3 500;RUB;2026-10-20;;МСК+4;;;
"""
EXPECTED_ERRORS = [
    (4, "bad phone '12345' (too short)"),
    (5, "missing id"),
    (6, "bad amount '1 8OO,00' (not an amount)"),
    (7, "bad date '31.02.2026' (no such date)"),
    (8, "bad currency 'ЮАНЬ' (unknown currency)"),
    (9, "unknown time zone 'Europe/Mosсow' (not a zone name such as Europe/Moscow, МСК+4 or UTC+7)"),
    (10, "duplicate id '1001' (first on line 2)"),
    (11, "wrong column count: expected 11, got 4"),
    (12, "bad phone '123' (too short); the account's other numbers were kept"),
]


def snapshot(sessions):
    """Every column of every account, phone and case: what "changes nothing" compares."""
    with sessions() as s:
        out = []
        for model in (Account, PhoneNumber, DebtCase, Promise):
            cols = list(model.__table__.columns)
            out.append([tuple(r) for r in s.execute(select(*cols).order_by(cols[0]))])
        return out


def load(sessions, external_id):
    with sessions() as s:
        acc = s.scalar(select(Account).where(Account.external_id == external_id))
        assert acc is not None, external_id
        phones = [(p.number, p.priority, p.status) for p in acc.phones]
        cases = list(s.scalars(select(DebtCase).where(DebtCase.account_id == acc.id).order_by(DebtCase.id)))
        s.expunge_all()
        return acc, phones, cases


def run(db, source, settings, **kw):
    kw.setdefault("now", NOW)
    return import_accounts(db.sessions, source, settings=settings, today=TODAY, **kw)


def test_cp1251_file_good_rows_stored_bad_rows_reported(any_db, write_file, settings):
    path = write_file("billing.csv", CP1251_FILE)
    report = run(any_db, path, settings)

    assert (report.encoding, report.delimiter) == ("Windows-1251", ";")
    assert [(e.line, e.reason) for e in report.errors] == EXPECTED_ERRORS
    assert (report.rows_total, report.rows_ok, report.created, report.updated, report.unchanged) == (13, 5, 5, 0, 0)
    assert report.cases_opened == 3  # 1001, 1002, 1013; not the zero and the credit balance
    summary = report.summary()
    assert "13 rows read, 5 good (5 new, 0 updated, 0 unchanged), 8 rejected" in summary
    assert "line 4: bad phone '12345' (too short)" in summary

    acc, phones, cases = load(any_db.sessions, "1001")
    assert (acc.holder_name, acc.balance, acc.currency, acc.language, acc.country) == (
        "Иванов Иван Иванович", Decimal("1800.50"), "RUB", "ru", "RU")
    assert (acc.due_date, acc.block_date, acc.timezone) == (dt.date(2026, 11, 10), dt.date(2026, 11, 25), None)
    assert (acc.service_name, acc.tariff) == ("Охрана квартиры", "Базовый")
    assert phones == [("+79161234567", 1, "ok")]
    assert len(cases) == 1
    case = cases[0]
    # staged by the import itself (the ladder's first stage starts the day after the due date)
    assert (case.state, case.stage_code, case.opened_on) == (CaseState.ACTIVE.value, "reminder", dt.date(2026, 11, 10))
    assert (case.amount_initial, case.amount_owed, case.currency) == (Decimal("1800.50"), Decimal("1800.50"), "RUB")

    acc, phones, cases = load(any_db.sessions, "1002")
    assert phones == [("+74951234567", 1, "ok"), ("+79167654321", 2, "ok")]
    assert acc.timezone == "Europe/Moscow" and acc.currency == "RUB"

    acc, phones, cases = load(any_db.sessions, "1011")  # the bad second phone was dropped
    assert phones == [("+73832123456", 1, "ok")] and acc.language == "uk" and cases == []
    acc, phones, cases = load(any_db.sessions, "1012")
    assert (acc.balance, acc.country, acc.language, acc.due_date) == (Decimal("-150.00"), "UA", "en", None)
    assert cases == []
    acc, _phones, cases = load(any_db.sessions, "1013")
    assert acc.timezone == "Asia/Krasnoyarsk" and cases[0].opened_on == dt.date(2026, 10, 20)

    with any_db.sessions() as s:
        assert s.scalar(select(Account.id).where(Account.external_id == "1003")) is None
        run_row = s.scalar(select(ImportRun))
        assert run_row is not None
        assert (run_row.kind, run_row.filename, run_row.sha256) == ("accounts", "billing.csv", report.sha256)
        assert (run_row.rows_ok, run_row.rows_bad, run_row.created, run_row.updated) == (5, 8, 5, 0)
        assert run_row.errors[0] == {"line": 4, "reason": "bad phone '12345' (too short)", "field": "phones",
                                     "value": "12345"}


def test_reimport_of_the_same_file_changes_nothing(any_db, write_file, settings):
    path = write_file("billing.csv", CP1251_FILE)
    run(any_db, path, settings)
    before = snapshot(any_db.sessions)
    again = run(any_db, path, settings, now=NOW + dt.timedelta(hours=3))
    assert (again.created, again.updated, again.unchanged, again.rows_ok) == (0, 0, 5, 5)
    assert (again.cases_opened, again.cases_updated, again.cases_closed) == (0, 0, 0)
    assert [(e.line, e.reason) for e in again.errors] == EXPECTED_ERRORS
    assert again.seen_before is not None
    assert snapshot(any_db.sessions) == before  # every column, updated_at included


def test_changed_rows_update_accounts_and_debt_cases(any_db, write_file, settings):
    run(any_db, write_file("v1.csv", CP1251_FILE), settings)
    with any_db.sessions.begin() as s:
        acc2 = s.scalar(select(Account).where(Account.external_id == "1002"))
        case2 = s.scalar(select(DebtCase).where(DebtCase.account_id == acc2.id))
        s.add(Promise(debt_case_id=case2.id, promised_date=TODAY + dt.timedelta(days=2)))
        s.add(Promise(debt_case_id=case2.id, promised_date=TODAY - dt.timedelta(days=3)))
        case2.state = CaseState.PROMISED.value
        landline = next(p for p in acc2.phones if p.number == "+74951234567")
        landline.status = "wrong_party"
        acc13 = s.scalar(select(Account).where(Account.external_id == "1013"))
        case13 = s.scalar(select(DebtCase).where(DebtCase.account_id == acc13.id))
        case13.state, case13.closed_at = CaseState.CLOSED.value, NOW  # the ladder ran out
    untouched = load(any_db.sessions, "1012")[0].updated_at

    changed = HEADER + """
1001;Иванов Иван Иванович;8 (916) 123-45-67;900,00;RUB;10.11.2026;25.11.2026;;;Охрана квартиры;Базовый
1002;Петрова Анна Сергеевна;"8 916 765 43 21, +7 495 123 45 67";0,00;руб.;05.11.2026;20.11.2026;Europe/Moscow;;Видеонаблюдение;Облако
1011;Волков Андрей;"8 (383) 212-34-56";500,00;RUB;01.11.2026;;;uk;Охрана дома;Премиум
1012;Семенова Анна;+380 44 123 45 67;-150,00;;;;;en;;
1013;Белов Борис Борисович;89031112233;3 500;RUB;2026-10-20;;МСК+4;;;
1014;Новый Абонент;89031112244;2 000,00;RUB;;;;;;
"""
    later = NOW + dt.timedelta(days=1)
    report = run(any_db, write_file("v2.csv", changed), settings, now=later)
    assert report.errors == []
    # 1011 only lost a bad phone that was never stored: unchanged
    assert (report.created, report.updated, report.unchanged) == (1, 4, 1)
    assert (report.cases_opened, report.cases_updated, report.cases_closed) == (2, 1, 1)

    acc, _p, cases = load(any_db.sessions, "1001")  # partial payment in billing
    assert acc.balance == Decimal("900.00") and acc.updated_at == later
    assert (cases[0].amount_owed, cases[0].amount_initial, cases[0].state) == (
        Decimal("900.00"), Decimal("1800.50"), "active")

    acc, phones, cases = load(any_db.sessions, "1002")  # paid off in billing
    assert phones == [("+79167654321", 1, "ok"), ("+74951234567", 2, "wrong_party")]
    assert (cases[0].state, cases[0].amount_owed, cases[0].closed_at) == ("paid", Decimal("0.00"), later)
    with any_db.sessions() as s:
        statuses = sorted((p.promised_date, p.status) for p in s.scalars(
            select(Promise).where(Promise.debt_case_id == cases[0].id)))
    assert statuses == [(TODAY - dt.timedelta(days=3), "pending"), (TODAY + dt.timedelta(days=2), "kept")]

    _acc, _p, cases = load(any_db.sessions, "1011")  # balance 0 -> 500: a new episode of debt
    assert [(c.amount_owed, c.opened_on) for c in cases] == [(Decimal("500.00"), dt.date(2026, 11, 1))]

    acc, _p, cases = load(any_db.sessions, "1012")
    assert acc.updated_at == untouched

    acc, _p, cases = load(any_db.sessions, "1013")  # a new name does not reopen closed debt
    assert acc.holder_name == "Белов Борис Борисович"
    assert [c.state for c in cases] == ["closed"]

    _acc, _p, cases = load(any_db.sessions, "1014")  # no due date: the case opens today
    assert [(c.opened_on, c.amount_owed) for c in cases] == [(TODAY, Decimal("2000.00"))]


def test_utf8_bom_comma_file_with_points_and_iso_dates(any_db, settings):
    data = "\ufeff" + (
        "account,holder,phones,balance,currency,due_date,block_date,timezone,language\r\n"
        '"A-1","Smith, John",+1 212 555 0123,"1,800.50",USD,2026-11-10,2026-11-25,America/New_York,en\r\n'
        'A-2,Шевченко Тарас,"+380 44 123 45 67, +380 50 123 45 67",1800.5,UAH,2026-11-01,,,uk\r\n'
    )
    report = run(any_db, io.BytesIO(data.encode("utf-8")), settings, filename="upload.csv")
    assert (report.encoding, report.delimiter, report.errors) == ("UTF-8 (BOM)", ",", [])
    assert report.created == 2 and report.filename == "upload.csv"
    acc, phones, cases = load(any_db.sessions, "A-1")
    assert (acc.holder_name, acc.balance, acc.currency, acc.timezone, acc.language, acc.country) == (
        "Smith, John", Decimal("1800.50"), "USD", "America/New_York", "en", "US")
    assert (acc.due_date, acc.block_date) == (dt.date(2026, 11, 10), dt.date(2026, 11, 25))
    assert cases[0].currency == "USD"
    acc, phones, _cases = load(any_db.sessions, "A-2")
    assert [p[0] for p in phones] == ["+380441234567", "+380501234567"]
    assert (acc.balance, acc.currency) == (Decimal("1800.50"), "UAH")


def test_column_map_override(db, write_file, settings, tmp_path):
    (tmp_path / "cols.toml").write_text(
        '[accounts]\nexternal_id = "Договор"\nholder_name = "Клиент"\nphones = ["Мобильный", "Домашний"]\n'
        'balance = "К оплате"\n', encoding="utf-8")
    path = write_file("custom.csv", "Договор;Клиент;Домашний;Мобильный;К оплате;Лицевой счёт\n"
                                    "Д-7;Ким Олег;8 495 123 45 67;8 916 123 45 67;99,90;не тот столбец")
    with pytest.raises(ImportFileError, match="missing required column"):
        run(db, path, settings)  # the default names do not fit this billing
    report = run(db, path, settings, columns=ColumnMap.from_file(tmp_path / "cols.toml"))
    assert report.created == 1 and report.errors == []
    _acc, phones, cases = load(db.sessions, "Д-7")
    assert [p[0] for p in phones] == ["+79161234567", "+74951234567"]  # the map's order: mobile first
    assert cases[0].amount_owed == Decimal("99.90")


def test_dry_run_writes_nothing(db, write_file, settings):
    path = write_file("billing.csv", CP1251_FILE)
    report = run(db, path, settings, dry_run=True)
    assert (report.created, report.rows_ok, len(report.errors)) == (5, 5, 9)
    assert "Dry run" in report.summary()
    with db.sessions() as s:
        assert s.scalars(select(Account)).all() == []
        assert s.scalars(select(ImportRun)).all() == []


def test_unreadable_file_raises(db, settings, write_file):
    with pytest.raises(ImportFileError, match="missing required column"):
        run(db, write_file("x.csv", "Адрес;Город\nЛенина 1;Омск"), settings)
    with pytest.raises(ImportFileError, match="empty"):
        run(db, io.BytesIO(b""), settings)


def test_nothing_good_is_reported_as_such(db, settings, write_file):
    report = run(db, write_file("bad.csv", HEADER + "\n;Без Номера;89161234500;100,00;RUB;;;;;;"), settings)
    assert report.nothing_read and report.rows_total == 1 and report.errors[0].reason == "missing id"


def test_parallel_parsing_gives_the_same_result(db, write_file, settings, tmp_path):
    rows = [HEADER]
    for i in range(300):
        phone = f"8 (916) {i:03d}-45-67" if i % 7 else "12345"
        rows.append(f"{5000 + i};Абонент {i};{phone};{i},50;RUB;01.11.2026;;;;;")
    rows.append("5001;Дубль;89161110000;1,00;RUB;;;;;;")
    path = write_file("many.csv", "\n".join(rows))
    sequential = run(db, path, settings, batch_size=64, parallel=False)

    engine = make_engine(f"sqlite:///{tmp_path / 'parallel.sqlite3'}")
    upgrade(engine)
    try:
        other = type(db)(engine, make_session_factory(engine))
        with other.sessions.begin() as session:
            seed(session)  # the same ladder, so that the import stages the cases alike
        parallel = run(other, path, settings, batch_size=64, parallel=True)
        assert [(e.line, e.reason) for e in parallel.errors] == [(e.line, e.reason) for e in sequential.errors]
        assert (parallel.rows_total, parallel.rows_ok, parallel.created, parallel.cases_opened) == (
            sequential.rows_total, sequential.rows_ok, sequential.created, sequential.cases_opened) == (301, 257, 257, 257)
        assert snapshot(other.sessions) == snapshot(db.sessions)
    finally:
        engine.dispose()
    with db.engine.connect() as conn:  # the bulk-load settings were undone on the pooled connection
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -2000
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal_and_big_files(db, write_file, settings, monkeypatch):
    rows = [HEADER] + [f"{7000 + i};Абонент Номер {i:05d} с длинным именем;8 (916) {i % 1000:03d}-{i % 100:02d}-67;"
                       f"{i},50;RUB;01.11.2026;25.11.2026;;;Охрана квартиры;Базовый" for i in range(9000)]
    big = write_file("big.csv", "\n".join(rows))
    assert big.stat().st_size > 1 << 20
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    run(db, big, settings, progress=True, parallel=False)
    assert "import accounts" in terminal.getvalue()
    piped = io.StringIO()  # not a terminal: no bar
    monkeypatch.setattr("sys.stderr", piped)
    run(db, big, settings, progress=True, parallel=False)
    assert "import accounts" not in piped.getvalue()
