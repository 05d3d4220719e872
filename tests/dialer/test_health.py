"""The FastAGI health gate: a probe of the URL Asterisk uses, and AGISTATUS of answered calls."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pytest

from ivr.clock import FixedClock
from ivr.dialer.health import AgiHealth, tcp_probe

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


async def test_the_probe_follows_a_real_listener() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = tcp_probe(f"agi://127.0.0.1:{port}")
    assert await probe() is None
    server.close()
    await server.wait_closed()
    problem = await probe()
    assert problem is not None and f"127.0.0.1:{port}" in problem
    assert await tcp_probe("hagi://robots.example.net")() is None  # Asterisk resolves SRV itself
    assert "agi://" in (await tcp_probe("http://x")() or "")


async def test_a_failing_probe_pauses_with_an_alarm_and_recovery_resumes(caplog: pytest.LogCaptureFixture) -> None:
    clock = FixedClock(START)
    answer: list[str | None] = ["FastAGI server 10.0.0.5:4573 does not answer"]

    async def probe() -> str | None:
        return answer[0]

    health = AgiHealth(probe, clock, probe_interval=5)
    with caplog.at_level(logging.WARNING, logger="ivr.dialer.health"):
        state = await health.check()
        assert not state.ok and "does not answer" in state.reason and state.since == START
        assert any("ALARM" in r.getMessage() for r in caplog.records)
        answer[0] = None
        clock.advance(dt.timedelta(seconds=1))
        state = await health.check()  # paused: probed again at once
        assert state.ok and state.reason == "" and state.since == START + dt.timedelta(seconds=1)
        assert any("resumes" in r.getMessage() for r in caplog.records)


async def test_agistatus_failures_pause_for_a_while_then_one_call_is_tried() -> None:
    clock = FixedClock(START)
    health = AgiHealth(None, clock, failure_threshold=3, failure_pause=60)
    health.record_call("FAILURE", script_ran=False)
    health.record_call("FAILURE", script_ran=False)
    assert health.ok
    health.record_call("FAILURE", script_ran=False)
    assert not health.ok and "AGISTATUS=FAILURE" in health.state.reason
    clock.advance(dt.timedelta(seconds=59))
    assert not (await health.check()).ok
    clock.advance(dt.timedelta(seconds=2))
    assert (await health.check()).ok  # half-open: one more call is tried
    health.record_call("FAILURE", script_ran=False)
    assert not health.ok  # and one more failure pauses again
    clock.advance(dt.timedelta(seconds=61))
    await health.check()
    health.record_call("SUCCESS", script_ran=True)
    health.record_call("FAILURE", script_ran=False)
    assert health.ok  # a served call reset the count
