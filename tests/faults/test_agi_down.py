"""The FastAGI server goes down while calls are answered: Asterisk sets AGISTATUS=FAILURE and hangs
up (ami-agi-server-down.txt). Those calls are `robot_failed` (not a contact, retried soon); the
dialer pauses with an alarm (Dialer.health) and resumes by itself when the server is back."""

from __future__ import annotations

from pathlib import Path

from ivr.agi.server import FastAGIServer
from ivr.call.routes import build_routes
from ivr.clock import FastClock
from ivr.db.models import AttemptResult
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


async def test_agi_outage_pauses_dialling_and_failed_calls_are_retried(db: Database, tmp_path: Path) -> None:
    numbers = populate(db, 10)
    sim = new_sim(numbers, LINES)
    await sim.start()
    clock = FastClock(START, SPEED)
    settings = make_settings(tmp_path, str(db.engine.url), "r1")
    robot = await start_robot(settings, db, sim, clock, LINES)
    services = robot.services
    agi = services.agi
    assert agi is not None
    port = agi.port
    replacement: FastAGIServer | None = None
    try:
        async def answered() -> bool:
            return any(c.answered_at is not None for c in sim.calls)

        await wait_for("a call answered", answered)
        await agi.stop(grace=0)  # the robot is down; calls already answered lose their script

        async def paused() -> bool:
            return not robot.dialer.health.ok

        await wait_for("dialer paused", paused)
        health = robot.dialer.health
        assert "FastAGI" in health.reason or "AGISTATUS" in health.reason

        async def still_paused_after_a_while() -> bool:
            # several dial ticks of the clock pass
            return (clock.now() - health.since).total_seconds() > 30

        await wait_for("30 clock seconds paused", still_paused_after_a_while)
        assert not robot.dialer.health.ok
        paused_from, paused_until = health.since.replace(tzinfo=None), clock.now().replace(tzinfo=None)

        routes = build_routes(services.settings, db, clock=clock, audio=services.audio, recorder=services.recorder)
        replacement = FastAGIServer(routes, "127.0.0.1", port, services.settings.agi_allow)
        await replacement.start()

        async def resumed() -> bool:
            return robot.dialer.health.ok

        await wait_for("dialer resumed", resumed)
        await wait_settled(db, sim, numbers)
    finally:
        await robot.shutdown()
        if replacement is not None:
            await replacement.stop(grace=2)
        await sim.stop()
    rows = check_invariants(db, [sim], LINES)
    # nothing claimed while paused was sent: an Originate sent during the pause was claimed (and
    # checked) before it began
    for a in rows:
        if a.originated_at is not None and paused_from < a.originated_at < paused_until:
            assert a.created_at <= paused_from, a.action_id
    assert any(a.originated_at is not None and a.originated_at > paused_until for a in rows)
    failed = [a for a in rows if a.result == AttemptResult.ROBOT_FAILED.value]
    ok = [a for a in attempts(db) if a.result == AttemptResult.ANSWERED.value]
    assert ok, "calls were served again after the outage"
    for attempt in failed:  # retried on the same number and served
        assert any(b.phone == attempt.phone and b.id > attempt.id for b in rows)
