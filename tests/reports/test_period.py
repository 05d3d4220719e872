"""Period and rounding helpers (pure)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from ivr.reports.period import Period, PeriodError, money, parse_period, pct, ratio

TODAY = dt.date(2024, 11, 20)


def test_period_bounds_and_days() -> None:
    p = Period.month(2024, 12)
    assert (p.start, p.end, p.days) == (dt.date(2024, 12, 1), dt.date(2025, 1, 1), 31)
    assert p.start_at == dt.datetime(2024, 12, 1) and p.end_at == dt.datetime(2025, 1, 1)
    assert p.label() == "2024-12-01 .. 2024-12-31"
    assert p.dates(7) == [dt.date(2024, 12, d) for d in (1, 8, 15, 22, 29)]
    with pytest.raises(PeriodError):
        Period(dt.date(2024, 1, 2), dt.date(2024, 1, 2))
    with pytest.raises(PeriodError):
        Period(dt.date(2024, 1, 3), dt.date(2024, 1, 2))
    with pytest.raises(PeriodError, match="must be dates"):
        Period(dt.datetime(2024, 1, 1, 12), dt.date(2024, 1, 2))


def test_parse_period_defaults_and_errors() -> None:
    assert parse_period(None, None, TODAY) == Period(dt.date(2024, 10, 22), dt.date(2024, 11, 21))
    assert parse_period("2024-11-01", None, TODAY) == Period(dt.date(2024, 11, 1), dt.date(2024, 11, 21))
    assert parse_period(None, "2024-11-10", TODAY, default_days=7) == Period(dt.date(2024, 11, 3), dt.date(2024, 11, 10))
    with pytest.raises(PeriodError, match="--from.*YYYY-MM-DD"):
        parse_period("1.11.2024", None, TODAY)
    with pytest.raises(PeriodError, match="--to.*YYYY-MM-DD"):
        parse_period(None, "2024-13-01", TODAY)
    with pytest.raises(PeriodError, match="must be after"):
        parse_period("2024-11-10", "2024-11-10", TODAY)


def test_rounding() -> None:
    assert pct(1, 3) == D("33.33") and pct(2, 3) == D("66.67") and pct(1, 8) == D("12.50")
    assert pct(1, 0) is None and pct(0, 0) is None
    assert pct(D("0.125"), 1) == D("12.50")
    assert money(0.1 + 0.2) == D("0.30") and money(None) == D("0.00") and money(D("1.005")) == D("1.01")
    assert ratio(D("1.875"), 1) == D("1.88") and ratio(D("5"), 0) is None
