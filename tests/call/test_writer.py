"""The call facts writer (ivr/call/writer.py): one thread stores the facts of every call, in
groups (group commit), without the event loop ever waiting for the database; a failing fact
loses nothing else, and shutdown commits what is queued."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, insert, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ivr.agi.routing import close_routes
from ivr.call import facts
from ivr.call.recorder import CallRecorder
from ivr.call.routes import build_routes
from ivr.call.writer import FactWriter, WriterClosed
from ivr.clock import FixedClock
from ivr.config import load_settings
from ivr.db.models import (
    CallAttempt,
    CallbackTask,
    CallStep,
    DebtCase,
    OptOut,
    OutboxEvent,
    Outcome,
    Promise,
    Reason,
)
from ivr.dialplan_vars import ROUTE_DEBT_CALL
from ivr.wiring import Database
from tests.dialer.conftest import add_case

NOW = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)


def new_attempts(sessions: sessionmaker[Session], n: int) -> list[str]:
    """n attempts in flight (answered by Asterisk, script not run yet); their call ids."""
    ids = []
    with sessions.begin() as s:
        for _ in range(n):
            case = add_case(s)
            attempt = CallAttempt(debt_case_id=case.id, account_id=case.account_id,
                                  phone_number_id=case.account.phones[0].id, phone=case.account.phones[0].number,
                                  stage_code="reminder", action_id=f"call-{case.id}", state="dialing")
            s.add(attempt)
            s.flush()
            ids.append(attempt.action_id)
    return ids


@contextmanager
def counting_commits(engine: Engine) -> Iterator[list[int]]:
    """Counts COMMITs on every connection of `engine` (the writer's and any other)."""
    seen = [0]

    def on_commit(_conn: Connection) -> None:
        seen[0] += 1

    event.listen(engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(engine, "commit", on_commit)


def step_fact(attempt_id: int, seq: int, step: str = "greet") -> Any:
    def fact(conn: Connection) -> None:
        conn.execute(insert(CallStep.__table__).values(attempt_id=attempt_id, seq=seq, step=step,
                                                       created_at=NOW.replace(tzinfo=None)))
    return fact


def steps_of(sessions: sessionmaker[Session], attempt_id: int) -> list[tuple[int, str]]:
    with sessions() as s:
        return [(st.seq, st.step) for st in s.scalars(
            select(CallStep).where(CallStep.attempt_id == attempt_id).order_by(CallStep.seq))]


def an_attempt_id(sessions: sessionmaker[Session]) -> int:
    call_id = new_attempts(sessions, 1)[0]
    with sessions() as s:
        return int(s.scalar(select(CallAttempt.id).where(CallAttempt.action_id == call_id)))


# -- whole calls, many at once ---------------------------------------------------------------------
async def run_call(recorder: CallRecorder, call_id: str, path: str, reason_code: str) -> None:
    """The recorder calls the script makes on one path, with the loop switching calls between
    facts as it does while the commands of other calls come in."""
    info = await recorder.load(call_id)
    assert info is not None
    await recorder.answered(info, "HUMAN")
    await recorder.step(info, "greet")
    await asyncio.sleep(0)
    await recorder.step(info, "identity", "1", "ok")
    await recorder.identity(info, True)
    await asyncio.sleep(0)
    await recorder.message_delivered(info)
    await recorder.step(info, "debt_message")
    await asyncio.sleep(0)
    if path == "promise":
        await recorder.step(info, "menu", "1", "ok")
        await recorder.step(info, "promise_date", "1503", "ok")
        await recorder.promise(info, dt.date(2026, 3, 15))
    elif path == "reason":
        await recorder.step(info, "menu", "3", "ok")
        task_id = await recorder.reason(info, reason_code)
        assert task_id is not None  # the script only promises a call-back once the task is stored
    elif path == "opt_out":
        await recorder.opt_out(info)
        await recorder.step(info, "opt_out")
    else:
        await recorder.human_request(info, "billing")
        await recorder.step(info, "human_request")
    await recorder.step(info, "close")
    await recorder.finish(info, "message_only")


@pytest.mark.parametrize("calls", [60])
async def test_the_facts_of_many_concurrent_calls_are_all_stored_in_few_commits(any_db: Database, calls: int) -> None:
    call_ids = new_attempts(any_db.sessions, calls)
    with any_db.sessions() as s:
        reason_code = s.scalar(select(Reason.code).where(Reason.actionable.is_(True), Reason.route.is_not(None)))
    assert reason_code is not None
    writer = FactWriter(any_db.engine).start()
    recorder = CallRecorder(any_db.sessions, FixedClock(NOW), writer=writer)
    paths = ["promise", "reason", "opt_out", "human"]
    with counting_commits(any_db.engine) as commits:
        await asyncio.gather(*(run_call(recorder, cid, paths[i % 4], reason_code) for i, cid in enumerate(call_ids)))
    assert writer.close()
    assert writer.stats.failed == 0 and writer.stats.group_failures == 0

    with any_db.sessions() as s:
        for i, cid in enumerate(call_ids):
            attempt = s.scalar(select(CallAttempt).where(CallAttempt.action_id == cid))
            assert attempt.state == "answered" and attempt.amd_status == "HUMAN" and attempt.result == "answered"
            outcome = s.scalar(select(Outcome).where(Outcome.attempt_id == attempt.id))
            assert outcome.identity == "confirmed" and outcome.message_delivered
            steps = [st.step for st in s.scalars(select(CallStep).where(CallStep.attempt_id == attempt.id)
                                                 .order_by(CallStep.seq))]
            assert steps[:3] == ["greet", "identity", "debt_message"] and steps[-1] == "close"
            kinds = [e.kind for e in s.scalars(select(OutboxEvent).where(OutboxEvent.account_id == attempt.account_id)
                                               .order_by(OutboxEvent.seq))]
            path = paths[i % 4]
            if path == "promise":
                assert outcome.kind == "promise" and outcome.promise_date == dt.date(2026, 3, 15)
                assert s.scalar(select(Promise.status).where(Promise.attempt_id == attempt.id)) == "pending"
                assert s.get(DebtCase, attempt.debt_case_id).state == "promised"
                assert kinds == ["promise.made", "call.outcome"]
            elif path == "reason":
                assert outcome.kind == "reason" and outcome.reason_id is not None
                assert s.scalar(select(func.count()).select_from(CallbackTask)
                                .where(CallbackTask.attempt_id == attempt.id)) == 1
                assert kinds == ["call.outcome"]
            elif path == "opt_out":
                assert outcome.kind == "opt_out" and outcome.opted_out
                assert s.scalar(select(func.count()).select_from(OptOut)
                                .where(OptOut.account_id == attempt.account_id)) == 1
                assert kinds == ["opt_out", "call.outcome"]
            else:
                assert outcome.kind == "human_request" and outcome.human_requested
                task = s.scalar(select(CallbackTask).where(CallbackTask.attempt_id == attempt.id))
                assert task.queue == "billing" and task.priority == 3
                assert kinds == ["call.outcome"]
    facts = writer.stats.facts
    assert facts >= calls * 10  # answered, 6-7 steps and outcome facts, finish
    # grouped: far fewer transactions than facts (one per fact before the writer)
    assert commits[0] <= facts // 4, (commits[0], facts, writer.stats.groups)
    print(f"{facts} facts in {commits[0]} commits")


# -- group commit ----------------------------------------------------------------------------------
async def test_facts_arriving_within_the_window_share_one_commit(db: Database) -> None:
    attempt_id = an_attempt_id(db.sessions)
    writer = FactWriter(db.engine, window=0.5).start()
    with counting_commits(db.engine) as commits:
        for seq in range(1, 101):
            writer.write(step_fact(attempt_id, seq), f"step {seq}")
        await writer.aflush()
    assert len(steps_of(db.sessions, attempt_id)) == 100
    # 100 facts queued at once: the first group takes all of them (a flush ends the window)
    assert commits[0] <= 2 and writer.stats.largest_group == 100
    writer.close()


async def test_a_group_is_at_most_max_group_facts(db: Database) -> None:
    attempt_id = an_attempt_id(db.sessions)
    writer = FactWriter(db.engine, window=0.5, max_group=10).start()
    with counting_commits(db.engine) as commits:
        for seq in range(1, 101):
            writer.write(step_fact(attempt_id, seq), f"step {seq}")
        await writer.aflush()
    assert [seq for seq, _ in steps_of(db.sessions, attempt_id)] == list(range(1, 101))  # in order
    assert writer.stats.largest_group == 10 and commits[0] >= 10
    writer.close()


# -- durable while the call runs -------------------------------------------------------------------
async def test_a_fact_is_visible_to_another_connection_before_the_call_ends(any_db: Database) -> None:
    call_id = new_attempts(any_db.sessions, 1)[0]
    writer = FactWriter(any_db.engine).start()
    recorder = CallRecorder(any_db.sessions, FixedClock(NOW), writer=writer)
    info = await recorder.load(call_id)
    assert info is not None
    await recorder.answered(info, None)
    await recorder.step(info, "greet")
    await recorder.identity(info, True)
    # nobody flushes and the call has not finished: the writer commits the group on its own;
    # read on another connection of the pool (the writer keeps its own checked out)
    other = any_db.engine
    try:
        for _ in range(500):  # up to 10 s: a wait on the outcome, not a timing assertion
            with other.connect() as conn:
                identity = conn.execute(select(Outcome.identity).where(Outcome.attempt_id == info.attempt_id)).scalar()
                steps = conn.execute(select(func.count()).select_from(CallStep)
                                     .where(CallStep.attempt_id == info.attempt_id)).scalar()
            if identity == "confirmed" and steps == 1:
                break
            await asyncio.sleep(0.02)
        assert (identity, steps) == ("confirmed", 1)
        with other.connect() as conn:
            state = conn.execute(select(CallAttempt.state).where(CallAttempt.id == info.attempt_id)).scalar()
            assert state == "answered"
            # the call is still running: no final outcome yet
            assert conn.execute(select(func.count()).select_from(OutboxEvent)).scalar() == 0
    finally:
        writer.close()


# -- failures --------------------------------------------------------------------------------------
async def test_a_failing_fact_is_logged_and_the_rest_of_its_group_is_stored(
        any_db: Database, caplog: pytest.LogCaptureFixture) -> None:
    attempt_id = an_attempt_id(any_db.sessions)
    writer = FactWriter(any_db.engine, window=0.5).start()
    with caplog.at_level(logging.WARNING, logger="ivr.call.writer"):
        for seq in range(1, 6):
            writer.write(step_fact(attempt_id, seq), f"step {seq}")
        writer.write(step_fact(999_999, 1), "step of an attempt that does not exist")  # foreign key violation
        for seq in range(6, 11):
            writer.write(step_fact(attempt_id, seq), f"step {seq}")
        bad = writer.submit(step_fact(999_998, 1), "a fact someone waits for")
        good = writer.submit(lambda conn: conn.execute(select(func.count()).select_from(CallStep)).scalar(), "count")
        # the futures resolve: nobody waiting on the writer hangs
        assert await asyncio.wait_for(asyncio.wrap_future(good), 30) == 10
        with pytest.raises(Exception, match="(?i)foreign key"):
            await asyncio.wait_for(asyncio.wrap_future(bad), 30)
    assert [seq for seq, _ in steps_of(any_db.sessions, attempt_id)] == list(range(1, 11))
    assert writer.stats.failed == 2 and writer.stats.group_failures == 1
    lost = [r.getMessage() for r in caplog.records if "could not be stored" in r.getMessage()]
    assert len(lost) == 2 and "step of an attempt that does not exist" in lost[0]
    # and the writer goes on
    writer.write(step_fact(attempt_id, 11), "step 11")
    await writer.aflush()
    assert len(steps_of(any_db.sessions, attempt_id)) == 11
    writer.close()


async def test_a_group_that_fails_once_is_stored_when_applied_again(db: Database) -> None:
    """A database error on the whole group (a lock, a dropped connection): applied again one fact
    per transaction on a fresh connection, nothing is lost."""
    attempt_id = an_attempt_id(db.sessions)
    writer = FactWriter(db.engine, window=0.5).start()
    failures = [1]

    def flaky(conn: Connection) -> None:
        if failures[0]:
            failures[0] -= 1
            raise OperationalError("INSERT ...", {}, Exception("database is locked"))
        step_fact(attempt_id, 4, "flaky")(conn)

    for seq in range(1, 4):
        writer.write(step_fact(attempt_id, seq), f"step {seq}")
    writer.write(flaky, "flaky")
    await writer.aflush()
    assert [seq for seq, _ in steps_of(db.sessions, attempt_id)] == [1, 2, 3, 4]
    assert writer.stats.group_failures == 1 and writer.stats.failed == 0
    writer.close()


async def test_a_failed_final_write_neither_hangs_nor_breaks_the_call(
        db: Database, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from ivr.outbox import facts as outbox

    call_id = new_attempts(db.sessions, 1)[0]
    writer = FactWriter(db.engine).start()
    recorder = CallRecorder(db.sessions, FixedClock(NOW), writer=writer)
    info = await recorder.load(call_id)
    assert info is not None
    await recorder.answered(info, None)
    await recorder.step(info, "greet")

    def broken(*_a: object, **_k: object) -> bool:
        raise OperationalError("INSERT INTO outbox_events ...", {}, Exception("disk I/O error"))

    monkeypatch.setattr(outbox, "call_outcome", broken)
    with caplog.at_level(logging.ERROR, logger="ivr.call.writer"):
        await asyncio.wait_for(recorder.finish(info, "hangup"), 30)  # returns, does not raise
    assert any("finish (attempt" in r.getMessage() for r in caplog.records)
    # what the call established before is stored
    with db.sessions() as s:
        assert s.get(CallAttempt, info.attempt_id).state == "answered"
        assert len(steps_of(db.sessions, info.attempt_id)) == 1
    writer.close()


async def test_a_call_refused_is_not_a_writer_failure(db: Database) -> None:
    call_id = new_attempts(db.sessions, 1)[0]
    with db.sessions.begin() as s:
        s.scalar(select(CallAttempt).where(CallAttempt.action_id == call_id)).state = "done"
    from ivr.call.recorder import CallRefused

    recorder = CallRecorder(db.sessions, FixedClock(NOW))
    with pytest.raises(CallRefused, match="already done"):
        await recorder.load(call_id)
    assert await recorder.load("no-such-call") is None
    assert recorder.writer.stats.failed == 0 and recorder.writer.stats.group_failures == 0
    recorder.close()


# -- shutdown --------------------------------------------------------------------------------------
def test_close_commits_what_is_queued_then_refuses_new_facts(db: Database) -> None:
    attempt_id = an_attempt_id(db.sessions)
    # a window far longer than the test: only close() can have committed these
    writer = FactWriter(db.engine, window=60).start()
    for seq in range(1, 21):
        writer.write(step_fact(attempt_id, seq), f"step {seq}")
    assert writer.close(timeout=30)
    assert not writer.running
    assert len(steps_of(db.sessions, attempt_id)) == 20
    with pytest.raises(WriterClosed):
        writer.write(step_fact(attempt_id, 21), "late")
    late = writer.submit(step_fact(attempt_id, 22), "late, waited for")
    with pytest.raises(WriterClosed):
        late.result(1)
    assert writer.close()  # again: nothing to do


def test_agi_server_shutdown_closes_the_routes_writer(db: Database) -> None:
    """`ivr agi-server` builds the routes (and so the writer) at start and closes them after the
    server stopped (ivr.commands.agi_server.run -> close_routes)."""
    settings = load_settings(None, environ={})
    routes = build_routes(settings, db)
    recorder = routes[ROUTE_DEBT_CALL].recorder  # type: ignore[attr-defined]
    attempt_id = an_attempt_id(db.sessions)
    recorder.writer.write(step_fact(attempt_id, 1), "step 1")
    close_routes(routes)
    assert not recorder.writer.running
    assert len(steps_of(db.sessions, attempt_id)) == 1


def test_agi_server_routes_store_the_facts_from_a_writer_process(db: Database) -> None:
    """`ivr agi-server` asks for `facts_writer="process"` (ivr.commands.agi_server.run_one): the
    facts are stored by a process of their own, which close_routes flushes and stops."""
    from ivr.call.writer_process import ProcessFactWriter

    settings = load_settings(None, environ={})
    routes = build_routes(settings, db, facts_writer="process")
    recorder = routes[ROUTE_DEBT_CALL].recorder  # type: ignore[attr-defined]
    assert isinstance(recorder.writer, ProcessFactWriter)
    attempt_id = an_attempt_id(db.sessions)
    # what crosses to the process is pickled: a module-level fact, as the call script sends
    recorder.writer.write(partial(facts.answered, attempt_id=attempt_id, case_id=None, now=NOW, amd="HUMAN"),
                          "answered")
    close_routes(routes)
    assert not recorder.writer.running
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Outcome).where(Outcome.attempt_id == attempt_id)) == 1


def test_route_options_reach_only_a_builder_that_takes_them(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    import ivr.agi.routing as routing

    seen: list[dict[str, Any]] = []

    def new_builder(settings: Any, database: Any, *, facts_writer: str = "thread") -> dict[str, Any]:
        seen.append({"facts_writer": facts_writer})
        return {}

    def old_builder(settings: Any, database: Any) -> dict[str, Any]:  # a call script without the option
        seen.append({})
        return {}

    settings = load_settings(None, environ={"IVR_DATABASE_URL": str(db.engine.url)})
    for builder in (new_builder, old_builder):
        monkeypatch.setattr(routing, "find_route_builder", lambda b=builder: b)
        assert "ping" in routing.resolve_routes(settings, migrate=False, facts_writer="process")
    assert seen == [{"facts_writer": "process"}, {}]


def test_a_shared_writer_is_left_to_its_owner(db: Database) -> None:
    writer = FactWriter(db.engine).start()
    recorder = CallRecorder(db.sessions, FixedClock(NOW), writer=writer)
    recorder.close()
    assert writer.running
    writer.close()
    assert not writer.running


async def test_ivr_run_wiring_shares_one_writer_and_stop_commits_it(db: Database, tmp_path: Path) -> None:
    """`ivr run` (ivr.runtime): one writer built at start and handed to the recorder; stopping the
    services commits what the calls queued and stops it."""
    import dataclasses

    from ivr.runtime import start_services, stop_services

    settings = dataclasses.replace(load_settings(None, environ={}), database_url=str(db.engine.url),
                                   agi_host="127.0.0.1", agi_port=0, audio_cache_dir=tmp_path)
    services = await start_services(settings, db, FixedClock(NOW), servers=(), with_dialer=False, with_web=False)
    writer = services.writer
    assert writer is not None and writer.running and services.recorder.writer is writer
    attempt_id = an_attempt_id(db.sessions)
    writer.write(step_fact(attempt_id, 1), "step 1")
    await stop_services(services, grace=1)
    assert not writer.running
    assert len(steps_of(db.sessions, attempt_id)) == 1


async def test_the_call_never_waits_for_a_slow_database(db: Database) -> None:
    """While the writer is stuck in a write (a lock, a slow disk), the script's facts return at
    once and the event loop keeps running; they are stored once the database answers."""
    import threading

    call_id, next_call_id = new_attempts(db.sessions, 2)
    writer = FactWriter(db.engine).start()
    recorder = CallRecorder(db.sessions, FixedClock(NOW), writer=writer)
    info = await recorder.load(call_id)
    assert info is not None
    stuck, release = threading.Event(), threading.Event()

    def slow(_conn: Connection) -> None:
        stuck.set()
        release.wait(30)

    writer.write(slow, "a write stuck in the database")
    assert await asyncio.to_thread(stuck.wait, 30)
    # the writer thread is blocked: none of these may wait for it
    async def script() -> None:
        await recorder.answered(info, "HUMAN")
        for name in ("greet", "identity", "debt_message", "menu"):
            await recorder.step(info, name)
            await asyncio.sleep(0)  # the loop serves other calls in between
        await recorder.identity(info, True)
        await recorder.message_delivered(info)
        await recorder.promise(info, dt.date(2026, 3, 15))

    await asyncio.wait_for(script(), 10)
    # a call starting now reads its data without waiting behind the writer's queue
    started = await asyncio.wait_for(recorder.load(next_call_id), 10)
    assert started is not None and started.attempt_id != info.attempt_id
    assert steps_of(db.sessions, info.attempt_id) == []  # not stored yet: the writer is still stuck
    release.set()
    await asyncio.wait_for(recorder.finish(info, "hangup"), 30)
    assert [s for _, s in steps_of(db.sessions, info.attempt_id)] == ["greet", "identity", "debt_message", "menu"]
    with db.sessions() as s:
        assert s.scalar(select(Outcome.kind).where(Outcome.attempt_id == info.attempt_id)) == "promise"
    writer.close()


async def test_a_database_that_is_down_does_not_flood_the_log(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    from ivr.call import writer as writer_module

    writer = FactWriter(db.engine, window=0.5).start()

    def down(_conn: Connection) -> None:
        raise OperationalError("INSERT ...", {}, Exception("connection refused"))

    with caplog.at_level(logging.ERROR, logger="ivr.call.writer"):
        for n in range(200):
            writer.write(down, f"fact {n}")
        await writer.aflush()
        writer.close()
    assert writer.stats.failed == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "ivr.call.writer"]
    one_by_one = [m for m in lines if "could not be stored:" in m]
    assert len(one_by_one) == writer_module.LOST_LINES
    # the rest is counted, and said at the latest when the writer closes
    assert any(f"{200 - writer_module.LOST_LINES} more fact(s) could not be stored" in m for m in lines)


def test_abandon_drops_what_is_queued_like_a_killed_process(db: Database) -> None:
    attempt_id = an_attempt_id(db.sessions)
    writer = FactWriter(db.engine, window=60).start()
    for seq in range(1, 6):  # queued in a 60 s window: only abandon() can end it
        writer.write(step_fact(attempt_id, seq), f"step {seq}")
    writer.abandon()
    assert not writer.running
    assert steps_of(db.sessions, attempt_id) == []
    with pytest.raises(WriterClosed):
        writer.submit(step_fact(attempt_id, 6), "after").result(5)
