"""`ivr run` killed (SIGKILL) with calls in flight, and a new one started: the dead process's
attempts are settled once its line leases lapse (it no longer renews them), its answered calls
are `interrupted` (the robot died with them), nobody stays locked, and the new process dials
everyone else. Dialer-level: the dead process is emulated in-process (its database handle is
cut so it writes nothing more, its AMI and FastAGI sockets are aborted, its loop cancelled)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import create_engine

from ivr.clock import FastClock
from ivr.db.base import make_session_factory
from ivr.dialer.selector import IN_FLIGHT
from ivr.wiring import Database
from tests.faults.harness import (
    SPEED,
    START,
    Robot,
    attempts,
    check_invariants,
    make_settings,
    new_sim,
    populate,
    start_robot,
    wait_for,
    wait_settled,
)

LINES = 5


async def kill(robot: Robot, db: Database, tmp_path: Path) -> None:
    """What SIGKILL leaves behind: nothing more is written, every socket just drops."""
    dead = create_engine(f"sqlite:///{tmp_path / 'gone' / 'nothing.sqlite3'}")  # cannot be opened
    db.sessions.configure(bind=dead)
    robot.task.cancel()
    services = robot.services
    if services.scheduler is not None:
        services.scheduler.shutdown(wait=False)
    for client in services.ami.values():
        # a killed process sends no Logoff: cancel its tasks and drop the socket
        for task in (client._supervisor, client._consumer):  # noqa: SLF001 - emulating SIGKILL
            if task is not None:
                task.cancel()
        if client._conn is not None:  # noqa: SLF001
            client._conn.abort()  # noqa: SLF001
    if services.writer is not None:
        services.writer.abandon()  # the call facts writer (its own connection) dies with the process
    if services.agi is not None:
        await services.agi.stop(grace=0)
    await asyncio.gather(robot.task, return_exceptions=True)


async def test_a_killed_dialer_is_replaced_and_nothing_stays_locked(db: Database, tmp_path: Path) -> None:
    numbers = populate(db, 10)
    sim = new_sim(numbers, LINES)
    await sim.start()
    clock = FastClock(START, SPEED)
    # the first process gets its own database handle, cut at the kill
    first_db = Database(db.engine, make_session_factory(db.engine))
    first = await start_robot(make_settings(tmp_path, str(db.engine.url), "run-1"), first_db, sim, clock, LINES)
    second = None
    try:
        async def lines_full() -> bool:
            return sum(1 for a in attempts(db) if a.state in IN_FLIGHT) >= LINES

        await wait_for("all lines in flight", lines_full)
        await kill(first, first_db, tmp_path)
        left_in_flight = {a.action_id for a in attempts(db) if a.state in IN_FLIGHT}
        assert left_in_flight  # the crash left calls in flight
        second = await start_robot(make_settings(tmp_path, str(db.engine.url), "run-2"), db, sim, clock, LINES)
        await wait_settled(db, sim, numbers)
    finally:
        if second is not None:
            await second.shutdown()
        await sim.stop()
    rows = check_invariants(db, [sim], LINES)
    by_id = {a.action_id: a for a in rows}
    for action_id in left_in_flight:  # settled with a definite result, answered ones as interrupted
        attempt = by_id[action_id]
        assert attempt.result is not None
        if attempt.answered_at is not None and attempt.result != "interrupted":
            raise AssertionError(f"{action_id}: answered when run-1 died, stored as {attempt.result}")
    assert any(a.dialer_id == "run-2" for a in rows)  # dialling resumed in the new process
