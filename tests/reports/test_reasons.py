"""Reasons report on the known history: every figure, filters, boundaries, empty period."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.db.models import Reason
from ivr.reports import Period, reasons_report
from ivr.wiring import Database
from tests.reports.history import PERIOD, Builder

# (code, category, norm %, count, actual %, deviation pp) over 12 answers in November:
# forgot #4 #23 #24 #27, money_trouble #5 #28, no_invoice #8, service_quality #11, competitor #25,
# not_decision_maker #29, unknown #9, refused #35. Not counted: #22 (at `to`), #42 (October).
ALL = [
    ("no_invoice", "controllable", D("10.00"), 1, D("8.33"), D("-1.67")),
    ("service_quality", "controllable", D("8.00"), 1, D("8.33"), D("0.33")),
    ("competitor", "controllable", D("7.00"), 1, D("8.33"), D("1.33")),
    ("disputes_amount", "controllable", D("10.00"), 0, D("0.00"), D("-10.00")),
    ("forgot", "uncontrollable", D("35.00"), 4, D("33.33"), D("-1.67")),
    ("money_trouble", "uncontrollable", D("20.00"), 2, D("16.67"), D("-3.33")),
    ("moving_away", "uncontrollable", D("5.00"), 0, D("0.00"), D("-5.00")),
    ("not_decision_maker", "uncontrollable", D("5.00"), 1, D("8.33"), D("3.33")),
    ("unknown", "other", None, 1, D("8.33"), None),
    ("refused", "other", None, 1, D("8.33"), None),
]


def _rows(report):  # type: ignore[no-untyped-def]
    return [(r.code, r.category, r.norm_pct, r.count, r.actual_pct, r.deviation_pp) for r in report.rows]


def test_every_figure_on_both_databases(any_hs: Session) -> None:
    report = reasons_report(any_hs, PERIOD, language="en")
    assert report.total_answers == 12
    assert report.listed_answers == 12
    assert _rows(report) == ALL
    cats = [(c.category, c.norm_pct, c.count, c.actual_pct, c.deviation_pp) for c in report.categories]
    assert cats == [
        ("controllable", D("35.00"), 3, D("25.00"), D("-10.00")),
        ("uncontrollable", D("65.00"), 7, D("58.33"), D("-6.67")),
        ("other", None, 2, D("16.67"), None),
    ]
    by_code = {r.code: r for r in report.rows}
    assert by_code["forgot"].label == "forgot or did not have time"
    assert by_code["no_invoice"].route == "billing" and by_code["no_invoice"].actionable
    assert by_code["forgot"].key == "1"


def test_labels_follow_the_language(hs: Session) -> None:
    report = reasons_report(hs, PERIOD, language="ru")
    labels = {r.code: r.label for r in report.rows}
    assert labels["forgot"] == "забыл или не успел оплатить"
    assert labels["unknown"] == "не выбрал причину"
    # a language without labels falls back to English
    assert {r.code: r.label for r in reasons_report(hs, PERIOD, language="de").rows}["forgot"] == (
        "forgot or did not have time"
    )


def test_stage_filter_counts_calls_placed_in_that_stage(hs: Session) -> None:
    # reminder calls: #4 (C2 was in reminder then), #23 #24 forgot, #25 competitor, #11 service_quality,
    # #35 refusal -> 6 answers
    report = reasons_report(hs, PERIOD, stage="reminder")
    assert report.total_answers == 6
    got = {code: (count, actual, dev) for code, _, _, count, actual, dev in _rows(report)}
    assert got["forgot"] == (3, D("50.00"), D("15.00"))
    assert got["service_quality"] == (1, D("16.67"), D("8.67"))
    assert got["competitor"] == (1, D("16.67"), D("9.67"))
    assert got["refused"] == (1, D("16.67"), None)
    assert got["money_trouble"] == (0, D("0.00"), D("-20.00"))
    assert got["unknown"] == (0, D("0.00"), None)
    firm = reasons_report(hs, PERIOD, stage="firm")
    counts = {r.code: r.count for r in firm.rows}
    assert firm.total_answers == 6
    assert (counts["forgot"], counts["money_trouble"], counts["no_invoice"], counts["not_decision_maker"],
            counts["unknown"]) == (
        1, 2, 1, 1, 1)


def test_route_filter_keeps_the_denominator_of_all_answers(hs: Session) -> None:
    report = reasons_report(hs, PERIOD, route="retention")
    assert [(r.code, r.count, r.actual_pct, r.deviation_pp) for r in report.rows] == [
        ("competitor", 1, D("8.33"), D("1.33")),
        ("moving_away", 0, D("0.00"), D("-5.00")),
    ]
    assert report.total_answers == 12 and report.listed_answers == 1
    assert [(c.category, c.norm_pct, c.count, c.actual_pct) for c in report.categories] == [
        ("controllable", D("7.00"), 1, D("8.33")),
        ("uncontrollable", D("5.00"), 0, D("0.00")),
    ]
    billing = reasons_report(hs, PERIOD, route="billing")
    assert [(r.code, r.count) for r in billing.rows] == [("no_invoice", 1), ("disputes_amount", 0)]


def test_boundaries_one_second_before_start_and_exactly_at_end_are_excluded(hs: Session) -> None:
    # #22 at 2024-12-01 00:00:00 is in December; #16 at 23:59:59 on Oct 31 is a promise anyway,
    # #42 (Oct 15, C6) is a forgot answer in October.
    december = reasons_report(hs, Period(dt.date(2024, 12, 1), dt.date(2025, 1, 1)))
    assert december.total_answers == 1
    assert {r.code: r.count for r in december.rows}["forgot"] == 1
    october = reasons_report(hs, Period(dt.date(2024, 10, 1), dt.date(2024, 11, 1)))
    assert october.total_answers == 1


def test_empty_period_lists_reasons_without_dividing_by_zero(hs: Session) -> None:
    report = reasons_report(hs, Period(dt.date(2030, 1, 1), dt.date(2030, 2, 1)))
    assert report.total_answers == 0
    assert len(report.rows) == 10
    assert all(r.count == 0 and r.actual_pct is None and r.deviation_pp is None for r in report.rows)
    assert all(c.actual_pct is None for c in report.categories)


def test_inactive_reason_is_listed_only_when_it_has_answers(db: Database) -> None:
    with db.sessions.begin() as s:
        b = Builder(s)
        s.add(Reason(code="legacy", key="9", labels={"en": "old reason"}, category="controllable",
                     norm_pct=D("0"), position=99, active=False))
        s.add(Reason(code="retired", key="0", labels={"en": "retired"}, category="uncontrollable",
                     norm_pct=D("0"), position=98, active=False))
        s.flush()
        b.reasons = {r.code: r for r in s.scalars(select(Reason))}
        debt = b.case(b.account("X1"), dt.date(2024, 10, 1), "100.00", "reminder")
        b.attempt(debt, dt.datetime(2024, 11, 3, 10), "answered", identity="confirmed", kind="reason", reason="legacy")
        b.attempt(debt, dt.datetime(2024, 11, 4, 10), "answered", identity="confirmed", kind="reason", reason="forgot")
        b.attempt(debt, dt.datetime(2024, 11, 5, 10), "answered", identity="confirmed", kind="refusal")
    with db.sessions() as s:
        report = reasons_report(s, PERIOD, language="en")
    codes = [r.code for r in report.rows]
    assert "retired" not in codes
    legacy = next(r for r in report.rows if r.code == "legacy")
    assert (legacy.active, legacy.count, legacy.actual_pct, legacy.deviation_pp) == (False, 1, D("33.33"), D("33.33"))
    assert report.total_answers == 3
    assert {r.code: r.actual_pct for r in report.rows}["refused"] == D("33.33")
