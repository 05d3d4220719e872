"""Callback-task logic without HTTP: ordering, queues, atomic claims, idle release, results."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import select

from ivr.db.models import CallbackTask, DebtCase, PhoneNumber, Promise, User
from ivr.web import tasks
from ivr.wiring import Database

from .conftest import NOW, add_user, make_account, make_task


def _users(db: Database) -> tuple[int, int]:
    return add_user(db, "op1", "operator"), add_user(db, "op2", "operator")


def _taken(task: CallbackTask | None) -> CallbackTask:
    assert task is not None
    return task


def _user(s, uid: int) -> User:  # type: ignore[no-untyped-def]
    return s.get_one(User, uid)


def test_take_next_order_priority_then_oldest_due(db: Database) -> None:
    op1, _ = _users(db)
    with db.sessions.begin() as s:
        a = make_account(s)
        late = make_task(s, a, queue="billing", priority=5, due=dt.datetime(2025, 11, 19, 9, 0)).id
        early = make_task(s, a, queue="quality", priority=5, due=dt.datetime(2025, 11, 18, 9, 0)).id
        urgent = make_task(s, a, queue="retention", priority=1, due=dt.datetime(2025, 11, 19, 9, 30)).id
        make_task(s, a, queue="billing", priority=0, due=dt.datetime(2025, 11, 20, 9, 0))  # not due yet
    order = []
    for _ in range(4):
        with db.sessions.begin() as s:
            task = tasks.take_next(s, _user(s, op1), NOW, 30)
            if task is None:
                break
            order.append(task.id)
            tasks.record_result(s, task.id, _user(s, op1), tasks.ResultInput("resolved"), NOW, NOW.date())
    assert order == [urgent, early, late]


def test_take_next_respects_operator_queues_and_returns_held_task(db: Database) -> None:
    billing_op = add_user(db, "bill", "operator", queues=["billing"])
    with db.sessions.begin() as s:
        a = make_account(s)
        make_task(s, a, queue="quality", priority=1)
        mine = make_task(s, a, queue="billing", priority=9).id
    with db.sessions.begin() as s:
        assert _taken(tasks.take_next(s, _user(s, billing_op), NOW, 30)).id == mine
    with db.sessions.begin() as s:  # asking again gives the task already held, not a second one
        assert _taken(tasks.take_next(s, _user(s, billing_op), NOW, 30)).id == mine
    with db.sessions.begin() as s, pytest.raises(tasks.TaskError) as err:
        tasks.take_next(s, _user(s, billing_op), NOW, 30, queue="quality")
    assert err.value.key == "err_queue_not_yours"


def test_claim_is_a_conditional_update(any_db: Database) -> None:
    op1, op2 = _users(any_db)
    with any_db.sessions.begin() as s:
        task_id = make_task(s, make_account(s)).id
    # both operators saw the task open; only the first UPDATE wins
    with any_db.sessions.begin() as s:
        assert tasks.claim_task(s, task_id, op1, NOW)
    with any_db.sessions.begin() as s:
        assert not tasks.claim_task(s, task_id, op2, NOW)
        assert s.get_one(CallbackTask, task_id).claimed_by == op1


def test_two_operators_never_get_the_same_task(any_db: Database) -> None:
    ops = [add_user(any_db, f"op{i}", "operator") for i in range(4)]
    with any_db.sessions.begin() as s:
        a = make_account(s)
        ids = {make_task(s, a, due=dt.datetime(2025, 11, 19, 9, i)).id for i in range(12)}
    got: dict[int, list[int]] = {uid: [] for uid in ops}
    errors: list[BaseException] = []
    start = threading.Barrier(len(ops))

    def work(uid: int) -> None:
        try:
            start.wait()
            while True:
                with any_db.sessions.begin() as s:
                    task = tasks.take_next(s, s.get_one(User, uid), NOW, 30)
                    if task is None:
                        return
                    got[uid].append(task.id)
                    # finish it so that the next take_next claims a new one
                    tasks.record_result(s, task.id, s.get_one(User, uid), tasks.ResultInput("resolved"), NOW, NOW.date())
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(uid,)) for uid in ops]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not errors, errors
    taken = [tid for lst in got.values() for tid in lst]
    assert sorted(taken) == sorted(ids)  # every task exactly once
    assert len(set(taken)) == len(taken)


def test_idle_claims_return_to_the_queue(db: Database) -> None:
    op1, op2 = _users(db)
    with db.sessions.begin() as s:
        task_id = make_task(s, make_account(s)).id
    with db.sessions.begin() as s:
        assert _taken(tasks.take_next(s, _user(s, op1), NOW, 30)).id == task_id
    later = NOW + dt.timedelta(minutes=20)
    with db.sessions.begin() as s:
        tasks.touch(s, s.get_one(CallbackTask, task_id), later)  # op1 is still working at +20 min
        assert tasks.release_idle_claims(s, NOW + dt.timedelta(minutes=45), 30) == 0
    with db.sessions.begin() as s:
        assert tasks.release_idle_claims(s, later + dt.timedelta(minutes=31), 30) == 1
        task = s.get_one(CallbackTask, task_id)
        assert (task.state, task.claimed_by) == ("open", None)
    # op2's take_next runs the release itself
    with db.sessions.begin() as s:
        tasks.claim_task(s, task_id, op1, NOW)
    with db.sessions.begin() as s:
        assert _taken(tasks.take_next(s, _user(s, op2), NOW + dt.timedelta(minutes=31), 30)).id == task_id
    with db.sessions.begin() as s, pytest.raises(tasks.TaskError) as err:
        tasks.record_result(s, task_id, _user(s, op1), tasks.ResultInput("resolved"), NOW, NOW.date())
    assert err.value.key == "err_claim_lost"


def _claimed(db: Database) -> tuple[int, int, int]:
    op1, _ = _users(db)
    with db.sessions.begin() as s:
        account = make_account(s)
        task_id = make_task(s, account).id
        tasks.claim_task(s, task_id, op1, NOW)
        return op1, task_id, account.id


def test_promise_creates_operator_promise_and_pauses_case(db: Database) -> None:
    op1, task_id, account_id = _claimed(db)
    today = dt.date(2025, 11, 19)
    with db.sessions.begin() as s:
        tasks.record_result(s, task_id, _user(s, op1), tasks.ResultInput("promise", note="will pay Friday",
                            promise_date=dt.date(2025, 11, 21)), NOW, today)
    with db.sessions() as s:
        task = s.get_one(CallbackTask, task_id)
        assert (task.state, task.result, task.promise_date) == ("done", "promise", dt.date(2025, 11, 21))
        assert "will pay Friday" in task.result_note
        case = s.scalars(select(DebtCase).where(DebtCase.account_id == account_id)).one()
        assert case.state == "promised"
        promise = s.scalars(select(Promise).where(Promise.debt_case_id == case.id)).one()
        assert (promise.source, promise.status, promise.amount) == ("operator", "pending", Decimal("1800.50"))


@pytest.mark.parametrize(("date", "key"), [
    (dt.date(2025, 11, 18), "err_promise_past"),
    (dt.date(2025, 12, 31), "err_promise_horizon"),  # block date 25.11 + 5 days is the horizon
    (None, "err_promise_missing"),
])
def test_bad_promise_dates_are_refused(db: Database, date: dt.date | None, key: str) -> None:
    op1, task_id, _ = _claimed(db)
    with db.sessions.begin() as s, pytest.raises(tasks.TaskError) as err:
        tasks.record_result(s, task_id, _user(s, op1), tasks.ResultInput("promise", promise_date=date), NOW,
                            dt.date(2025, 11, 19))
    assert err.value.key == key
    with db.sessions() as s:
        assert s.get_one(CallbackTask, task_id).state == "claimed"
        assert s.scalar(select(Promise.id)) is None


def test_parse_promise_date() -> None:
    assert tasks.parse_promise_date("2025-11-21") == dt.date(2025, 11, 21)
    for bad in ("2025-02-30", "21.11.2025", "soon"):
        with pytest.raises(tasks.TaskError) as err:
            tasks.parse_promise_date(bad)
        assert err.value.key == "err_promise_not_date"


def test_unreachable_returns_task_later(db: Database) -> None:
    op1, task_id, _ = _claimed(db)
    with db.sessions.begin() as s:
        tasks.record_result(s, task_id, _user(s, op1), tasks.ResultInput("unreachable", retry_minutes=240), NOW,
                            NOW.date())
    with db.sessions() as s:
        task = s.get_one(CallbackTask, task_id)
        assert (task.state, task.claimed_by, task.result) == ("open", None, "unreachable")
        assert task.due_at == dt.datetime(2025, 11, 19, 14, 0)
    with db.sessions.begin() as s:  # not due yet: nobody gets it now
        assert tasks.take_next(s, _user(s, op1), NOW, 30) is None
    with db.sessions.begin() as s:
        assert _taken(tasks.take_next(s, _user(s, op1), NOW + dt.timedelta(hours=4), 30)).id == task_id


def test_wrong_number_marks_the_phone(db: Database) -> None:
    op1, task_id, account_id = _claimed(db)
    with db.sessions() as s:
        second = s.scalars(select(PhoneNumber).where(PhoneNumber.account_id == account_id)
                           .order_by(PhoneNumber.priority)).all()[1].id
    with db.sessions.begin() as s:
        tasks.record_result(s, task_id, _user(s, op1), tasks.ResultInput("wrong_number", phone_id=second), NOW,
                            NOW.date())
    with db.sessions() as s:
        assert s.get_one(PhoneNumber, second).status == "wrong_party"
        assert s.get_one(CallbackTask, task_id).state == "done"


def test_refused_and_resolved_close_the_task(db: Database) -> None:
    op1, task_id, _ = _claimed(db)
    with db.sessions.begin() as s:
        tasks.record_result(s, task_id, _user(s, op1), tasks.ResultInput("refused", next_action="retention offer"),
                            NOW, NOW.date())
    with db.sessions() as s:
        task = s.get_one(CallbackTask, task_id)
        assert (task.state, task.result, task.next_action) == ("done", "refused", "retention offer")
        assert task.done_at == NOW.replace(tzinfo=None)


def test_queue_counts(db: Database) -> None:
    op1, _ = _users(db)
    with db.sessions.begin() as s:
        a = make_account(s)
        make_task(s, a, queue="billing")
        make_task(s, a, queue="billing", due=dt.datetime(2025, 11, 20))
        claimed = make_task(s, a, queue="quality").id
        tasks.claim_task(s, claimed, op1, NOW)
    with db.sessions() as s:
        counts = {c.queue: c for c in tasks.queue_counts(s, NOW)}
        assert (counts["billing"].open, counts["billing"].due, counts["billing"].claimed) == (2, 1, 0)
        assert (counts["quality"].open, counts["quality"].claimed) == (0, 1)
        assert "retention" in counts  # a route of the classifier with no tasks yet
        assert [c.queue for c in tasks.queue_counts(s, NOW, ["billing"])] == ["billing"]
