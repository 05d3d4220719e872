"""Funnel report on the known history: per-case steps and best outcomes, stage filter, empty period."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

from sqlalchemy.orm import Session

from ivr.reports import Period, funnel_report
from ivr.wiring import Database
from tests.reports.history import PERIOD, Builder


def test_every_figure_on_both_databases(any_hs: Session) -> None:
    report = funnel_report(any_hs, PERIOD)
    # open: C1-C5, C8-C20 (C6 closed in October, C7 opens on Dec 1) = 18
    # attempted: all but C8 and C12; answered: all but C11 (busy/no answer/congestion/failed only,
    # its operator call does not count); right party: C1-C5, C13-C19
    assert (report.cases_open, report.attempted, report.answered, report.right_party) == (18, 16, 15, 12)
    assert report.outcomes == {
        "promise": 2,  # C1, C13 (C13 also gave reasons)
        "paid_claim": 1,  # C3 (after a machine)
        "reason": 4,  # C2, C4 (one unknown), C5 (after no input), C14 (then human request, opt-out)
        "human_request": 1,  # C15 (then hung up)
        "opt_out": 1,  # C16
        "refusal": 1,  # C17 (then no input)
        "no_input": 1,  # C18
        "message_only": 0,
        "hangup": 1,  # C19 (hang-up and a call without a final kind)
    }
    assert (report.wrong_party, report.machine, report.unidentified) == (1, 1, 1)  # C9, C20, C10
    assert (report.attempts, report.attempts_picked_up) == (38, 30)
    assert report.reach_pct == D("93.75")
    assert report.attempt_reach_pct == D("78.95")
    steps = {s.key: (s.cases, s.parent, s.pct_of_parent, s.pct_of_open) for s in report.steps}
    assert steps["open"] == (18, None, None, D("100.00"))
    assert steps["attempted"] == (16, "open", D("88.89"), D("88.89"))
    assert steps["answered"] == (15, "attempted", D("93.75"), D("83.33"))
    assert steps["right_party"] == (12, "answered", D("80.00"), D("66.67"))
    assert steps["reason"] == (4, "right_party", D("33.33"), D("22.22"))
    assert steps["promise"] == (2, "right_party", D("16.67"), D("11.11"))
    assert steps["wrong_party"] == (1, "answered", D("6.67"), D("5.56"))
    assert [s.key for s in report.steps][:4] == ["open", "attempted", "answered", "right_party"]
    assert len(report.steps) == 16


def test_stage_filter(hs: Session) -> None:
    firm = funnel_report(hs, PERIOD, stage="firm")
    # cases in firm now: C2 C3 C4 C9 C11 C14 C16 C18 C20; firm calls only (C2: #5 only)
    assert (firm.cases_open, firm.attempted, firm.answered, firm.right_party) == (9, 9, 8, 6)
    assert {k: v for k, v in firm.outcomes.items() if v} == {"reason": 3, "paid_claim": 1, "opt_out": 1, "no_input": 1}
    assert (firm.wrong_party, firm.machine, firm.unidentified) == (1, 1, 0)
    assert (firm.attempts, firm.attempts_picked_up) == (20, 15)

    reminder = funnel_report(hs, PERIOD, stage="reminder")
    # in reminder now: C1 C5 C8 C10 C12 C13 C15 C17 C19, plus C2 called in reminder (#3, #4)
    assert (reminder.cases_open, reminder.attempted, reminder.answered, reminder.right_party) == (10, 8, 8, 7)
    assert {k: v for k, v in reminder.outcomes.items() if v} == {
        "promise": 2, "reason": 1 + 1, "human_request": 1, "refusal": 1, "hangup": 1}
    assert (reminder.wrong_party, reminder.machine, reminder.unidentified) == (0, 0, 1)


def test_empty_period(hs: Session) -> None:
    report = funnel_report(hs, Period(dt.date(2030, 1, 1), dt.date(2030, 1, 2)))
    # every case without closed_at is still open in 2030 (all but C1, C3, C6); nobody was called
    assert report.cases_open == 17
    assert (report.attempted, report.answered, report.right_party, report.attempts) == (0, 0, 0, 0)
    assert report.reach_pct is None and report.attempt_reach_pct is None
    assert all(v == 0 for v in report.outcomes.values())
    assert {s.key: s.pct_of_parent for s in report.steps}["answered"] is None


def test_no_cases_at_all(db: Database) -> None:
    with db.sessions() as s:
        report = funnel_report(s, PERIOD)
    assert report.cases_open == 0
    assert all(s.pct_of_open is None for s in report.steps)


def test_message_only_ranks_above_hangup_and_confirmed_beats_wrong_party(db: Database) -> None:
    with db.sessions.begin() as s:
        b = Builder(s)
        one = b.case(b.account("M1"), dt.date(2024, 10, 1), "10.00", "reminder")
        b.attempt(one, dt.datetime(2024, 11, 2, 10), "answered", identity="confirmed", kind="hangup")
        b.attempt(one, dt.datetime(2024, 11, 3, 10), "answered", identity="confirmed", kind="message_only")
        two = b.case(b.account("M2"), dt.date(2024, 10, 1), "10.00", "reminder")
        b.attempt(two, dt.datetime(2024, 11, 2, 10), "wrong_party", identity="denied", kind="wrong_party")
        b.attempt(two, dt.datetime(2024, 11, 3, 10), "answered", identity="confirmed", kind="no_input")
    with db.sessions() as s:
        report = funnel_report(s, PERIOD)
    assert report.right_party == 2 and report.wrong_party == 0
    assert (report.outcomes["message_only"], report.outcomes["no_input"], report.outcomes["hangup"]) == (1, 1, 0)
