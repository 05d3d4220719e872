"""2,000 hostile connections (idle, half an environment block, newline floods) are open against
the real FastAGI server while the simulated Asterisk places a legitimate call through it: the call
completes, the flood is refused or held within its limits, and the log stays a few lines long."""

from __future__ import annotations

import asyncio
import logging
import resource
import sys
import uuid
from pathlib import Path

import pytest

from ivr.agi.channel import AGIChannel
from ivr.agi.server import AGILimits, FastAGIServer
from ivr.ami.client import AMIClient
from ivr.ami.types import CallEnded, OriginateRequest
from ivr.dialplan_vars import AGI_URL, CALL_ID, CONTEXT_ROBOT, SCRIPT
from ivr.sim import Callee, KeyPress, SimulatedAsterisk

HOSTILE = 2000
IDLE, HALF_ENV = 800, 700  # held open by the server until the environment deadline
NEWLINES = HOSTILE - IDLE - HALF_ENV  # refused at their first blank line



REPO = Path(__file__).resolve().parents[2]


def raise_open_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.fail(f"open-file hard limit {hard} is below the {needed} this test needs (ulimit -Hn)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def test_legit_call_is_served_while_2000_hostile_connections_are_open(caplog: pytest.LogCaptureFixture) -> None:
    raise_open_file_limit(HOSTILE + 512)  # the server's ends; the peers' ends live in flood_peer
    seen: dict[str, object] = {}
    served = asyncio.Event()

    async def handler(ch: AGIChannel) -> None:
        seen["args"] = ch.args
        await ch.answer()
        seen["digits"] = (await ch.get_data("beep", 3000, 4)).digits
        await ch.hangup()
        served.set()

    # the cap leaves room for the call; the environment deadline is long so the hostile
    # connections stay open for the whole call (the point is to serve despite them, not after)
    limits = AGILimits(max_connections=HOSTILE + 50, env_timeout=300)
    server = FastAGIServer({"t": handler}, "127.0.0.1", 0, ("127.0.0.1",), limits=limits)
    await server.start()
    sim = SimulatedAsterisk(lambda _n: Callee(answer_after=0.2, keys=[KeyPress("2511")]), speed=20)
    await sim.start()
    ami = AMIClient("127.0.0.1", sim.ami_port, "ivr", "secret")
    ended: asyncio.Future[CallEnded] = asyncio.get_running_loop().create_future()
    ami.on_call_ended = lambda e: ended.done() or ended.set_result(e)
    peers = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.agi.flood_peer", str(server.port), str(IDLE), str(HALF_ENV), str(NEWLINES),
        cwd=REPO, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    try:
        with caplog.at_level(logging.WARNING):
            assert peers.stdout is not None
            ready = await asyncio.wait_for(peers.stdout.readline(), 120)
            assert ready == f"ready {NEWLINES}\n".encode(), ready  # every newline flood was closed
            held = IDLE + HALF_ENV
            async with asyncio.timeout(60):  # accepted by the kernel; wait until the server saw them all
                while len(server.connections) < held:
                    await asyncio.sleep(0.05)
            assert len(server.connections) == held and server.active_calls == 0

            await ami.start()
            assert await ami.wait_connected(10)
            call_id = f"t-{uuid.uuid4().hex[:8]}"
            await ami.originate(OriginateRequest(
                action_id=call_id, channel="PJSIP/79161234567@debt-trunk", context=CONTEXT_ROBOT, exten="s",
                variables={CALL_ID: call_id, AGI_URL: f"agi://127.0.0.1:{server.port}", SCRIPT: "t"}))
            event = await asyncio.wait_for(ended, 60)
            await asyncio.wait_for(served.wait(), 30)
            assert len(server.connections) >= held  # the flood was still open during the call
        assert seen == {"args": [call_id], "digits": "2511"}
        assert event.result == "answered"
        record = next(c for c in sim.calls if c.call_id == call_id)
        assert record.hangup_by == "script" and record.commands[-1] == "HANGUP"
        # 2,000 bad connections: a handful of log lines, not one (or many) per connection
        flood_lines = [r for r in caplog.records if r.name.startswith("ivr.agi")]
        assert len(flood_lines) <= 10, [r.getMessage() for r in flood_lines]
    finally:
        if peers.stdin is not None:
            peers.stdin.close()
        try:
            await asyncio.wait_for(peers.wait(), 30)
        except TimeoutError:
            peers.kill()
            await peers.wait()
        await ami.stop()
        await sim.stop()
        await server.stop(grace=5)
