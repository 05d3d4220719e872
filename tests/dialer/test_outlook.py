"""The case outlook behind `ivr status`: every open case in exactly one bucket, with when it may be
called next in the subscriber's local time, and nothing written."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ivr.db.models import CallAttempt, DebtCase, OptOut, Promise
from ivr.dialer.outlook import build_outlook
from ivr.dialer.policy import load_rules
from ivr.wiring import Database
from tests.dialer.conftest import add_case

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # Monday 12:00 in Moscow, 21:00 in Kamchatka
NAIVE_NOW = NOW.replace(tzinfo=None)


def test_every_open_case_is_in_one_bucket(any_db: Database) -> None:
    with any_db.sessions.begin() as s:
        add_case(s)  # callable now
        add_case(s, stage_code=None)  # new: staged today and callable
        add_case(s, tz="Asia/Kamchatka")  # 21:00 there: window opens 09:00 tomorrow
        limited = add_case(s)
        s.add(CallAttempt(debt_case_id=limited.id, account_id=limited.account_id, phone="+70000000001",
                          action_id="o-1", state="done", result="answered",
                          created_at=NAIVE_NOW - dt.timedelta(hours=2), originated_at=NAIVE_NOW - dt.timedelta(hours=2)))
        add_case(s, next_attempt_at=NOW + dt.timedelta(hours=2))  # a retry planned at 14:00 Moscow
        promised = add_case(s, state="promised")
        s.add(Promise(debt_case_id=promised.id, promised_date=dt.date(2026, 3, 5), status="pending"))
        dead = add_case(s)
        for phone in dead.account.phones:
            phone.status = "invalid"
        opted = add_case(s)
        s.add(OptOut(account_id=opted.account_id))
        busy = add_case(s)
        s.add(CallAttempt(debt_case_id=busy.id, account_id=busy.account_id, phone="+70000000002",
                          action_id="o-2", state="dialing", created_at=NAIVE_NOW))
        add_case(s, stage_code=None, opened_on=dt.date(2026, 3, 2))  # due today: first stage tomorrow
        add_case(s, state="paid", owed="0")
    with any_db.sessions() as s:
        before = [(c.id, c.stage_code, c.next_attempt_at) for c in s.scalars(select(DebtCase).order_by(DebtCase.id))]
        out = build_outlook(s, load_rules(s), NOW)
        after = [(c.id, c.stage_code, c.next_attempt_at) for c in s.scalars(select(DebtCase).order_by(DebtCase.id))]
    assert before == after  # read-only
    assert out.states == {"active": 9, "promised": 1, "paid": 1}
    assert out.open_cases == 10
    assert out.callable_now == 2
    assert out.in_flight == 1 and out.opted_out == 1 and out.no_phone == 1
    assert (out.waiting_window.count, out.waiting_window.first_local, out.waiting_window.first_zone) == (
        1, "2026-03-03 09:00", "Asia/Kamchatka")
    assert out.held_by_limits.count == 1 and out.held_by_limits.first_utc is not None
    assert out.held_by_limits.first_utc > NOW
    assert (out.scheduled.count, out.scheduled.first_local) == (1, "2026-03-02 14:00")
    assert (out.promised.count, out.promised.first_local) == (1, "2026-03-06 00:00")
    assert (out.waiting_stage.count, out.waiting_stage.first_local) == (1, "2026-03-03 00:00")
    assert out.next_call == (NOW, "callable now")
    gist = out.gist()
    assert "2 callable now" in gist and "1 waiting for a call window (first 2026-03-03 09:00 Asia/Kamchatka)" in gist
    data = out.to_dict()
    assert data["next_call"]["why"] == "callable now" and data["promised"]["first_utc"] == "2026-03-05T21:00:00+00:00"


def test_nothing_callable_names_the_next_call(any_db: Database) -> None:
    with any_db.sessions.begin() as s:
        add_case(s, tz="Asia/Kamchatka")
        add_case(s, next_attempt_at=NOW + dt.timedelta(days=2))
    with any_db.sessions() as s:
        out = build_outlook(s, load_rules(s), NOW)
    when, why = out.next_call
    assert out.callable_now == 0
    assert when == dt.datetime(2026, 3, 2, 21, 0, tzinfo=dt.UTC) and why.startswith("waiting_window")
