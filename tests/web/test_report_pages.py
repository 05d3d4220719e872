"""The report pages: every report for a period with its figures, charts and filters, CSV and JSON
downloads equal to ivr.reports.output for the same report, role rules, and clear errors for bad
query parameters. The data is the known history of tests/reports/history.py (November 2024)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from ivr.reports import funnel_report, money_report, promises_report, reasons_report, work_report
from ivr.reports.funnel import LABELS
from ivr.reports.output import to_csv, to_jsonable
from ivr.web import i18n
from ivr.web.report_view import REPORT_KEYS, number, relabel, report_view, split_chart
from ivr.wiring import Database
from tests.reports.history import PERIOD, History, build_history

from .conftest import Browser

NOV = "from=2024-11-01&to=2024-12-01"
NBSP = "\u00a0"


@pytest.fixture
def history(db: Database) -> History:
    with db.sessions.begin() as s:
        return build_history(s)


@pytest.fixture
def boss(browser: Any, users: dict[str, int]) -> Browser:
    b: Browser = browser("boss")
    return b


def _report(db: Database, key: str, lang: str = "ru", **filters: Any) -> Any:
    with db.sessions() as s:
        if key == "reasons":
            return reasons_report(s, PERIOD, language=lang, **filters)
        if key == "funnel":
            return funnel_report(s, PERIOD, **filters)
        if key == "promises":
            return promises_report(s, PERIOD, **filters)
        if key == "money":
            return money_report(s, PERIOD, **filters)
        return work_report(s, PERIOD, minutes_per_call=3.0, **filters)


def _cells(html: str, table: str) -> list[list[str]]:
    """The body rows of one table of the page, as the reader sees them."""
    section = html.split(f'id="table-{table}"', 1)[1].split("</table>", 1)[0]
    body = section.split("<tbody>", 1)[1]
    return [re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.DOTALL)]


def _row(html: str, table: str, first: str, column: int = 0) -> list[str]:
    rows = [r for r in _cells(html, table) if len(r) > column and r[column] == first]
    assert len(rows) == 1, (first, _cells(html, table))
    return rows[0]


# Known figures of the history, as the page shows them in Russian (see tests/reports for the sums).
def test_reasons_page(history: History, boss: Browser) -> None:
    page = boss.get(f"/reports/reasons?{NOV}")
    assert page.status_code == 200
    html = page.text
    assert _row(html, "reasons", "forgot", 1) == ["неуправляемая", "forgot", "забыл или не успел оплатить", "35,00", "4",
                                                  "33,33", "\u22121,67"]
    assert _row(html, "categories", "прочее") == ["прочее", "—", "2", "16,67", "—"]
    assert "Ответов о причинах</dt><dd class=\"num\">12</dd>" in html
    # a reason nobody gave is the furthest from its norm of 10 %
    assert "Наибольшее отклонение</dt><dd class=\"num\">не согласен с суммой: \u221210,00 п.п.</dd>" in html
    assert '<td class="hide-narrow">forgot</td>' in html  # the code column is left out on a phone
    assert "<th class=\"num\">Норма %</th>" in html
    svg = html.split('id="chart-reasons-reasons"', 1)[1].split("</svg>", 1)[0]
    assert ">Норма %</text>" in svg and ">Факт %</text>" in svg  # the legend, in Russian
    assert ">забыл или не успел оплатить</text>" in svg


def test_funnel_page(history: History, boss: Browser) -> None:
    html = boss.get(f"/reports/funnel?{NOV}").text
    assert _row(html, "funnel", "открытые дела") == ["открытые дела", "18", "—", "100,00"]
    assert _row(html, "funnel", "говорил сам должник") == ["говорил сам должник", "12", "80,00", "66,67"]
    assert _cells(html, "attempts") == [["38", "30", "78,95"]]
    assert "Ответили (доля дозвона)</dt><dd class=\"num\">15 (93,75" in html
    assert "<svg" in html and ">обещал оплатить</text>" in html and ">Дел</text>" in html
    assert ">right_party<" not in html  # the step code column is for programs (CSV) only


def test_promises_page(history: History, boss: Browser) -> None:
    html = boss.get(f"/reports/promises?{NOV}").text
    # stages by their names in the page's language, never their codes
    assert _row(html, "promises", "Мягкое напоминание") == ["Мягкое напоминание", "4", "2", "1", "0", "1", "66,67"]
    assert ">reminder<" not in html
    assert _row(html, "promises", "итого") == ["итого", "6", "2", "2", "1", "1", "50,00"]
    assert '<tr class="total">' in html
    assert f"Доля выполненных</dt><dd class=\"num\">50,00{NBSP}%" in html
    for legend in ("Выполнено", "Нарушено", "Ждут срока", "Отменено"):
        assert f">{legend}</text>" in html


def test_money_page(history: History, boss: Browser) -> None:
    html = boss.get(f"/reports/money?{NOV}&days=7").text
    assert _cells(html, "start") == [[f"11{NBSP}600,65", "16", "15", "773,38"]]
    assert _row(html, "recovery", "Робот дозвонился") == ["Робот дозвонился", "12", f"8{NBSP}020,65",
                                                          f"3{NBSP}170,35", "5", "39,53"]
    assert _row(html, "recovery", "Без дозвона")[-1] == "12,89"
    assert _row(html, "series", "04.11.2024") == ["04.11.2024", f"10{NBSP}100,65", "14", "721,48"]
    assert 'id="chart-money-recovered"' in html and 'id="chart-money-debt"' in html
    assert "Возвращено за 7 дн. после дозвона" in html


def test_work_page(history: History, boss: Browser) -> None:
    html = boss.get(f"/reports/work?{NOV}").text
    assert _row(html, "callbacks", "Вопросы по счетам") == ["Вопросы по счетам", "4", "1", "0", "3", "1", "1", "0",
                                                            "0", "1", "0"]
    assert _cells(html, "robot") == [["38", "30", "25", "25,10", "3,0", "1,25"]]
    assert "Часов операторов сэкономлено</dt><dd class=\"num\">1,25</dd>" in html
    svg = html.split('id="chart-work-work"', 1)[1].split("</svg>", 1)[0]
    assert ">Качество услуги</text>" in svg and ">Закрыто: обещал оплатить</text>" in svg


def test_admin_reads_every_report_and_operator_is_refused(history: History, browser: Any,
                                                          users: dict[str, int]) -> None:
    admin: Browser = browser("admin")
    operator: Browser = browser("op1")
    for key in REPORT_KEYS:
        assert admin.get(f"/reports/{key}?{NOV}").status_code == 200, key
        assert operator.get(f"/reports/{key}?{NOV}").status_code == 403, key
        assert operator.get(f"/reports/{key}?{NOV}&format=csv").status_code == 403, key
        assert operator.get(f"/reports/{key}?{NOV}&format=json").status_code == 403, key
    assert operator.get("/reports").status_code == 403


def test_anonymous_is_sent_to_login(app: Any, browser: Any) -> None:
    anonymous: Browser = browser(None)
    for path in [f"/reports/{k}?{NOV}" for k in REPORT_KEYS] + ["/reports", f"/reports/money?{NOV}&format=csv"]:
        response = anonymous.get(path, follow_redirects=False)
        assert response.status_code in (302, 303), path
        assert response.headers["location"].startswith("/login?next=/reports"), path


def test_csv_downloads_equal_the_reports_csv(db: Database, history: History, boss: Browser) -> None:
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("reasons", "", {}),
        ("reasons", "&stage=firm&route=billing", {"stage": "firm", "route": "billing"}),
        ("funnel", "&stage=reminder", {"stage": "reminder"}),
        ("promises", "", {}),
        ("money", "&days=3&granularity=week", {"window_days": 3, "granularity": "week"}),
        ("money", "", {"window_days": 7}),
        ("work", "&route=quality", {"route": "quality"}),
    ]
    for key, extra, filters in cases:
        response = boss.get(f"/reports/{key}?{NOV}{extra}&format=csv")
        assert response.status_code == 200, (key, response.text)
        assert response.headers["content-type"].startswith("text/csv")
        disposition = response.headers["content-disposition"]
        assert disposition == f'attachment; filename="{key}_2024-11-01_2024-11-30.csv"'
        expected = io.StringIO()
        to_csv(_report(db, key, **filters), expected)
        assert response.content.decode("utf-8-sig") == expected.getvalue(), (key, extra)
    # one table only
    response = boss.get(f"/reports/money?{NOV}&format=csv&table=recovery")
    expected = io.StringIO()
    to_csv(_report(db, "money"), expected, table="recovery")
    assert response.content.decode("utf-8-sig") == expected.getvalue()
    assert response.content.decode("utf-8-sig").splitlines()[1] == "reached,12,8020.65,3170.35,5,39.53"
    bad = boss.get(f"/reports/money?{NOV}&format=csv&table=nope")
    assert bad.status_code == 400 and "recovery" in bad.json()["error"]


def test_csv_link_on_the_page_keeps_the_filters(history: History, boss: Browser) -> None:
    html = boss.get(f"/reports/reasons?{NOV}&stage=firm&route=billing").text
    link = re.search(r'id="download-csv" href="([^"]+)"', html)
    assert link is not None
    href = link.group(1).replace("&amp;", "&")
    assert href == "/reports/reasons?from=2024-11-01&to=2024-12-01&stage=firm&route=billing&format=csv"
    assert boss.get(href).content.decode("utf-8-sig").startswith("table,category,code,label,norm_pct")


def test_json_variant(db: Database, history: History, boss: Browser) -> None:
    for key in REPORT_KEYS:
        response = boss.get(f"/reports/{key}?{NOV}&format=json")
        assert response.status_code == 200
        assert response.json() == json.loads(json.dumps(to_jsonable(_report(db, key)))), key
    data = boss.get(f"/reports/money?{NOV}&format=json").json()
    assert data["report"] == "money" and data["debt_at_start"] == "11600.65"


def test_filters_pass_through(history: History, boss: Browser) -> None:
    html = boss.get(f"/reports/reasons?{NOV}&stage=firm&route=billing").text
    assert [r[1] for r in _cells(html, "reasons")] == ["no_invoice", "disputes_amount"]
    assert _row(html, "reasons", "no_invoice", 1)[3:] == ["10,00", "1", "16,67", "6,67"]
    assert "Из них по маршруту</dt><dd class=\"num\">1</dd>" in html
    assert '<option value="firm" selected>' in html and '<option value="billing" selected>' in html
    work = boss.get(f"/reports/work?{NOV}&route=quality").text
    assert [r[0] for r in _cells(work, "callbacks")] == ["Качество услуги", "итого"]
    promises = boss.get(f"/reports/promises?{NOV}&stage=firm").text
    assert [r[0] for r in _cells(promises, "promises")] == ["Настойчивое напоминание", "итого"]
    money = boss.get(f"/reports/money?{NOV}&days=0").text
    assert "Возвращено за 0 дн. после дозвона" in money
    # a route is not a filter of the funnel: ignored there, not an error
    assert boss.get(f"/reports/funnel?{NOV}&route=nope").status_code == 200


@pytest.mark.parametrize(("query", "expected"), [
    ("from=2024-13-01&to=2024-12-01", "С: нужна дата в виде ГГГГ-ММ-ДД, а получено «2024-13-01»"),
    ("from=2024-11-01&to=tomorrow", "По (не включая): нужна дата в виде ГГГГ-ММ-ДД, а получено «tomorrow»"),
    ("from=2024-12-01&to=2024-11-01", "Конец периода (2024-11-01) должен быть позже начала (2024-12-01)"),
    ("from=2024-11-01&to=2024-11-01", "Конец периода (2024-11-01) должен быть позже начала (2024-11-01)"),
    ("from=1900-01-01&to=2024-11-01", "Период длиннее 3660 дней"),
    (f"{NOV}&days=-1", "Окно возврата — целое число дней от 0 до 365, а получено «-1»"),
    (f"{NOV}&days=many", "а получено «many»"),
    (f"{NOV}&granularity=hour", "Неизвестный шаг графика «hour»; возможны: auto, day, week"),
    (f"{NOV}&stage=nope", "Неизвестный этап «nope»; этапы: before_due, reminder, firm, final_warning, blocked"),
    (f"{NOV}&format=xml", "Неизвестный формат «xml»; возможны: html, csv, json"),
])
def test_bad_parameters_give_a_clear_error(history: History, boss: Browser, query: str, expected: str) -> None:
    response = boss.get(f"/reports/money?{query}")
    assert response.status_code == 400
    assert expected in response.text
    assert 'role="alert"' in response.text and 'id="report-form"' in response.text  # the form to fix it
    as_csv = boss.get(f"/reports/money?{query}&format=csv" if "format=" not in query else f"/reports/money?{query}")
    assert as_csv.status_code == 400


def test_bad_route_and_typed_values_kept(history: History, boss: Browser) -> None:
    response = boss.get(f"/reports/reasons?{NOV}&route=nope")
    assert response.status_code == 400
    assert "Неизвестный маршрут «nope»; маршруты: billing, quality, retention" in response.text
    response = boss.get("/reports/work?from=2024-11-01&to=2024-1l-30&format=json")
    assert response.status_code == 400
    assert response.json() == {"error": "По (не включая): нужна дата в виде ГГГГ-ММ-ДД, а получено «2024-1l-30»."}
    page = boss.get("/reports/funnel?from=2024-11-01&to=2024-1l-30")
    assert 'value="2024-1l-30"' in page.text  # what was typed stays in the form


def test_overview(history: History, boss: Browser) -> None:
    page = boss.get(f"/reports?{NOV}")
    assert page.status_code == 200
    for key in REPORT_KEYS:
        assert f'id="report-{key}"' in page.text
        assert f'href="/reports/{key}?from=2024-11-01&amp;to=2024-12-01' in page.text
    # money names its currency (issue 14)
    assert "Валюта</dt><dd class=\"num\">RUB</dd>" in page.text
    assert f"Долг на начало</dt><dd class=\"num\">11{NBSP}600,65{NBSP}RUB</dd>" in page.text
    assert "Обещаний дано</dt><dd class=\"num\">6</dd>" in page.text
    bad = boss.get("/reports?from=2024-11-31")
    assert bad.status_code == 400 and "«2024-11-31»" in bad.text
    # default period: the last 30 days up to today (the test clock: 2025-11-19)
    assert 'name="from" value="2025-10-21"' in boss.get("/reports").text


def test_empty_period_reads_as_nothing(history: History, boss: Browser) -> None:
    for key in REPORT_KEYS:
        page = boss.get(f"/reports/{key}?from=2020-01-01&to=2020-02-01")
        assert page.status_code == 200, key
        assert 'id="report-empty"' in page.text and "За период нет данных." in page.text, key
        assert "<svg" not in page.text, key  # no blank axes
    assert 'id="report-empty"' not in boss.get(f"/reports/work?{NOV}").text


def test_english(history: History, boss: Browser) -> None:
    assert boss.post("/lang", {"lang": "en", "next": "/reports"}).status_code == 303
    html = boss.get(f"/reports/reasons?{NOV}").text
    assert "Reasons for non-payment" in html and "<th class=\"num\">Norm %</th>" in html
    assert _row(html, "reasons", "forgot", 1)[3:6] == ["35.00", "4", "33.33"]
    assert ">Norm %</text>" in html
    assert boss.get(f"/reports/money?{NOV}").text.count("11,600.65") >= 2
    bad = boss.get("/reports/money?from=x")
    assert "From: expected a date as YYYY-MM-DD, got &#39;x&#39;" in bad.text


def test_charts_are_inline_safe_and_styled_by_a_stylesheet(history: History, boss: Browser, browser: Any) -> None:
    html = boss.get(f"/reports/money?{NOV}").text
    for chart in ("recovered", "debt"):
        svg = html.split(f'id="chart-money-{chart}"', 1)[1].split("</svg>", 1)[0]
        assert "<script" not in svg and "<style" not in svg and "style=" not in svg
    links = re.findall(r'<link rel="stylesheet" href="(/reports/chart-[0-9a-f]+\.css)">', html)
    assert len(links) == 2
    css = boss.get(links[0])
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "#chart-money-recovered .color-0" in css.text and "&gt;" not in css.text
    # the same chart gets the same stylesheet address on every page view
    assert re.findall(r'href="(/reports/chart-[0-9a-f]+\.css)"', boss.get(f"/reports/money?{NOV}&days=3").text) == links
    assert boss.get("/reports/chart-0123.css").status_code == 404
    assert browser("op1").get(links[0]).status_code == 403


def test_every_column_step_and_table_has_a_text(db: Database, history: History) -> None:
    for key in REPORT_KEYS:
        report = _report(db, key)
        assert i18n.has_key(f"rep_name_{key}") and i18n.has_key(f"rep_desc_{key}")
        for table in report.tables():
            assert i18n.has_key(f"rep_tbl_{key}_{table.key}"), (key, table.key)
            for column in table.columns:
                assert i18n.has_key(f"rep_col_{key}_{column.key}") or i18n.has_key(f"rep_col_{column.key}"), column
        for chart in report_view(report, "ru").charts:
            assert i18n.has_key(f"rep_chart_{key}_{chart.key}")
    for step in LABELS:
        assert i18n.has_key(f"rep_step_{step}")


def test_no_english_chart_label_left_in_russian(db: Database, history: History) -> None:
    english = {"Norm %", "Actual %", "Cases", "Kept", "Broken", "Pending", "Cancelled", "Open", "Claimed",
               "Reached by the robot", "Not reached", "Average debt per account", *LABELS.values()}
    for key in REPORT_KEYS:
        for chart in report_view(_report(db, key), "ru").charts:
            texts = {t for t in re.findall(r">([^<>]+)</t(?:ext|itle)>", chart.svg)}
            assert not texts & english, (key, chart.key, texts & english)
            assert not any(t.startswith(("Done:", "Reasons:", "Funnel,", "Promises by", "Recovered within")) for t in texts)


# --- pure helpers -------------------------------------------------------------------------------

def test_number_formatting() -> None:
    assert number(Decimal("-1234.50"), "ru") == "\u22121\u00a0234,50"
    assert number(Decimal("1234.50"), "en") == "1,234.50"
    assert number(1234567, "ru") == "1\u00a0234\u00a0567"
    assert number(None, "ru") == "—"
    assert number(dt.date(2024, 11, 4), "ru") == "2024-11-04"


def test_split_chart_moves_styles_out() -> None:
    svg = ('<svg id="chart-0a1b2c3d-1111" class="pygal-chart"><defs><style type="text/css">'
           '#chart-0a1b2c3d-1111 .graph &gt; .background{fill:white}</style></defs>'
           '<g style="opacity: 0" class="tooltip"/><g style="background: url(x)"/>'
           '<g id="activate-serie-0" class="legend"/></svg>')
    inline, css = split_chart(svg, "chart-x-y")
    assert css == "#chart-x-y .graph > .background{fill:white}"
    assert inline == ('<svg id="chart-x-y" class="pygal-chart"><defs></defs><g opacity="0" class="tooltip"/><g/>'
                      '<g class="legend"/></svg>')


def test_relabel_swaps_whole_texts_only() -> None:
    svg = ("<svg><title>Old title</title><text class=\"title plot_title\">Old title</text>"
           "<text>Open</text><text>Opened</text><text>&lt;b&gt;</text></svg>")
    out = relabel(svg, {"Open": "Ждут", "<b>": "<i>"}, "Новый & заголовок")
    assert out == ("<svg><title>Новый &amp; заголовок</title><text class=\"title plot_title\"></text>"
                   "<text>Ждут</text><text>Opened</text><text>&lt;i&gt;</text></svg>")


def test_csv_download_cannot_run_as_a_formula(db: Database, history: History, boss: Browser) -> None:
    from ivr.db.models import Reason

    with db.sessions.begin() as s:
        forgot = s.scalars(select(Reason).where(Reason.code == "forgot")).one()
        forgot.labels = {**forgot.labels, "ru": "=cmd|' /C calc'!A0"}
    response = boss.get(f"/reports/reasons?{NOV}&format=csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    forgot_row = next(r for r in rows if r[:3] == ["reasons", "uncontrollable", "forgot"])
    assert forgot_row[3] == "'=cmd|' /C calc'!A0" and forgot_row[-1] == "-1.67"
