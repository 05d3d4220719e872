"""Reconciliation: lost calls are kept and retried later, unsent claims released, live ones kept."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from ivr.db.models import Account, CallAttempt, DebtCase
from ivr.dialer.claims import claim, mark_dialing, mark_originating
from ivr.dialer.policy import Limit
from ivr.dialer.reconcile import reconcile
from ivr.dialer.selector import select_candidates
from ivr.wiring import Database
from tests.dialer.conftest import add_case, make_rules

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RULES = make_rules(limits=[Limit("day", 10, "attempts")], retry_no_answer_minutes=120)


def claim_all(db: Database, n: int, server: str = "ast1") -> list[CallAttempt]:
    with db.sessions.begin() as s:
        for _ in range(n):
            add_case(s)
    out = []
    with db.sessions() as s:
        cands = select_candidates(s, RULES, NOW, n)
        s.rollback()
    for cand in cands:
        with db.sessions() as s:
            attempt = claim(s, cand, "d1", NOW, rules=RULES, server=server)
            assert attempt is not None
            out.append(attempt)
    return out


def sent(db: Database, attempt: CallAttempt) -> None:
    with db.sessions() as s:
        assert mark_originating(s, attempt.id, NOW)
        mark_dialing(s, attempt.id)


def test_reconcile_sorts_out_every_kind_of_leftover(any_db: Database) -> None:
    unsent, live, lost, elsewhere = claim_all(any_db, 4)
    for attempt in (live, lost, elsewhere):
        sent(any_db, attempt)
    with any_db.sessions.begin() as s:
        s.execute(update(CallAttempt).where(CallAttempt.id == elsewhere.id).values(server="ast2"))
    # too young: nothing happens yet
    early = reconcile(any_db.sessions, RULES, NOW + dt.timedelta(seconds=5), {"ast1": set()})
    assert (early.lost, early.not_sent) == ([], [])

    later = NOW + dt.timedelta(minutes=5)
    report = reconcile(any_db.sessions, RULES, later, {"ast1": {live.action_id}})
    assert report.not_sent == [unsent.action_id]
    assert report.live == [live.action_id]
    assert report.lost == [lost.action_id]
    assert report.unchecked == [elsewhere.action_id]  # ast2 was not asked
    with any_db.sessions() as s:
        states = {a.action_id: (a.state, a.result) for a in s.query(CallAttempt)}
        assert states[unsent.action_id] == ("done", "not_sent")
        assert states[live.action_id] == ("dialing", None)
        assert states[lost.action_id] == ("unknown", "lost")  # the row stays; a late event completes it
        assert states[elsewhere.action_id] == ("dialing", None)
        lost_case = s.get(DebtCase, lost.debt_case_id)
        unsent_case = s.get(DebtCase, unsent.debt_case_id)
        assert lost_case is not None and unsent_case is not None
        assert (lost_case.last_result, lost_case.attempts_in_stage) == ("lost", 1)
        # never an immediate blind redial: the normal no-answer interval
        assert lost_case.next_attempt_at == (later + dt.timedelta(minutes=120)).replace(tzinfo=None)
        # never sent: nothing counted, nothing postponed
        assert (unsent_case.attempts_in_stage, unsent_case.next_attempt_at, unsent_case.last_result) == (0, None, None)
        locks = {a.id: a.dial_lock_owner for a in s.query(Account)}
        assert locks[lost.account_id] is None and locks[unsent.account_id] is None
        assert locks[live.account_id] == live.action_id

    # the dialer that was slow to send finds its claim gone and does not send it
    with any_db.sessions() as s:
        assert not mark_originating(s, unsent.id, later)
    # running it again changes nothing
    again = reconcile(any_db.sessions, RULES, later, {"ast1": {live.action_id}})
    assert (again.lost, again.not_sent, again.live) == ([], [], [live.action_id])
