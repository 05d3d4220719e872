"""The AMI connection cut (no Shutdown, no Goodbye) while Originates are in flight: the calls go
on in Asterisk, their events during the gap are lost. After the reconnect reconciliation finds
the live calls again (their Hangup is tracked) and settles those that ended meanwhile; nothing
is originated twice and nothing stays in flight."""

from __future__ import annotations

from pathlib import Path

from ivr.clock import FastClock
from ivr.dialer.selector import IN_FLIGHT
from ivr.wiring import Database
from tests.faults.harness import (
    SPEED,
    START,
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


async def test_calls_in_flight_survive_an_ami_cut(db: Database, tmp_path: Path) -> None:
    numbers = populate(db, 10)
    sim = new_sim(numbers, LINES)
    await sim.start()
    clock = FastClock(START, SPEED)
    robot = await start_robot(make_settings(tmp_path, str(db.engine.url), "r1"), db, sim, clock, LINES)
    ami = robot.services.ami["sim"]
    try:
        async def flying() -> bool:
            return sum(1 for a in attempts(db) if a.state in IN_FLIGHT) >= LINES

        await wait_for("all lines in flight", flying)
        sessions_before = ami._sessions
        sim.cut_ami()

        async def reconnected() -> bool:
            return ami.connected and ami._sessions > sessions_before

        await wait_for("AMI reconnected", reconnected)
        await wait_settled(db, sim, numbers)
    finally:
        await robot.shutdown()
        await sim.stop()
    rows = check_invariants(db, [sim], LINES)
    assert ami.restarts == 0  # a cut is not a restart: no call was called interrupted for it
    assert not [a for a in rows if a.result == "interrupted"]
