"""Admins' pauses (issue 13): the store, and the dialer starting no call a pause covers."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from ivr.clock import FixedClock
from ivr.db.models import CallAttempt, DebtCase, RobotPause
from ivr.dialer import pauses
from ivr.dialer.policy import Stage
from ivr.dialer.selector import SelectionStats, select_candidates
from ivr.wiring import Database
from tests.dialer.conftest import add_case, make_rules
from tests.dialer.test_engine import START, make_dialer

UTC = dt.UTC
STAGES = (
    Stage("reminder", 1, anchor="due", start_day=1, max_attempts=3, on_end="next"),
    Stage("firm", 2, anchor="due", start_day=7, max_attempts=4, on_end="next"),
)
TWO_STAGES = make_rules(stages=STAGES)
REMINDER_OPENED = dt.date(2026, 3, 1)  # day 1 on START: reminder
FIRM_OPENED = dt.date(2026, 2, 20)  # day 10 on START: firm


def test_pause_resume_and_the_record(any_db: Database) -> None:
    db, t0 = any_db, START
    with db.sessions.begin() as s:
        assert not pauses.active(s)
        first = pauses.pause(s, pauses.STAGE, "firm", "boss", "complaints about the tone", t0)
        again = pauses.pause(s, pauses.STAGE, " firm ", "other", "second reason", t0 + dt.timedelta(minutes=1))
        assert again.id == first.id and again.who == "boss"  # the first pause and its reason are kept
        pauses.pause(s, pauses.SERVER, "ast2", "boss", "", t0)
        pauses.pause(s, pauses.GLOBAL, "ignored", "boss", "maintenance", t0)
    with db.sessions() as s:
        act = pauses.active(s)
        assert act.everything and act.stages == {"firm"} and act.servers == {"ast2"}
        assert [p.label() for p in pauses.list_active(s)] == ["stage firm", "server ast2", "everything"]
    with db.sessions.begin() as s:
        done = pauses.resume(s, pauses.GLOBAL, "", "chief", t0 + dt.timedelta(hours=1))
        assert [p.scope for p in done] == ["global"]
        assert pauses.resume(s, pauses.STAGE, "reminder", "chief", t0) == []  # was not paused
    with db.sessions() as s:
        act = pauses.active(s)
        assert not act.everything and act.stages == {"firm"}
        row = s.scalars(select(RobotPause).where(RobotPause.scope == "global")).one()
        assert (row.who, row.why, row.resumed_by) == ("boss", "maintenance", "chief")
        assert row.resumed_at == (t0 + dt.timedelta(hours=1)).replace(tzinfo=None)


@pytest.mark.parametrize(("scope", "key", "message"), [
    ("stage", "", "needs the stage"), ("server", "  ", "needs the server"), ("moon", "x", "unknown pause scope"),
])
def test_bad_pauses_are_refused_and_store_nothing(db: Database, scope: str, key: str, message: str) -> None:
    with db.sessions.begin() as s, pytest.raises(pauses.PauseError, match=message):
        pauses.pause(s, scope, key, "boss", "", START)
    with db.sessions() as s:
        assert s.scalars(select(RobotPause)).all() == []


def test_an_unknown_scope_in_the_table_stops_everything(db: Database) -> None:
    with db.sessions.begin() as s:
        s.add(RobotPause(scope="campaign", key="x", who="future", why="", created_at=START.replace(tzinfo=None)))
    with db.sessions() as s:
        assert pauses.active(s).everything  # fail closed


def two_stage_population(db: Database, per_stage: int) -> dict[str, set[int]]:
    cases: dict[str, set[int]] = {"reminder": set(), "firm": set()}
    with db.sessions.begin() as s:
        for _ in range(per_stage):
            cases["reminder"].add(add_case(s, stage_code="reminder", opened_on=REMINDER_OPENED).id)
            cases["firm"].add(add_case(s, stage_code="firm", opened_on=FIRM_OPENED).id)
    return cases


def test_selector_leaves_a_paused_stage_due(any_db: Database) -> None:
    db = any_db
    cases = two_stage_population(db, 4)
    with db.sessions.begin() as s:
        fresh_firm = add_case(s, stage_code=None, opened_on=FIRM_OPENED).id  # the ladder stages it to firm now
        stats = SelectionStats()
        found = select_candidates(s, TWO_STAGES, START, 50, stats=stats, paused_stages={"firm"})
    assert {c.case_id for c in found} == cases["reminder"]
    assert stats.paused == 1 and stats.bumped == 0
    with db.sessions() as s:
        firm = s.scalars(select(DebtCase).where(DebtCase.id.in_(cases["firm"] | {fresh_firm}))).all()
        # neither bumped nor claimed: they are due the moment the stage is resumed
        assert all(c.next_attempt_at is None and c.stage_code == "firm" for c in firm)
        found = select_candidates(s, TWO_STAGES, START, 50)
    assert {c.case_id for c in found} == cases["firm"] | cases["reminder"] | {fresh_firm}


async def test_dialer_skips_a_paused_stage_and_goes_on_with_the_other(db: Database) -> None:
    cases = two_stage_population(db, 3)
    with db.sessions.begin() as s:
        pauses.pause(s, pauses.STAGE, "firm", "boss", "", START)
    dialer, originators, _ = make_dialer(db, FixedClock(START), rules=TWO_STAGES)
    assert await dialer.run_once() == 3  # five free lines, three reminder cases
    with db.sessions() as s:
        dialled = set(s.scalars(select(CallAttempt.debt_case_id)))
    assert dialled == cases["reminder"]


async def test_dialer_reserves_no_line_on_a_paused_server(db: Database) -> None:
    two_stage_population(db, 5)
    with db.sessions.begin() as s:
        pauses.pause(s, pauses.SERVER, "ast2", "boss", "trunk works", START)
    dialer, originators, _ = make_dialer(db, FixedClock(START), rules=TWO_STAGES)
    assert await dialer.run_once() == 2  # only ast1's two lines
    assert len(originators["ast1"].requests) == 2 and originators["ast2"].requests == []
    with db.sessions.begin() as s:
        pauses.resume(s, pauses.SERVER, "ast2", "boss", START)
    assert await dialer.run_once() == 3  # resumed: the next pass fills ast2's three lines
    assert len(originators["ast2"].requests) == 3


async def test_a_global_pause_sends_nothing_until_resumed(db: Database) -> None:
    two_stage_population(db, 2)
    with db.sessions.begin() as s:
        pauses.pause(s, pauses.GLOBAL, "", "boss", "", START)
    dialer, originators, _ = make_dialer(db, FixedClock(START), rules=TWO_STAGES)
    assert await dialer.run_once() == 0
    with db.sessions() as s:
        assert s.scalars(select(CallAttempt)).all() == []
    with db.sessions.begin() as s:
        pauses.resume(s, pauses.GLOBAL, "", "boss", START)
    assert await dialer.run_once() == 4
