"""Holding the robot for an account, without HTTP: which cases move, to when, and the note."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from ivr.db.models import AccountNote, DebtCase
from ivr.web.account_view import AccountError, hold_account, hold_resume_at
from ivr.wiring import Database
from tests.web.conftest import NOW, make_account


def test_resume_follows_the_zone_and_dst() -> None:
    # Berlin leaves summer time on 2025-10-26: local midnight starting that day is still UTC+2
    assert hold_resume_at(dt.date(2025, 10, 25), "Europe/Berlin") == dt.datetime(2025, 10, 25, 22, 0)
    assert hold_resume_at(dt.date(2025, 10, 26), "Europe/Berlin") == dt.datetime(2025, 10, 26, 23, 0)


def test_hold_moves_only_cases_the_robot_may_still_call(db: Database) -> None:
    with db.sessions.begin() as s:
        account = make_account(s, "H-1", timezone="Europe/Moscow")
        closed = DebtCase(account_id=account.id, opened_on=dt.date(2025, 9, 10), amount_initial=100,
                          amount_owed=0, state="closed", next_attempt_at=None)
        s.add(closed)
        s.flush()
        held = hold_account(s, account.id, dt.date(2025, 11, 30), "op1", "уехал", NOW, "Europe/Moscow")
        assert held == 1
    with db.sessions() as s:
        rows = {c.state: (c.next_attempt_at, c.wait_reason) for c in s.scalars(select(DebtCase))}
        assert rows["active"] == (dt.datetime(2025, 11, 30, 21, 0), "hold")  # 1 December 00:00 in Moscow
        assert rows["closed"] == (None, None)
        note = s.scalars(select(AccountNote)).one()
        assert (note.author, note.created_at) == ("op1", NOW.replace(tzinfo=None))
        assert "2025-11-30" in note.text and "уехал" in note.text


def test_hold_refusals_change_nothing(db: Database) -> None:
    with db.sessions.begin() as s:
        account_id = make_account(s, "H-2").id
    for until, why, key in [(dt.date(2025, 11, 30), " ", "err_hold_reason"),
                            (dt.date(2025, 11, 18), "x", "err_hold_past")]:
        with db.sessions.begin() as s, pytest.raises(AccountError) as err:
            hold_account(s, account_id, until, "op1", why, NOW, "Europe/Moscow")
        assert err.value.key == key
    with pytest.raises(AccountError), db.sessions.begin() as s:
        hold_account(s, 999_999, dt.date(2025, 11, 30), "op1", "x", NOW, "Europe/Moscow")
    with db.sessions() as s:
        case = s.scalars(select(DebtCase).where(DebtCase.account_id == account_id)).one()
        assert (case.next_attempt_at, case.wait_reason) == (dt.datetime(2025, 11, 19, 6, 0), None)
        assert s.scalars(select(AccountNote)).all() == []
