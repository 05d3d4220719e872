"""The work report's per-operator table on the web page, in its CSV download and in `ivr report
work`, on the known history with operators' work (tests/reports/history.py)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from ivr.cli import main
from ivr.config import load_settings
from ivr.wiring import Database, open_database
from tests.reports.history import add_operator_work, build_history

from .conftest import Browser
from .test_report_pages import NOV, _cells, _row

HEADER = ["operator", "taken", "done", "resolved", "promise", "refused", "unreachable", "wrong_number",
          "other_result", "calls", "answered", "talk_minutes", "outside_hours"]
IVANOVA = ["ivanova", "2", "3", "1", "1", "0", "0", "1", "0", "2", "1", "2.09", "0"]
PETROV = ["petrov", "3", "2", "0", "1", "0", "1", "0", "0", "2", "2", "4.08", "1"]
TOTAL = ["total", "5", "5", "1", "2", "0", "1", "1", "0", "4", "3", "6.17", "1"]


@pytest.fixture
def operators_history(db: Database) -> None:
    with db.sessions.begin() as s:
        add_operator_work(s, build_history(s))


def test_work_page_has_the_per_operator_table(operators_history: None, browser: Any, users: dict[str, int]) -> None:
    boss: Browser = browser("boss")
    html = boss.get(f"/reports/work?{NOV}").text
    assert "Работа операторов за период" in html
    assert "Минут разговора" in html and "Вне часов абонента" in html
    assert _row(html, "operators", "ivanova") == ["ivanova", "2", "3", "1", "1", "0", "0", "1", "0", "2", "1",
                                                  "2,09", "0"]
    assert _row(html, "operators", "итого")[-2:] == ["6,17", "1"]
    assert [r[0] for r in _cells(html, "operators")] == ["ivanova", "petrov", "итого"]


def test_csv_download_of_the_operator_table(operators_history: None, browser: Any, users: dict[str, int]) -> None:
    boss: Browser = browser("boss")
    response = boss.get(f"/reports/work?{NOV}&format=csv&table=operators")
    assert response.status_code == 200
    assert 'filename="work-operators_2024-11-01_2024-11-30.csv"' in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert rows == [HEADER, IVANOVA, PETROV, TOTAL]


def test_cli_prints_the_operator_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'reports.sqlite3'}"
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    env_file = tmp_path / "none.env"
    database = open_database(load_settings(env_file))
    with database.sessions.begin() as s:
        add_operator_work(s, build_history(s))
    database.engine.dispose()
    argv = ["--env-file", str(env_file), "report", "work", "--from", "2024-11-01", "--to", "2024-12-01"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Operator work in the period, per operator" in out
    assert any(line.split()[:3] == ["petrov", "3", "2"] and "4.08" in line for line in out.splitlines())
    assert main([*argv, "--format", "csv", "--table", "operators"]) == 0
    assert list(csv.reader(io.StringIO(capsys.readouterr().out))) == [HEADER, IVANOVA, PETROV, TOTAL]
