"""Two dialers (two `ivr run` processes' worth: FastAGI, AMI client, dialer loop each) on one
PostgreSQL, sharing one Asterisk with a 10-line trunk that does not refuse extra calls itself:
the shared line leases keep the number of calls up at or below 10 at every moment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ivr.clock import FastClock
from ivr.sim import Callee
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
    wait_settled,
)

LINES = 10

pytestmark = pytest.mark.postgres


async def test_two_dialers_never_exceed_a_shared_servers_lines(pg_db: Database, tmp_path: Path) -> None:
    db = pg_db
    numbers = populate(db, 24)
    # everyone answers and stays on for a while, so that both dialers want more than 10 lines
    book = {n.lstrip("+"): Callee(outcome="answer", answer_after=2.0, hangup_after=300.0) for n in numbers}
    sim = new_sim(numbers, None, book)  # Asterisk itself would accept more: only our leases hold the limit
    await sim.start()
    clock = FastClock(START, SPEED)
    url = os.environ.get("IVR_TEST_PG_URL", "")  # start_services uses `db`; the URL is for show
    one = await start_robot(make_settings(tmp_path / "a", url, "dialer-a"), db, sim, clock, LINES)
    two = await start_robot(make_settings(tmp_path / "b", url, "dialer-b"), db, sim, clock, LINES)
    try:
        await wait_settled(db, sim, numbers)
    finally:
        await one.shutdown()
        await two.shutdown()
        await sim.stop()
    check_invariants(db, [sim], LINES)
    assert sim.max_live == LINES  # the limit was reached (the test could have failed), never passed
    by_dialer = {a.dialer_id for a in attempts(db)}
    assert by_dialer == {"dialer-a", "dialer-b"}  # both dialled
