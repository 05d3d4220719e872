"""Charts of the known history: written to tests/artifacts/charts/ (git-ignored), valid SVG with
the series labels in them."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from ivr.reports import (
    Period,
    funnel_report,
    money_report,
    promises_report,
    reasons_report,
    work_report,
)
from ivr.reports.charts import charts_for, save_chart
from ivr.reports.output import Report
from tests.reports.history import PERIOD

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "charts"
SVG = "{http://www.w3.org/2000/svg}"


def _texts(svg: str) -> str:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return " ".join(t for t in root.itertext())


def _no_external_script(svg: str) -> None:
    assert "<script" not in svg and "http://kozea" not in svg and not svg.startswith("<?xml")


def test_charts_of_the_sample_history(hs: Session) -> None:
    reports: dict[str, Report] = {
        "reasons": reasons_report(hs, PERIOD, language="en"),
        "funnel": funnel_report(hs, PERIOD),
        "promises": promises_report(hs, PERIOD),
        "money": money_report(hs, PERIOD),
        "work": work_report(hs, PERIOD, minutes_per_call=3),
    }
    expected = {
        "reasons": ["Norm %", "Actual %", "forgot or did not have time", "no valid key (unknown)"],
        "funnel": ["Cases", "cases open", "right party", "promise to pay"],
        "promises": ["Kept", "Broken", "Pending", "Cancelled", "reminder", "firm"],
        "money-recovered": ["Reached by the robot", "Not reached"],
        "money-debt": ["Average debt per account", "2024-11-01"],
        "work": ["Open", "Claimed", "Done: resolved", "Done: wrong number", "billing", "quality", "retention"],
    }
    written = []
    for name, report in reports.items():
        charts = charts_for(report)
        for chart_name, svg in charts.items():
            key = name if len(charts) == 1 else f"{name}-{chart_name}"
            path = save_chart(svg, ARTIFACTS / f"{key}.svg")
            written.append(key)
            text = _texts(path.read_text(encoding="utf-8"))
            for label in expected[key]:
                assert label in text, (key, label)
            _no_external_script(svg)
    assert sorted(written) == sorted(expected)


def test_values_reach_the_chart(hs: Session) -> None:
    svg = charts_for(funnel_report(hs, PERIOD))["funnel"]
    # pygal writes each bar's value in its tooltip <desc class="value">
    values = [el.text for el in ET.fromstring(svg).iter(f"{SVG}desc") if "value" in (el.get("class") or "")]
    # bottom bar first: hung up .. promise (steps with no case left out), right party, answered, attempted, open
    assert values == ["1", "1", "1", "1", "1", "4", "1", "2", "12", "15", "16", "18"]


def test_charts_of_an_empty_period(hs: Session, tmp_path: Path) -> None:
    empty = Period(dt.date(2030, 1, 1), dt.date(2030, 1, 8))
    for report in (reasons_report(hs, empty), promises_report(hs, empty), money_report(hs, empty),
                   work_report(hs, empty, minutes_per_call=3), funnel_report(hs, empty)):
        for svg in charts_for(report).values():
            _texts(save_chart(svg, tmp_path / "x.svg").read_text(encoding="utf-8"))


def test_unknown_report_type() -> None:
    with pytest.raises(TypeError):
        charts_for(object())  # type: ignore[arg-type]
