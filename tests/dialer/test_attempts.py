"""Attempt bookkeeping from AMI events: idempotent, order-independent, precise results."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from ivr.ami.types import CallEnded, OriginateResult
from ivr.db.models import Account, CallAttempt, CallStep, DebtCase
from ivr.dialer.attempts import on_call_ended, on_originate_error, on_originate_result
from ivr.dialer.claims import claim, mark_dialing, mark_originating
from ivr.dialer.policy import Limit, Stage
from ivr.dialer.selector import count_history_row, select_candidates
from ivr.wiring import Database
from tests.dialer.conftest import add_case, make_rules

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RULES = make_rules(
    stages=(Stage("reminder", 1, max_attempts=5, retry_minutes=360), Stage("firm", 2, start_day=7)),
    limits=[Limit("day", 10, "attempts")], retry_busy_minutes=20, retry_machine_minutes=240,
    retry_failed_minutes=5,
)


def naive(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=None)


def start_call(db: Database, phones: list[str] | None = None) -> CallAttempt:
    with db.sessions.begin() as s:
        add_case(s, phones=phones)
    with db.sessions() as s:
        cand = select_candidates(s, RULES, NOW, 10)[0]
        s.rollback()
        attempt = claim(s, cand, "d1", NOW, rules=RULES, server="ast1")
        assert attempt is not None
        assert mark_originating(s, attempt.id, NOW)
        mark_dialing(s, attempt.id)
    return attempt


def ended(attempt: CallAttempt, result: str, cause: int = 16) -> CallEnded:
    return CallEnded(call_id=attempt.action_id, uniqueid="1700000000.1", channel="PJSIP/trunk-0001",
                     cause=cause, cause_txt="x", result=result)


def response(attempt: CallAttempt, success: bool, result: str, reason: int = 4) -> OriginateResult:
    return OriginateResult(action_id=attempt.action_id, success=success, reason=reason,
                           channel="PJSIP/trunk-0001", uniqueid="1700000000.1" if success else None, result=result)


def state(db: Database, attempt: CallAttempt) -> tuple[CallAttempt, DebtCase, Account]:
    with db.sessions() as s:
        a = s.get(CallAttempt, attempt.id)
        assert a is not None and a.debt_case_id is not None
        case = s.get(DebtCase, a.debt_case_id)
        account = s.get(Account, a.account_id)
        assert case is not None and account is not None
        return a, case, account


def test_busy_from_originate_response(db: Database) -> None:
    attempt = start_call(db)
    upd = on_originate_result(db.sessions, response(attempt, False, "busy", 5), NOW + dt.timedelta(seconds=5), RULES)
    assert upd is not None and upd.finished and upd.applied and upd.server == "ast1"
    a, case, account = state(db, attempt)
    assert (a.state, a.result, a.channel) == ("done", "busy", "PJSIP/trunk-0001")
    assert (case.last_result, case.attempts_in_stage) == ("busy", 1)
    assert case.next_attempt_at == naive(NOW + dt.timedelta(seconds=5, minutes=20))
    assert account.dial_lock_owner is None and account.dial_lock_until is None


def test_answered_call_and_its_duration(db: Database) -> None:
    attempt = start_call(db)
    upd = on_originate_result(db.sessions, response(attempt, True, "answered"), NOW + dt.timedelta(seconds=10), RULES)
    assert upd is not None and not upd.finished
    a, _, account = state(db, attempt)
    assert a.state == "answered" and a.answered_at == naive(NOW + dt.timedelta(seconds=10))
    assert account.dial_lock_owner == attempt.action_id  # still in flight
    # the hangup cause says "no answer"-ish, but Asterisk reported the call answered
    on_call_ended(db.sessions, ended(attempt, "no_answer", cause=19), NOW + dt.timedelta(seconds=70), RULES)
    a, case, account = state(db, attempt)
    assert (a.state, a.result, float(a.duration_s or 0), a.hangup_cause) == ("done", "answered", 60.0, 19)
    assert case.next_attempt_at == naive(NOW + dt.timedelta(seconds=70, minutes=360))
    assert account.dial_lock_owner is None


@pytest.mark.parametrize("specific", ["machine", "wrong_party"])
def test_the_call_scripts_result_is_not_overwritten(db: Database, specific: str) -> None:
    attempt = start_call(db, phones=["+79160000001", "+79160000002"])
    on_originate_result(db.sessions, response(attempt, True, "answered"), NOW, RULES)
    with db.sessions.begin() as s:  # what the call script does while the call runs
        s.execute(update(CallAttempt).where(CallAttempt.id == attempt.id).values(result=specific))
    on_call_ended(db.sessions, ended(attempt, "answered"), NOW + dt.timedelta(seconds=30), RULES)
    a, case, _ = state(db, attempt)
    assert a.result == specific and case.last_result == specific
    if specific == "machine":
        assert case.next_attempt_at == naive(NOW + dt.timedelta(seconds=30, minutes=240))
        assert case.next_phone_priority == 1
    else:
        assert case.next_phone_priority == 2


def test_hangup_before_originate_response_and_repeats(db: Database) -> None:
    attempt = start_call(db)
    first = on_call_ended(db.sessions, ended(attempt, "busy", cause=17), NOW, RULES)
    assert first is not None and first.applied
    again = on_call_ended(db.sessions, ended(attempt, "busy", cause=17), NOW, RULES)
    late = on_originate_result(db.sessions, response(attempt, False, "busy", 5), NOW, RULES)
    assert again is not None and not again.applied and late is not None and late.finished
    a, case, _ = state(db, attempt)
    assert (a.result, a.hangup_cause, case.attempts_in_stage) == ("busy", 17, 1)


def test_failed_moves_to_the_next_number(db: Database) -> None:
    attempt = start_call(db, phones=["+79160000001", "+79160000002"])
    on_originate_result(db.sessions, response(attempt, False, "failed", 0), NOW, RULES)
    _, case, _ = state(db, attempt)
    assert (case.next_phone_priority, case.next_attempt_at) == (2, naive(NOW + dt.timedelta(minutes=5)))


def test_a_late_event_never_releases_a_newer_lock(db: Database) -> None:
    attempt = start_call(db)
    with db.sessions.begin() as s:  # the lease expired and a newer attempt took the person
        s.execute(update(Account).where(Account.id == attempt.account_id).values(dial_lock_owner="d2-newer"))
    on_call_ended(db.sessions, ended(attempt, "no_answer", cause=19), NOW, RULES)
    _, _, account = state(db, attempt)
    assert account.dial_lock_owner == "d2-newer"


def test_stage_change_during_the_call_does_not_count_in_the_new_stage(db: Database) -> None:
    attempt = start_call(db)
    with db.sessions.begin() as s:
        s.execute(update(DebtCase).where(DebtCase.id == attempt.debt_case_id)
                  .values(stage_code="firm", attempts_in_stage=0, next_phone_priority=1))
    on_call_ended(db.sessions, ended(attempt, "no_answer", cause=19), NOW, RULES)
    _, case, _ = state(db, attempt)
    assert (case.stage_code, case.attempts_in_stage, case.last_result) == ("firm", 0, "no_answer")


def test_a_later_next_attempt_set_by_the_call_script_is_kept(db: Database) -> None:
    attempt = start_call(db)
    grace = naive(NOW + dt.timedelta(days=3))  # "already paid": wait for the payment
    with db.sessions.begin() as s:
        s.execute(update(DebtCase).where(DebtCase.id == attempt.debt_case_id).values(next_attempt_at=grace))
    on_originate_result(db.sessions, response(attempt, True, "answered"), NOW, RULES)
    on_call_ended(db.sessions, ended(attempt, "answered"), NOW + dt.timedelta(seconds=40), RULES)
    _, case, _ = state(db, attempt)
    assert case.next_attempt_at == grace


def test_originate_error_frees_the_person_without_counting(db: Database) -> None:
    """A refused Originate (Response: Error) is not an attempt on the subscriber (issue 15)."""
    attempt = start_call(db)
    upd = on_originate_error(db.sessions, attempt.action_id, NOW, RULES, "Response: Error")
    assert upd is not None and upd.finished
    a, case, account = state(db, attempt)
    assert (a.state, a.result, case.attempts_in_stage, case.last_result) == ("done", "refused", 0, "refused")
    assert a.originated_at is None
    assert count_history_row(a.state, a.result) == (False, False)
    assert account.dial_lock_owner is None
    assert case.next_attempt_at == naive(NOW + dt.timedelta(minutes=RULES.options.retry_failed_minutes))


def test_unknown_call_ids_are_ignored(db: Database) -> None:
    fake = CallEnded(call_id="someone-else", uniqueid="1", channel="x", cause=16, cause_txt="", result="answered")
    assert on_call_ended(db.sessions, fake, NOW, RULES) is None


def test_a_late_event_completes_a_lost_attempt_without_counting_twice(db: Database) -> None:
    attempt = start_call(db)
    with db.sessions.begin() as s:  # what reconcile did: unknown, counted once
        s.execute(update(CallAttempt).where(CallAttempt.id == attempt.id).values(state="unknown"))
        s.execute(update(DebtCase).where(DebtCase.id == attempt.debt_case_id).values(attempts_in_stage=1, last_result="lost"))
    upd = on_call_ended(db.sessions, ended(attempt, "no_answer", cause=19), NOW, RULES)
    assert upd is not None and not upd.applied
    a, case, _ = state(db, attempt)
    assert (a.state, a.result, case.attempts_in_stage, case.last_result) == ("done", "no_answer", 1, "lost")


def _answered(db: Database) -> CallAttempt:
    attempt = start_call(db)
    on_originate_result(db.sessions, response(attempt, True, "answered"), NOW, RULES)
    return attempt


def test_an_answered_call_whose_script_never_ran_is_robot_failed_and_not_a_contact(db: Database) -> None:
    """ami-agi-server-down.txt: AGISTATUS=FAILURE, Normal Clearing, no step of the script."""
    attempt = _answered(db)
    event = CallEnded(call_id=attempt.action_id, uniqueid="1.1", channel="PJSIP/x", cause=16,
                      cause_txt="Normal Clearing", result="answered", agi_status="FAILURE")
    upd = on_call_ended(db.sessions, event, NOW + dt.timedelta(seconds=5), RULES)
    assert upd is not None and upd.result == "robot_failed"
    a, case, _ = state(db, attempt)
    assert (a.result, case.attempts_in_stage, case.last_result) == ("robot_failed", 0, "robot_failed")
    assert count_history_row(a.state, a.result) == (False, False)
    assert case.next_attempt_at == naive(NOW + dt.timedelta(seconds=5, minutes=RULES.options.retry_failed_minutes))


def test_an_answered_call_cut_mid_script_is_interrupted(db: Database) -> None:
    attempt = _answered(db)
    with db.sessions.begin() as s:
        s.add(CallStep(attempt_id=attempt.id, seq=1, step="greet", created_at=naive(NOW)))
    event = CallEnded(call_id=attempt.action_id, uniqueid="1.1", channel="PJSIP/x", cause=16,
                      cause_txt="Normal Clearing", result="answered", agi_status="SUCCESS")
    on_call_ended(db.sessions, event, NOW + dt.timedelta(seconds=20), RULES)
    a, case, _ = state(db, attempt)
    assert (a.result, case.attempts_in_stage) == ("interrupted", 0)


def test_a_call_the_script_finished_stays_answered(db: Database) -> None:
    attempt = _answered(db)
    with db.sessions.begin() as s:
        s.add(CallStep(attempt_id=attempt.id, seq=1, step="greet", created_at=naive(NOW)))
        row = s.get(CallAttempt, attempt.id)
        assert row is not None
        row.result = "answered"  # the script's finally wrote it before Asterisk hung up
    event = CallEnded(call_id=attempt.action_id, uniqueid="1.1", channel="PJSIP/x", cause=16,
                      cause_txt="Normal Clearing", result="answered", agi_status="SUCCESS")
    on_call_ended(db.sessions, event, NOW + dt.timedelta(seconds=20), RULES)
    a, case, _ = state(db, attempt)
    assert (a.result, case.attempts_in_stage) == ("answered", 1)
