"""Promises report on the known history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from sqlalchemy.orm import Session

from ivr.reports import Period, promises_report
from tests.reports.history import PERIOD


def _t(row):  # type: ignore[no-untyped-def]
    return (row.stage, row.made, row.kept, row.broken, row.pending, row.cancelled, row.kept_rate_pct)


def test_every_figure_on_both_databases(any_hs: Session) -> None:
    report = promises_report(any_hs, PERIOD)
    # made in November: C1 kept, C13 broken, C4 pending, C15 kept, C5 cancelled, C14 broken.
    # Not: C11's (Oct 31 23:59:59) and C13's second (Dec 1 00:00:00).
    assert _t(report.total) == (None, 6, 2, 2, 1, 1, D("50.00"))
    assert [_t(r) for r in report.by_stage] == [
        ("reminder", 4, 2, 1, 0, 1, D("66.67")),
        ("firm", 2, 0, 1, 1, 0, D("0.00")),
        ("final_warning", 0, 0, 0, 0, 0, None),
        ("blocked", 0, 0, 0, 0, 0, None),
    ]


def test_stage_filter(hs: Session) -> None:
    report = promises_report(hs, PERIOD, stage="firm")
    assert [_t(r) for r in report.by_stage] == [("firm", 2, 0, 1, 1, 0, D("0.00"))]
    assert _t(report.total) == (None, 2, 0, 1, 1, 0, D("0.00"))


def test_boundaries(hs: Session) -> None:
    december = promises_report(hs, Period(dt.date(2024, 12, 1), dt.date(2024, 12, 2)))
    assert _t(december.total) == (None, 1, 0, 0, 1, 0, None)  # pending only: no kept rate yet
    october = promises_report(hs, Period(dt.date(2024, 10, 31), dt.date(2024, 11, 1)))
    assert _t(october.total) == (None, 1, 0, 1, 0, 0, D("0.00"))


def test_empty_period(hs: Session) -> None:
    report = promises_report(hs, Period(dt.date(2030, 1, 1), dt.date(2030, 2, 1)))
    assert _t(report.total) == (None, 0, 0, 0, 0, 0, None)
    assert all(r.made == 0 and r.kept_rate_pct is None for r in report.by_stage)
