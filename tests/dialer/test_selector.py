"""Candidate selection: the SQL filter, the pure checks and the queue-head bumps."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ivr.db.models import Account, CallAttempt, DebtCase, OptOut, PhoneNumber, Promise
from ivr.dialer.policy import load_rules
from ivr.dialer.selector import SelectionStats, select_candidates
from ivr.wiring import Database
from tests.dialer.conftest import add_case

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 12:00 in Moscow, 19:00 in Vladivostok
NAIVE_NOW = NOW.replace(tzinfo=None)


def select_now(db: Database, limit: int = 50, now: dt.datetime = NOW, stats: SelectionStats | None = None):
    with db.sessions() as s:
        found = select_candidates(s, load_rules(s), now, limit, stats=stats)
        s.commit()
    return found


def test_who_is_selected_and_who_is_not(any_db: Database) -> None:
    with any_db.sessions.begin() as s:
        ok = add_case(s).id
        due = add_case(s, next_attempt_at=NOW - dt.timedelta(hours=1)).id
        add_case(s, next_attempt_at=NOW + dt.timedelta(minutes=5))  # not due yet
        promised = add_case(s, state="promised")
        s.add(Promise(debt_case_id=promised.id, promised_date=dt.date(2026, 3, 5), status="pending"))
        broken = add_case(s, state="promised")  # promised for yesterday: the case resumes today
        s.add(Promise(debt_case_id=broken.id, promised_date=dt.date(2026, 3, 1), status="pending"))
        broken_id, promised_id = broken.id, promised.id
        add_case(s, owed="0")
        locked = add_case(s)
        locked.account.dial_lock_owner, locked.account.dial_lock_until = "other", NAIVE_NOW + dt.timedelta(minutes=5)
        expired = add_case(s)
        expired.account.dial_lock_owner, expired.account.dial_lock_until = "dead", NAIVE_NOW - dt.timedelta(minutes=5)
        expired_id = expired.id
        opted = add_case(s)
        s.add(OptOut(account_id=opted.account_id))
        two_numbers = add_case(s, phones=["+79160000101", "+79160000102"])
        s.add(OptOut(phone="+79160000101"))
        two_id = two_numbers.id
        vlad = add_case(s, tz="Asia/Vladivostok").id  # 19:00 there: still inside 9-20
        late = add_case(s, tz="Asia/Kamchatka").id  # 21:00 there: outside
    found = select_now(any_db)
    by_case = {c.case_id: c for c in found}
    assert ok in by_case and due in by_case and expired_id in by_case and two_id in by_case
    assert by_case[two_id].phone == "+79160000102"
    assert late not in by_case
    assert vlad in by_case
    assert broken_id in by_case
    assert len(found) == 6
    assert all(c.stage_code == "reminder" and c.language == "ru" for c in found)
    with any_db.sessions() as s:
        assert s.get(DebtCase, broken_id).promise_broken  # type: ignore[union-attr]
        assert s.scalar(select(Promise.status).where(Promise.debt_case_id == broken_id)) == "broken"
        # the paused one waits for the end of its promised day in Moscow (21:00 UTC on the 5th)
        kept = s.get(DebtCase, promised_id)
        assert kept.state == "promised" and kept.next_attempt_at == dt.datetime(2026, 3, 5, 21, 0)  # type: ignore[union-attr]


def test_order_and_limit_and_one_case_per_person(any_db: Database) -> None:
    with any_db.sessions.begin() as s:
        oldest = add_case(s, next_attempt_at=NOW - dt.timedelta(days=2)).id
        older = add_case(s, next_attempt_at=NOW - dt.timedelta(days=1)).id
        new = add_case(s).id
        second_case = DebtCase(account_id=s.get(DebtCase, new).account_id, opened_on=dt.date(2026, 3, 1),  # type: ignore[union-attr]
                               amount_initial=1, amount_owed=1, stage_code="reminder")
        s.add(second_case)
    stats = SelectionStats()
    found = select_now(any_db, limit=2, stats=stats)
    assert [c.case_id for c in found] == [new, oldest]  # never-tried first, then by due time
    assert stats.duplicate_account == 1
    assert older not in [c.case_id for c in found]


def test_window_failures_are_bumped_to_the_next_window(any_db: Database) -> None:
    with any_db.sessions.begin() as s:
        late = add_case(s, tz="Asia/Kamchatka").id  # UTC+12: 21:00 Monday
    stats = SelectionStats()
    assert select_now(any_db, stats=stats) == []
    assert stats.outside_window == 1 and stats.bumped == 1
    with any_db.sessions() as s:
        # Tuesday 09:00 in Kamchatka = Monday 21:00 UTC
        assert s.get(DebtCase, late).next_attempt_at == dt.datetime(2026, 3, 2, 21, 0)  # type: ignore[union-attr]


def test_limit_failures_are_bumped_past_the_limit_and_into_a_window(any_db: Database) -> None:
    with any_db.sessions.begin() as s:
        case = add_case(s)
        s.add(CallAttempt(debt_case_id=case.id, account_id=case.account_id, phone=case.account.phones[0].number,
                          action_id="old-1", state="done", result="answered",
                          created_at=NAIVE_NOW - dt.timedelta(hours=2), originated_at=NAIVE_NOW - dt.timedelta(hours=2)))
        case_id = case.id
    stats = SelectionStats()
    assert select_now(any_db, stats=stats) == []
    assert stats.over_limit == 1
    with any_db.sessions() as s:
        # one answered call a day (both readings): 24 h after 10:00 MSK, inside the window
        assert s.get(DebtCase, case_id).next_attempt_at == NAIVE_NOW + dt.timedelta(hours=22)  # type: ignore[union-attr]


def test_not_sent_attempts_do_not_count_and_in_flight_ones_do(any_db: Database) -> None:
    with any_db.sessions.begin() as s:
        free = add_case(s)
        s.add(CallAttempt(debt_case_id=free.id, account_id=free.account_id, phone="+70000000000", action_id="ns-1",
                          state="done", result="not_sent", created_at=NAIVE_NOW - dt.timedelta(minutes=30)))
        busy = add_case(s)
        s.add(CallAttempt(debt_case_id=busy.id, account_id=busy.account_id, phone="+70000000000", action_id="if-1",
                          state="dialing", created_at=NAIVE_NOW - dt.timedelta(minutes=30)))
        free_id, busy_id = free.id, busy.id
    ids = {c.case_id for c in select_now(any_db)}
    assert free_id in ids and busy_id not in ids


def test_no_usable_phone_and_bad_zone_are_reported(any_db: Database) -> None:
    with any_db.sessions.begin() as s:
        dead = add_case(s)
        for phone in dead.account.phones:
            phone.status = "invalid"
        nowhere = add_case(s, tz="Atlantis/Capital")
        ids = dead.id, nowhere.id
    stats = SelectionStats()
    assert select_now(any_db, stats=stats) == []
    assert (stats.no_phone, stats.bad_timezone) == (1, 1)
    assert set(stats.not_callable_case_ids) == {ids[0], ids[1]}
    with any_db.sessions() as s:
        bumps = dict(s.execute(select(DebtCase.id, DebtCase.next_attempt_at)).all())
    assert bumps[ids[0]] == NAIVE_NOW + dt.timedelta(days=1)


def test_a_new_case_is_staged_and_selected_in_the_same_pass(any_db: Database) -> None:
    """The cause of "no call for an hour after an import": the dial pass must not wait for the
    ladder tick to give a fresh case its stage (no other job runs in this test)."""
    with any_db.sessions.begin() as s:
        fresh = add_case(s, stage_code=None).id
        exhausted = add_case(s, attempts_in_stage=5).id  # 'reminder' ran out: waits for 'firm'
        early = add_case(s, stage_code=None, opened_on=dt.date(2026, 3, 2)).id  # due today: first stage tomorrow
    stats = SelectionStats()
    found = select_now(any_db, stats=stats)
    assert [c.case_id for c in found] == [fresh]
    assert found[0].stage_code == "reminder"
    with any_db.sessions() as s:
        case = s.get(DebtCase, fresh)
        assert case.stage_code == "reminder" and case.stage_entered_at == NAIVE_NOW  # type: ignore[union-attr]
        waiting = s.get(DebtCase, early)
        # day 1 after the due date, local midnight in Moscow
        assert waiting.stage_code is None and waiting.next_attempt_at == dt.datetime(2026, 3, 2, 21, 0)  # type: ignore[union-attr]
        assert s.get(DebtCase, exhausted).next_attempt_at > NAIVE_NOW  # type: ignore[operator, union-attr]
    assert stats.waiting_stage == 2


def test_phone_time_zone_is_used_when_the_account_has_none(any_db: Database) -> None:
    with any_db.sessions.begin() as s:
        # Vladivostok landline, no account zone: 19:00 local now, 22:00 at 12:00 UTC
        case_id = add_case(s, tz=None, phones=["+74232000000"]).id
    assert [c.timezone for c in select_now(any_db)] == ["Asia/Vladivostok"]
    with any_db.sessions.begin() as s:
        s.get(DebtCase, case_id).next_attempt_at = None  # type: ignore[union-attr]
    assert select_now(any_db, now=NOW + dt.timedelta(hours=3)) == []


def test_unchanged_rows_are_left_alone(db: Database) -> None:
    with db.sessions.begin() as s:
        add_case(s)
        acc = s.scalar(select(Account))
        assert acc is not None
        s.add(PhoneNumber(account_id=acc.id, number="+79169999999", priority=9))
    assert len(select_now(db)) == 1
    assert len(select_now(db)) == 1  # selection alone does not consume anything
