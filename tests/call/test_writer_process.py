"""The call facts writer as a process of its own (ivr/call/writer_process.py): the calls'
process only queues facts; a child process applies and commits them, answers the ones someone
waits for, survives nothing it should not, and commits what it received when the calls' process
is killed."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine

from ivr.call import facts
from ivr.call.writer import WriterClosed
from ivr.call.writer_process import FactFailed, ProcessFactWriter, WriterProcessDied
from ivr.db.base import make_engine
from ivr.db.models import CallAttempt, CallStep, Outcome
from ivr.wiring import Database
from tests.call.test_writer import new_attempts

NOW = dt.datetime(2026, 3, 10, 9, 30)
REPO = Path(__file__).resolve().parents[2]


def attempt_ids(db: Database, n: int) -> list[int]:
    call_ids = new_attempts(db.sessions, n)
    with db.sessions() as s:
        return [s.scalars(select(CallAttempt.id).where(CallAttempt.action_id == c)).one() for c in call_ids]


def step_row(attempt_id: int, seq: int) -> dict[str, object]:
    return {"attempt_id": attempt_id, "seq": seq, "step": "greet", "keys": "", "result": "ok", "detail": "",
            "created_at": NOW}


def steps(db: Database) -> int:
    with db.sessions() as s:
        return s.scalar(select(func.count()).select_from(CallStep)) or 0


def answer_one(conn: Connection, *, value: int) -> int:
    """A fact with a result (module level: it pickles)."""
    return int(conn.execute(text("SELECT :v + 1"), {"v": value}).scalar_one())


def broken(conn: Connection) -> None:
    conn.execute(text("SELECT * FROM no_such_table"))


def same_database(db: Database) -> Engine:
    """An engine whose URL alone reaches `db` (a writer process gets only the URL): on
    PostgreSQL the test's scratch schema goes into the URL's options."""
    if db.engine.url.get_backend_name() != "postgresql":
        return db.engine
    with db.engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    return make_engine(db.engine.url.update_query_dict({"options": f"-csearch_path={schema}"})
                       .render_as_string(hide_password=False))


def wait_until(check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture
def writer(any_db: Database) -> Iterator[ProcessFactWriter]:
    w = ProcessFactWriter(same_database(any_db)).start()
    assert w.wait_ready(60), "the writer process did not start"
    yield w
    w.close()


def test_facts_rows_and_results_are_committed_by_the_child(any_db: Database, writer: ProcessFactWriter) -> None:
    ids = attempt_ids(any_db, 3)
    for attempt_id in ids:
        writer.write(partial(facts.answered, attempt_id=attempt_id, case_id=None, now=NOW, amd="HUMAN"), "answered")
        writer.write_row(facts.INSERT_STEP, step_row(attempt_id, 1), "step")
        writer.write(partial(facts.set_outcome, attempt_id=attempt_id, case_id=None,
                             values={"identity": "confirmed"}), "identity")
    assert writer.submit(partial(answer_one, value=41), "answer").result(60) == 42
    writer.flush(60)
    assert writer.pid is not None and writer.pid != os.getpid()
    with any_db.sessions() as s:
        outcomes = s.scalars(select(Outcome).where(Outcome.attempt_id.in_(ids))).all()
        assert sorted(o.attempt_id for o in outcomes) == sorted(ids)
        assert {o.identity for o in outcomes} == {"confirmed"}  # applied after `answered` created the row
        assert {a.amd_status for a in s.scalars(select(CallAttempt).where(CallAttempt.id.in_(ids)))} == {"HUMAN"}
    assert steps(any_db) == 3
    assert writer.stats.sent == 10


async def test_call_awaits_without_blocking_the_loop(writer: ProcessFactWriter) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        results = await asyncio.gather(*(writer.call(partial(answer_one, value=i)) for i in range(50)))
    finally:
        task.cancel()
    assert results == [i + 1 for i in range(50)]
    assert ticks > 0


def test_a_failing_fact_fails_alone_with_the_database_error(any_db: Database, writer: ProcessFactWriter) -> None:
    (attempt_id,) = attempt_ids(any_db, 1)
    writer.write_row(facts.INSERT_STEP, step_row(attempt_id, 1), "step")
    failed = writer.submit(broken, "broken")
    writer.write_row(facts.INSERT_STEP, step_row(attempt_id, 2), "step")
    with pytest.raises(FactFailed, match="no_such_table"):
        failed.result(60)
    writer.flush(60)
    assert steps(any_db) == 2


def test_a_fact_that_does_not_pickle_is_refused_and_the_others_are_stored(
        any_db: Database, writer: ProcessFactWriter, caplog: pytest.LogCaptureFixture) -> None:
    (attempt_id,) = attempt_ids(any_db, 1)
    local = 1

    def closure(conn: Connection) -> int:
        return local

    writer.write_row(facts.INSERT_STEP, step_row(attempt_id, 1), "step")
    refused = writer.submit(closure, "closure")
    writer.write_row(facts.INSERT_STEP, step_row(attempt_id, 2), "step")
    with pytest.raises(Exception, match="pickle"):
        refused.result(60)
    writer.flush(60)
    assert steps(any_db) == 2
    assert writer.stats.lost == 1
    assert "fact closure cannot go to the writer process" in caplog.text


def test_a_killed_writer_process_fails_the_waiting_and_a_new_one_takes_the_next_facts(
        any_db: Database, writer: ProcessFactWriter) -> None:
    (attempt_id,) = attempt_ids(any_db, 1)
    first = writer.pid
    assert first is not None
    waiting = writer.flush_future()
    waiting.result(60)
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: writer.pid != first and writer.running)
    assert writer.wait_ready(60)
    assert writer.stats.restarts == 1
    writer.write_row(facts.INSERT_STEP, step_row(attempt_id, 1), "step")
    assert writer.submit(partial(answer_one, value=1)).result(60) == 2
    writer.flush(60)
    assert steps(any_db) == 1


def test_waiting_futures_fail_when_the_writer_process_dies(any_db: Database) -> None:
    writer = ProcessFactWriter(same_database(any_db)).start()
    try:
        assert writer.wait_ready(60)
        pid = writer.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # it cannot answer: the fact stays waiting until it dies
        pending = writer.submit(partial(answer_one, value=1))
        time.sleep(0.2)
        assert not pending.done()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WriterProcessDied):
            pending.result(60)
    finally:
        writer.close()


def test_close_commits_everything_and_stops_the_child(any_db: Database) -> None:
    ids = attempt_ids(any_db, 1)
    writer = ProcessFactWriter(same_database(any_db)).start()
    for seq in range(1, 201):
        writer.write_row(facts.INSERT_STEP, step_row(ids[0], seq), "step")
    pid = writer.pid
    assert writer.close(60)
    assert steps(any_db) == 200
    assert not writer.running
    assert pid is not None and not _alive(pid)
    with pytest.raises(WriterClosed):
        writer.write_row(facts.INSERT_STEP, step_row(ids[0], 201), "step")
    with pytest.raises(WriterClosed):
        writer.submit(partial(answer_one, value=1)).result(1)


def test_an_orderly_close_is_never_reported_as_a_death(any_db: Database, caplog: pytest.LogCaptureFixture) -> None:
    """close() and the receiver thread both wait for the child when it exits: the one that lost
    the race to waitpid read no exit code and logged "writer process ended (exit code None)" at
    every other shutdown of a bench run. A few cycles, since the race is one of timing."""
    caplog.set_level(logging.ERROR, logger="ivr.call.writer_process")
    (attempt_id,) = attempt_ids(any_db, 1)
    for cycle in range(3):
        writer = ProcessFactWriter(same_database(any_db)).start()
        assert writer.wait_ready(60)
        writer.write_row(facts.INSERT_STEP, step_row(attempt_id, cycle + 1), "step")
        assert writer.close(60), f"cycle {cycle}: close() did not see a clean exit"
        assert writer.stats.restarts == 0
    assert steps(any_db) == 3
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(ValueError, match="in-memory"):
        ProcessFactWriter(make_engine("sqlite://"))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


PARENT = """
import sys, time
from functools import partial
from ivr.call import facts
from ivr.call.writer_process import ProcessFactWriter
from ivr.db.base import make_engine
import datetime as dt

url, attempt_id, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
writer = ProcessFactWriter(make_engine(url)).start()
writer.wait_ready(60)
for seq in range(1, n + 1):
    writer.write_row(facts.INSERT_STEP, {"attempt_id": attempt_id, "seq": seq, "step": "greet", "keys": "",
                     "result": "ok", "detail": "", "created_at": dt.datetime(2026, 3, 10)}, "step")
while writer.stats.sent < n:
    time.sleep(0.01)
print(writer.pid, flush=True)
time.sleep(600)
"""


def test_facts_handed_over_survive_a_sigkill_of_the_calls_process(any_db: Database) -> None:
    """`ivr run` killed: what reached the pipe is still committed, and the writer then exits."""
    (attempt_id,) = attempt_ids(any_db, 1)
    n = 2000
    url = same_database(any_db).url.render_as_string(hide_password=False)
    proc = subprocess.Popen([sys.executable, "-c", PARENT, url, str(attempt_id), str(n)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        proc.kill()
        proc.wait(30)
        wait_until(lambda: not _alive(child))
    finally:
        if proc.poll() is None:
            proc.kill()
    assert steps(any_db) == n
