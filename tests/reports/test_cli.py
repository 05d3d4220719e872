"""`ivr report ...` through ivr.cli.main against a temporary SQLite file holding the known history."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.config import load_settings
from ivr.wiring import open_database
from tests.reports.history import build_history

PERIOD_ARGS = ["--from", "2024-11-01", "--to", "2024-12-01"]


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The history in a SQLite file named by IVR_DATABASE_URL; returns the argv prefix."""
    url = f"sqlite:///{tmp_path / 'reports.sqlite3'}"
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    monkeypatch.setenv("IVR_OPERATOR_MINUTES_PER_CALL", "4.5")
    env_file = tmp_path / "none.env"  # no .env: settings come from the environment only
    database = open_database(load_settings(env_file))
    with database.sessions.begin() as s:
        build_history(s)
    database.engine.dispose()
    return ["--env-file", str(env_file), "report"]


def test_table_is_the_default(cli_db: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*cli_db, "reasons", *PERIOD_ARGS, "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Reasons 2024-11-01 .. 2024-11-30: 12 answers\n")
    assert "forgot or did not have time" in out and "33.33" in out


def test_csv_and_json_of_every_report(cli_db: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*cli_db, "work", *PERIOD_ARGS, "--format", "json"]) == 0
    work = json.loads(capsys.readouterr().out)
    assert work["operator_hours_saved"] == "1.88"  # minutes per call from IVR_OPERATOR_MINUTES_PER_CALL
    assert main([*cli_db, "work", *PERIOD_ARGS, "--format", "json", "--minutes-per-call", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["operator_hours_saved"] == "1.25"

    assert main([*cli_db, "promises", *PERIOD_ARGS, "--format", "csv", "--table", "promises"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[-1] == {"stage": "total", "made": "6", "kept": "2", "broken": "2", "pending": "1",
                        "cancelled": "1", "kept_rate_pct": "50.00"}

    assert main([*cli_db, "funnel", *PERIOD_ARGS, "--format", "csv", "--stage", "firm"]) == 0
    out = capsys.readouterr().out
    assert "funnel,open,cases open,9,,100.00" in out

    assert main([*cli_db, "money", *PERIOD_ARGS, "--format", "json", "--days", "0", "--granularity", "week"]) == 0
    money = json.loads(capsys.readouterr().out)
    assert money["reached"]["recovered"] == "1500.00" and len(money["series"]) == 5

    assert main([*cli_db, "reasons", *PERIOD_ARGS, "--format", "json", "--route", "retention"]) == 0
    assert [r["code"] for r in json.loads(capsys.readouterr().out)["rows"]] == ["competitor", "moving_away"]

    for kind in ("reasons", "funnel", "promises", "money", "work"):
        assert main([*cli_db, kind, *PERIOD_ARGS, "--format", "csv"]) == 0
        assert capsys.readouterr().out.startswith("table,")


def test_chart_files(cli_db: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out" / "money.svg"
    assert main([*cli_db, "money", *PERIOD_ARGS, "--chart", str(target)]) == 0
    err = capsys.readouterr().err
    assert f"chart written: {target}" in err
    debt = tmp_path / "out" / "money-debt.svg"
    assert "Reached by the robot" in "".join(ET.parse(target).getroot().itertext())
    assert "Average debt per account" in "".join(ET.parse(debt).getroot().itertext())


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["reasons", "--from", "2024-11-31"], "--from: expected a date as YYYY-MM-DD"),
        (["reasons", "--from", "2024-11-10", "--to", "2024-11-01"], "must be after"),
        (["funnel", *PERIOD_ARGS, "--stage", "firmm"], "unknown stage 'firmm' (stages: before_due, reminder, firm"),
        (["work", *PERIOD_ARGS, "--route", "nowhere"], "unknown route 'nowhere' (routes: billing, quality, retention)"),
        (["money", *PERIOD_ARGS, "--days", "-1"], "--days must be 0 or more"),
        (["promises", *PERIOD_ARGS, "--table", "promises"], "--table applies to --format csv only"),
        (["promises", *PERIOD_ARGS, "--format", "csv", "--table", "x"], "has no table 'x'"),
    ],
)
def test_bad_input_is_a_clear_error(cli_db: list[str], capsys: pytest.CaptureFixture[str], argv: list[str],
                                    message: str) -> None:
    assert main([*cli_db, *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_route_is_not_an_option_of_the_funnel(cli_db: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*cli_db, "funnel", "--route", "billing"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --route" in capsys.readouterr().err


def test_csv_cannot_run_as_a_formula(cli_db: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import update

    from ivr.db.models import Reason

    database = open_database(load_settings(cli_db[1]))
    with database.sessions.begin() as s:
        s.execute(update(Reason).where(Reason.code == "forgot").values(labels={"en": "@SUM(A1:A9)"}))
    database.engine.dispose()
    assert main([*cli_db, "reasons", *PERIOD_ARGS, "--format", "csv", "--table", "reasons", "--lang", "en"]) == 0
    rows = {r["code"]: r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    assert rows["forgot"]["label"] == "'@SUM(A1:A9)" and rows["forgot"]["deviation_pp"] == "-1.67"
