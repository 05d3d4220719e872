"""Money report on the known history: debt at start, recovery windows, average-debt series."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from sqlalchemy.orm import Session

from ivr.reports import Period, money_report
from ivr.wiring import Database
from tests.reports.history import PERIOD, Builder


def _r(row):  # type: ignore[no-untyped-def]
    return (row.group, row.cases, row.debt, row.recovered, row.paying_cases, row.rate_pct)


def test_every_figure_on_both_databases(any_hs: Session) -> None:
    report = money_report(any_hs, PERIOD)
    # at start: all open cases opened before Nov 1 (not C5), without C12 (paid off in October):
    # 1000 + 500 + 1500 (2000 - 500 paid Oct 15) + 800 + 600 + 400 + 900 + 1500 + 450 + 1000 + 350
    # + 650 + 150.55 + 1100 + 220.10 + 480 = 11600.65 on 16 cases, 15 accounts (C9 and C20 share A9)
    assert report.debt_at_start == D("11600.65")
    assert (report.cases_at_start, report.accounts_at_start) == (16, 15)
    assert report.average_at_start == D("773.38")
    assert report.window_days == 7 and report.granularity == "day"
    # reached (first right-party call): C1 11-05, C2 11-06, C3 11-04, C4 11-07, C5 11-12, C13 11-10,
    # C14 11-09, C15 11-14, C16 11-19, C17 11-21, C18 11-23, C19 11-24.
    # recovered: C1 1000 (11-09), C2 100.25 (11-13 = day +7; not 200 on day +8), C3 1500 (same day),
    # C15 350 (11-20), C19 220.10 (12-01, after the period but in the window); not C5 (11-25), C17 (11-29)
    assert _r(report.reached) == ("reached", 12, D("8020.65"), D("3170.35"), 5, D("39.53"))
    # not reached: C8 C9 C10 C11 C20 from Nov 1 (C12 owes nothing): C8 100 (11-05), C9 400 (11-08)
    assert _r(report.not_reached) == ("not_reached", 5, D("3880.00"), D("500.00"), 2, D("12.89"))
    assert _r(report.total) == ("total", 17, D("11900.65"), D("3670.35"), 7, D("30.84"))

    assert [p.day for p in report.series] == PERIOD.dates()
    points = {p.day.isoformat(): (p.total_owed, p.accounts, p.average) for p in report.series}
    assert points["2024-11-01"] == (D("11600.65"), 15, D("773.38"))
    assert points["2024-11-04"] == (D("10100.65"), 14, D("721.48"))  # C3 paid and closed
    assert points["2024-11-08"] == (D("9600.65"), 14, D("685.76"))  # C8 -100, C9 paid (A9 still owes C20)
    assert points["2024-11-09"] == (D("8600.65"), 13, D("661.59"))  # C1 paid and closed
    assert points["2024-11-10"] == (D("8900.65"), 14, D("635.76"))  # C5 opens
    assert points["2024-11-25"] == (D("7750.40"), 12, D("645.87"))  # C5 paid off
    assert points["2024-11-30"] == (D("7700.40"), 12, D("641.70"))


def test_window_length_and_weekly_series(hs: Session) -> None:
    report = money_report(hs, PERIOD, window_days=0, granularity="week")
    # same-day payments only: C3 1500 (reached); nobody not reached paid on Nov 1
    assert _r(report.reached) == ("reached", 12, D("8020.65"), D("1500.00"), 1, D("18.70"))
    assert _r(report.not_reached) == ("not_reached", 5, D("3880.00"), D("0.00"), 0, D("0.00"))
    assert report.granularity == "week"
    assert [(p.day.isoformat(), p.total_owed, p.accounts) for p in report.series] == [
        ("2024-11-01", D("11600.65"), 15),
        ("2024-11-08", D("9600.65"), 14),
        ("2024-11-15", D("8600.40"), 14),
        ("2024-11-22", D("8050.40"), 13),
        ("2024-11-29", D("7700.40"), 12),
    ]
    wide = money_report(hs, PERIOD, window_days=8)
    # + C2's 200 and C17's 50, both paid on day +8
    assert _r(wide.reached) == ("reached", 12, D("8020.65"), D("3420.35"), 6, D("42.64"))
    assert money_report(hs, Period(dt.date(2024, 1, 1), dt.date(2024, 12, 1))).granularity == "week"


def test_stage_filter_anchors_on_calls_in_that_stage(hs: Session) -> None:
    report = money_report(hs, PERIOD, stage="firm")
    assert report.debt_at_start == D("7930.00")
    assert (report.cases_at_start, report.accounts_at_start) == (9, 8)
    # C2 was reached in firm only on 11-20, when it owed 500 - 100.25 - 200 = 199.75 and paid nothing more
    assert _r(report.reached) == ("reached", 6, D("5249.75"), D("1500.00"), 1, D("28.57"))
    assert _r(report.not_reached) == ("not_reached", 3, D("2380.00"), D("400.00"), 1, D("16.81"))


def test_empty_period_and_no_data(hs: Session) -> None:
    report = money_report(hs, Period(dt.date(2030, 1, 1), dt.date(2030, 1, 3)))
    # still-open cases carry their debt into 2030; nobody was reached
    assert report.reached.cases == 0 and report.reached.rate_pct is None
    assert report.not_reached.recovered == D("0.00")
    empty = money_report(hs, Period(dt.date(2000, 1, 1), dt.date(2000, 1, 3)))
    assert empty.debt_at_start == D("0.00") and empty.average_at_start is None
    assert _r(empty.total) == ("total", 0, D("0.00"), D("0.00"), 0, None)
    assert [(p.total_owed, p.accounts, p.average) for p in empty.series] == [(D("0.00"), 0, None)] * 2


def test_bad_arguments(hs: Session) -> None:
    with pytest.raises(ValueError, match="window_days"):
        money_report(hs, PERIOD, window_days=-1)
    with pytest.raises(ValueError, match="granularity"):
        money_report(hs, PERIOD, granularity="month")


def test_payments_without_case_are_ignored_and_overpayment_counts(db: Database) -> None:
    with db.sessions.begin() as s:
        b = Builder(s)
        acc = b.account("P1")
        debt = b.case(acc, dt.date(2024, 10, 1), "100.00", "reminder")
        b.attempt(debt, dt.datetime(2024, 11, 2, 10), "answered", identity="confirmed", kind="promise")
        b.payment(acc.id, debt.id, "150.00", dt.date(2024, 11, 3))
        b.payment(acc.id, None, "999.00", dt.date(2024, 11, 3))
    with db.sessions() as s:
        report = money_report(s, PERIOD)
    assert _r(report.reached) == ("reached", 1, D("100.00"), D("150.00"), 1, D("150.00"))
    assert report.series[-1].total_owed == D("0.00") and report.series[-1].accounts == 0
