"""Work report on the known history: callbacks by route, robot calls, operator hours saved."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from sqlalchemy.orm import Session

from ivr.reports import Period, work_report
from ivr.wiring import Database
from tests.reports.history import PERIOD, add_operator_work, build_history


def _t(row):  # type: ignore[no-untyped-def]
    return (row.queue, row.raised, row.open, row.claimed, row.done, row.resolved, row.promise, row.refused,
            row.unreachable, row.wrong_number, row.other_result)


def test_every_figure_on_both_databases(any_hs: Session) -> None:
    report = work_report(any_hs, PERIOD, minutes_per_call=4.5)
    # tasks raised in November (not the retention one of Oct 30, not the one at Dec 1 00:00)
    assert [_t(r) for r in report.routes] == [
        ("billing", 4, 1, 0, 3, 1, 1, 0, 0, 1, 0),
        ("quality", 2, 0, 1, 1, 0, 0, 0, 1, 0, 0),
        ("retention", 1, 0, 0, 1, 0, 1, 0, 0, 0, 0),
    ]
    assert _t(report.total) == ("total", 7, 1, 1, 5, 1, 2, 0, 1, 1, 0)
    # 38 robot attempts in November, 30 picked up; completed = answered with a final kind other than
    # wrong party / machine: 26 answered minus #39 (no kind) = 25
    assert (report.robot_attempts, report.robot_picked_up, report.robot_completed) == (38, 30, 25)
    assert report.robot_minutes == D("25.10")  # 1506.0 s of picked-up calls
    assert report.minutes_per_call == D("4.5")
    assert report.operator_hours_saved == D("1.88")  # 25 * 4.5 / 60 = 1.875, half up


def test_hours_saved_follow_the_setting(hs: Session) -> None:
    assert work_report(hs, PERIOD, minutes_per_call=3).operator_hours_saved == D("1.25")
    assert work_report(hs, PERIOD, minutes_per_call=0).operator_hours_saved == D("0.00")
    with pytest.raises(ValueError, match="minutes_per_call"):
        work_report(hs, PERIOD, minutes_per_call=-1)


def test_route_and_stage_filters(hs: Session) -> None:
    retention = work_report(hs, PERIOD, minutes_per_call=3, route="retention")
    assert [_t(r) for r in retention.routes] == [("retention", 1, 0, 0, 1, 0, 1, 0, 0, 0, 0)]
    assert _t(retention.total) == ("total", 1, 0, 0, 1, 0, 1, 0, 0, 0, 0)
    assert retention.robot_completed == 25  # the route filter does not apply to robot calls

    firm = work_report(hs, PERIOD, minutes_per_call=3, stage="firm")
    # tasks raised by firm calls: #8 (C4, resolved) and #30 (C14, open); tasks without a call drop out
    assert [_t(r) for r in firm.routes] == [
        ("billing", 2, 1, 0, 1, 1, 0, 0, 0, 0, 0),
        ("quality", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        ("retention", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    ]
    # firm attempts: #5-9, #12, #13, #17-20, #27-31, #34, #37, #40, #41
    assert (firm.robot_attempts, firm.robot_picked_up, firm.robot_completed) == (20, 15, 11)
    assert firm.operator_hours_saved == D("0.55")  # 11 * 3 / 60


def test_empty_period(hs: Session) -> None:
    report = work_report(hs, Period(dt.date(2030, 1, 1), dt.date(2030, 2, 1)), minutes_per_call=3)
    assert [r.queue for r in report.routes] == ["billing", "quality", "retention"]
    assert all(r.raised == 0 for r in report.routes)
    assert (report.robot_attempts, report.robot_completed, report.robot_minutes, report.operator_hours_saved) == (
        0, 0, D("0.00"), D("0.00"))


def _op(row):  # type: ignore[no-untyped-def]
    return (row.operator, row.taken, row.done, row.resolved, row.promise, row.refused, row.unreachable,
            row.wrong_number, row.other_result, row.calls, row.answered, row.talk_minutes, row.outside_hours)


@pytest.fixture
def ops_db(any_db: Database) -> Database:
    """The known history with operators' claims and click-to-calls, on both databases."""
    with any_db.sessions.begin() as s:
        add_operator_work(s, build_history(s))
    return any_db


def test_per_operator_figures_on_both_databases(ops_db: Database) -> None:
    with ops_db.sessions() as s:
        report = work_report(s, PERIOD, minutes_per_call=4.5)
    assert [_op(r) for r in report.operators] == [
        # taken: tasks 4, 7 (task 0 was claimed in October); done: 0 resolved, 4 promise, 7 wrong number;
        # calls on 11-07 (125.5 s) and 11-14 (no answer); the October call is outside the period
        ("ivanova", 2, 3, 1, 1, 0, 0, 1, 0, 2, 1, D("2.09"), 0),
        # taken: tasks 1, 2, 6; done: 2 promise, 6 unreachable; calls #21 (200 s) and 11-28 (44.5 s,
        # outside hours): 244.5 s = 4.075 min, half up
        ("petrov", 3, 2, 0, 1, 0, 1, 0, 0, 2, 2, D("4.08"), 1),
    ]
    # talk time in total: 370 s = 6.1667 min
    assert _op(report.operators_total) == ("total", 5, 5, 1, 2, 0, 1, 1, 0, 4, 3, D("6.17"), 1)
    # the robot's figures are untouched by the operators' calls
    assert (report.robot_attempts, report.robot_picked_up, report.robot_completed) == (38, 30, 25)
    [table] = [tb for tb in report.tables() if tb.key == "operators"]
    assert table.rows[-1][0] == "total" and len(table.rows) == 3


def test_per_operator_route_filter_keeps_tasks_of_the_route(ops_db: Database) -> None:
    with ops_db.sessions() as s:
        report = work_report(s, PERIOD, minutes_per_call=3, route="billing")
    # billing tasks: 0 (ivanova, done), 4 (ivanova), 7 (ivanova); petrov's tasks are quality and
    # retention, but his calls are still his (the route filter does not apply to calls)
    assert [_op(r) for r in report.operators] == [
        ("ivanova", 2, 3, 1, 1, 0, 0, 1, 0, 2, 1, D("2.09"), 0),
        ("petrov", 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, D("4.08"), 1),
    ]


def test_per_operator_empty_period(ops_db: Database) -> None:
    with ops_db.sessions() as s:
        report = work_report(s, Period(dt.date(2030, 1, 1), dt.date(2030, 2, 1)), minutes_per_call=3)
    assert report.operators == []
    assert _op(report.operators_total) == ("total", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, D("0.00"), 0)
