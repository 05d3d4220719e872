"""Report downloads for spreadsheets (issue 14): one table per file, headings and codes in the UI
language, the currency on money columns, ";" with decimal commas for a Russian-locale Excel, a
UTF-8 BOM; the "today" preset and presets that include today. The data is the known history of
tests/reports/history.py (November 2024); the test clock's today is 2025-11-19."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from ivr.wiring import Database
from tests.reports.history import History, build_history

from .conftest import Browser

NOV = "from=2024-11-01&to=2024-12-01"


@pytest.fixture
def history(db: Database) -> History:
    with db.sessions.begin() as s:
        return build_history(s)


@pytest.fixture
def boss(browser: Any, users: dict[str, int]) -> Browser:
    b: Browser = browser("boss")
    return b


def _sheet(response: Any, delimiter: str) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8, not Windows-1251
    text = response.content.decode("utf-8")[1:]
    assert "\r\n" in text  # Excel's own line ends
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def test_semicolon_sheet_opens_in_a_russian_excel(history: History, boss: Browser) -> None:
    response = boss.get(f"/reports/money?{NOV}&format=csv&table=recovery&sep=semicolon")
    assert response.headers["content-disposition"] == \
        'attachment; filename="money-recovery_2024-11-01_2024-11-30_excel.csv"'
    rows = _sheet(response, ";")
    # one table only, headings in Russian, the currency on the money columns
    assert rows[0] == ["Группа", "Дел", "Долг, RUB", "Возвращено, RUB", "Дел с оплатой", "Возвращено %"]
    assert rows[1] == ["Робот дозвонился", "12", "8020,65", "3170,35", "5", "39,53"]  # decimal comma, no grouping
    assert rows[-1][0] == "итого" and len(rows) == 4
    assert not any(r and r[0] in ("table", "start", "series") for r in rows)  # no other table in the file


def test_comma_sheet_keeps_decimal_points_and_russian_labels(history: History, boss: Browser) -> None:
    rows = _sheet(boss.get(f"/reports/reasons?{NOV}&format=csv&table=reasons&sep=comma"), ",")
    assert rows[0] == ["Категория", "Код", "Причина", "Норма %", "Ответов", "Факт %", "Отклонение, п.п."]
    forgot = next(r for r in rows if r[1] == "forgot")
    assert forgot == ["неуправляемая", "forgot", "забыл или не успел оплатить", "35.00", "4", "33.33", "-1.67"]
    semicolon = _sheet(boss.get(f"/reports/reasons?{NOV}&format=csv&table=reasons&sep=semicolon"), ";")
    assert next(r for r in semicolon if r[1] == "forgot")[3:] == ["35,00", "4", "33,33", "-1,67"]


def test_sheet_labels_follow_the_ui_language(history: History, boss: Browser) -> None:
    assert boss.post("/lang", {"lang": "en", "next": "/reports"}).status_code == 303
    rows = _sheet(boss.get(f"/reports/money?{NOV}&format=csv&table=recovery&sep=comma"), ",")
    assert rows[0][2:4] == ["Debt, RUB", "Recovered, RUB"]
    assert rows[1][:4] == ["Reached by the robot", "12", "8020.65", "3170.35"]


def test_sheet_without_a_table_is_the_first_table_and_bad_values_are_refused(history: History, boss: Browser) -> None:
    rows = _sheet(boss.get(f"/reports/money?{NOV}&format=csv&sep=semicolon"), ";")
    assert rows[0] == ["Долг на начало, RUB", "Дел", "Счетов", "Средний долг на счёт, RUB"]
    assert len(rows) == 2
    bad = boss.get(f"/reports/money?{NOV}&format=csv&sep=tab")
    assert bad.status_code == 400 and "tab" in bad.json()["error"]
    missing = boss.get(f"/reports/money?{NOV}&format=csv&sep=comma&table=nope")
    assert missing.status_code == 400


def test_page_offers_both_downloads_per_table(history: History, boss: Browser) -> None:
    html = boss.get(f"/reports/money?{NOV}").text
    for table in ("start", "recovery", "series"):
        assert (f'id="csv-ru-{table}" href="/reports/money?from=2024-11-01&amp;to=2024-12-01&amp;days=7'
                f'&amp;format=csv&amp;table={table}&amp;sep=semicolon"') in html
        assert f'id="csv-{table}" href="' in html
    assert "Долг, RUB</th>" in html  # the page names the currency too


def test_today_preset_and_default_periods_include_today(history: History, boss: Browser) -> None:
    html = boss.get("/reports/funnel").text
    # the test clock says 2025-11-19; "to" is the first day NOT reported
    assert '<a href="/reports/funnel?from=2025-11-19&amp;to=2025-11-20">Сегодня</a>' in html
    assert 'name="to" value="2025-11-20"' in html  # the default period ends with today
    assert '<a href="/reports/funnel?from=2025-11-01&amp;to=2025-11-20">Этот месяц</a>' in html
    today = boss.get("/reports/funnel?from=2025-11-19&to=2025-11-20")
    assert today.status_code == 200 and "19.11.2025 — 19.11.2025" in today.text
