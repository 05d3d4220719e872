"""`core restart now` with calls up (ami-restart.txt): AMI gets `Shutdown` (Restart: True) and
EOF, the calls vanish without a Hangup event, the client reconnects and sees FullyBooted again.
The calls that were up are `interrupted` (not a contact, retried soon), nothing stays in flight,
and dialling goes on."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ivr.clock import FastClock
from ivr.db.models import AttemptResult
from ivr.wiring import Database
from tests.faults.harness import (
    SPEED,
    START,
    check_invariants,
    make_settings,
    new_sim,
    populate,
    start_robot,
    wait_for,
    wait_settled,
)

LINES = 5


async def test_calls_cut_by_a_restart_are_interrupted_and_retried(db: Database, tmp_path: Path) -> None:
    numbers = populate(db, 10)
    sim = new_sim(numbers, LINES)
    await sim.start()
    clock = FastClock(START, SPEED)
    robot = await start_robot(make_settings(tmp_path, str(db.engine.url), "r1"), db, sim, clock, LINES)
    try:
        async def calls_up() -> bool:
            return sum(1 for c in sim.calls if c.answered_at is not None and c.ended_at is None) >= 3

        await wait_for("three calls up", calls_up)
        cut = {c.call_id for c in sim.calls if c.answered_at is not None and c.ended_at is None}
        await sim.restart()  # core restart now
        ami = robot.services.ami["sim"]
        await wait_for("AMI back after the restart", lambda: _true(ami.connected and ami.restarts == 1))
        await wait_settled(db, sim, numbers)
    finally:
        await robot.shutdown()
        await sim.stop()
    rows = check_invariants(db, [sim], LINES)
    results = {a.action_id: a.result for a in rows}
    assert {results[c] for c in cut if c} == {AttemptResult.INTERRUPTED.value}
    # retried on the same number, and then served
    for call_id in cut:
        phone = next(a.phone for a in rows if a.action_id == call_id)
        later = [a for a in rows if a.phone == phone and a.id > next(b.id for b in rows if b.action_id == call_id)]
        assert later, f"{call_id} was not retried"


async def _true(value: bool) -> bool:
    await asyncio.sleep(0)
    return value
