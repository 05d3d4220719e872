"""A manager in a real browser reads every report for November 2024 (the known history of
tests/reports/history.py): the charts render, styled, under the strict Content-Security-Policy,
with their series labels in Russian; the CSV link downloads the report; screenshots at laptop and
phone size."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest

from tests.reports.history import build_history

from .conftest import LAPTOP, PHONE, SCREENSHOTS, LiveServer, add_user, login

pytestmark = pytest.mark.browser

NOV = "from=2024-11-01&to=2024-12-01"

# report -> (a series label in the legend of its main chart, the CSV's first line, a known CSV row)
EXPECTED = {
    "reasons": ("Факт %", "table,category,code,label,norm_pct,count,actual_pct,deviation_pp",
                "reasons,uncontrollable,forgot,забыл или не успел оплатить,35.00,4,33.33,-1.67"),
    "funnel": ("Дел", "table,step,label,cases,pct_of_parent,pct_of_open",
               "funnel,right_party,right party,12,80.00,66.67"),
    "promises": ("Выполнено", "table,stage,made,kept,broken,pending,cancelled,kept_rate_pct",
                 "promises,total,6,2,2,1,1,50.00"),
    "money": ("Робот дозвонился", "table,debt_at_start,cases,accounts,average",
              "recovery,reached,12,8020.65,3170.35,5,39.53"),
    "work": ("Закрыто: обещал оплатить", "table,queue,raised,open,claimed,done,resolved,promise,refused,unreachable,"
             "wrong_number,other_result", "callbacks,billing,4,1,0,3,1,1,0,0,1,0"),
}


def _screenshots(page: Any, name: str) -> None:
    """Laptop and phone, full length. The page is reloaded at each size: a wide table re-laid out
    after a viewport change is sometimes captured before it is painted."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for size, suffix in ((LAPTOP, "laptop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        page.reload()
        page.wait_for_load_state()
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{suffix}.png"), full_page=True)
    page.set_viewport_size(LAPTOP)
    page.reload()


def test_manager_reads_every_report(chromium: Any, live_server: LiveServer, tmp_path: Path) -> None:
    add_user(live_server.db, "mila", "manager")
    with live_server.db.sessions.begin() as s:
        build_history(s)
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="ru-RU", accept_downloads=True)
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        login(page, live_server, "mila")
        assert page.url.endswith("/reports")
        page.goto(f"{live_server.url}/reports?{NOV}")
        assert "11\u00a0600,65" in page.locator("#report-money").inner_text()
        _screenshots(page, "reports-overview")

        for key, (legend, header, row) in EXPECTED.items():
            page.click(f"#tab-{key}")
            page.wait_for_url(re.compile(rf"/reports/{key}\?{NOV}"))
            chart = page.locator(f"svg#chart-{key}-{'recovered' if key == 'money' else key}")
            assert chart.is_visible()
            label = chart.locator("text", has_text=legend).first
            assert label.is_visible(), (key, legend)
            # pygal's stylesheet reached the chart (an inline one would be refused): bars are coloured
            fill = chart.locator(".color-0 .rect, .color-0 rect, .color-0 path").first.evaluate(
                "e => getComputedStyle(e).fill")
            assert fill not in ("rgb(0, 0, 0)", "none", ""), (key, fill)
            box = chart.bounding_box()
            assert box is not None and box["width"] > 900  # scaled to the card, not its 900-px viewBox
            _screenshots(page, f"reports-{key}")

            with page.expect_download() as info:
                page.click("#download-csv")
            download = info.value
            assert download.suggested_filename == f"{key}_2024-11-01_2024-11-30.csv"
            target = tmp_path / download.suggested_filename
            download.save_as(str(target))
            text = target.read_text(encoding="utf-8-sig")
            lines = text.splitlines()
            assert lines[0] == header, key
            assert row in lines, (key, row)
            assert list(csv.reader(io.StringIO(text)))[0][0] == "table"

        # the phone: the chart still fits its card (scrolls sideways inside it, never the page)
        page.set_viewport_size(PHONE)
        page.goto(f"{live_server.url}/reports/reasons?{NOV}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.locator("svg#chart-reasons-reasons text", has_text="Норма %").first.is_visible()
    finally:
        context.close()
    assert violations == []
