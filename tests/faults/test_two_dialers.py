"""Two dialers (two `ivr run` processes' worth: FastAGI, AMI client, dialer loop each) on one
PostgreSQL, sharing one Asterisk with a 10-line trunk that does not refuse extra calls itself:
the shared line leases keep the number of calls up at or below 10 at every moment.

The calls ring until the test hangs them up, so the limit is reached in every wave whatever the
machine's speed, and both dialers keep wanting more lines than are free."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.clock import FastClock
from ivr.dialer.selector import IN_FLIGHT
from ivr.sim import Callee, SimulatedAsterisk
from ivr.sim.asterisk import REFUSALS
from ivr.wiring import Database
from tests.faults.harness import (
    SPEED,
    START,
    attempts,
    check_invariants,
    make_settings,
    new_sim,
    populate,
    served_everyone,
    start_robot,
    wait_for,
)

LINES = 10

pytestmark = pytest.mark.postgres


async def hang_up_wave(db: Database, sim: SimulatedAsterisk) -> None:
    """Hang up every call up now; return once they are gone and their ends are recorded."""
    up = {c.action_id for c in sim.calls if c.ended_at is None and c.outcome not in REFUSALS}
    sim.hangup_all()

    async def done() -> bool:
        gone = all(c.ended_at is not None for c in sim.calls if c.action_id in up)
        return gone and not any(a.action_id in up and a.state in IN_FLIGHT for a in attempts(db))

    await wait_for("the hung-up calls gone and recorded", done)


async def test_two_dialers_never_exceed_a_shared_servers_lines(pg_db: Database, tmp_path: Path) -> None:
    db = pg_db
    numbers = populate(db, 2 * LINES)
    book = {n.lstrip("+"): Callee(outcome="no_answer") for n in numbers}
    sim = new_sim(numbers, None, book)  # Asterisk itself would accept more: only our leases hold the limit
    await sim.start()
    clock = FastClock(START, SPEED)
    ring_long = {"originate_timeout_ms": 3_600_000}  # ring until the test hangs up
    one = await start_robot(make_settings(tmp_path / "a", "postgresql://", "dialer-a", **ring_long), db, sim, clock, LINES)
    two = await start_robot(make_settings(tmp_path / "b", "postgresql://", "dialer-b", **ring_long), db, sim, clock, LINES)
    waves = 0
    try:
        while not (sim.active_calls == 0 and served_everyone(db, numbers)):
            async def full_or_last() -> bool:
                everyone_called = len(sim.originates_by_number()) == len(numbers)
                return sim.active_calls >= LINES or (everyone_called and sim.active_calls > 0)

            await wait_for("the lines full (or the last calls up)", full_or_last)
            if sim.active_calls >= LINES:
                waves += 1
            await hang_up_wave(db, sim)
    finally:
        await one.shutdown()
        await two.shutdown()
        await sim.stop()
    check_invariants(db, [sim], LINES)
    assert waves >= 2 and sim.max_live == LINES  # the limit was reached (the test could fail), never passed
    assert {a.dialer_id for a in attempts(db)} == {"dialer-a", "dialer-b"}  # both dialled
