"""The FastAGI server driven by the simulated Asterisk over real TCP: Asterisk places the call
(AMI Originate), connects to our server exactly as it would in production, and we check what the
handler saw and what Asterisk recorded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from ivr.agi.channel import AGIChannel, AGICommandError, AGIHangup
from ivr.agi.server import FastAGIServer
from ivr.ami.client import AMIClient
from ivr.ami.types import CallEnded, OriginateRequest
from ivr.dialplan_vars import AGI_URL, CALL_ID, CONTEXT_ROBOT, SCRIPT
from ivr.sim import Callee, KeyPress, SimulatedAsterisk


async def place_call(handler: Callable[[AGIChannel], Awaitable[None]], callee: Callee,
                     *, allow: tuple[str, ...] = ("127.0.0.1",)):  # type: ignore[no-untyped-def]
    server = FastAGIServer({"t": handler}, "127.0.0.1", 0, allow)
    await server.start()
    sim = SimulatedAsterisk(lambda _n: callee, speed=20)
    await sim.start()
    ami = AMIClient("127.0.0.1", sim.ami_port, "ivr", "secret")
    ended: asyncio.Future[CallEnded] = asyncio.get_running_loop().create_future()
    ami.on_call_ended = lambda e: ended.done() or ended.set_result(e)
    await ami.start()
    try:
        assert await ami.wait_connected(30)
        call_id = f"t-{uuid.uuid4().hex[:8]}"
        await ami.originate(OriginateRequest(
            action_id=call_id, channel="PJSIP/79161234567@debt-trunk", context=CONTEXT_ROBOT, exten="s",
            variables={CALL_ID: call_id, AGI_URL: f"agi://127.0.0.1:{server.port}", SCRIPT: "t"}))
        event = await asyncio.wait_for(ended, 60)
        # the handler's last steps run after the hang-up; the simulated call ends only once the
        # handler is done and our side of the FastAGI session closed
        assert await sim.wait_idle(60)
        record = next(c for c in sim.calls if c.call_id == call_id)
        return event, record
    finally:
        await ami.stop()
        await sim.stop()
        await server.stop(grace=2)


async def test_normal_call():
    seen: dict[str, object] = {}

    async def handler(ch: AGIChannel) -> None:
        seen["args"] = ch.args
        await ch.answer()
        seen["digits"] = (await ch.get_data("beep", 3000, 4)).digits
        await ch.set_variable("IVR_RESULT", 'paid "today"')
        seen["var"] = await ch.get_variable("IVR_RESULT")
        await ch.hangup()

    event, record = await place_call(handler, Callee(answer_after=0.5, keys=[KeyPress("2511")]))
    assert seen["digits"] == "2511"
    assert seen["var"] == 'paid "today"'
    assert seen["args"] == [record.call_id]
    # the script hung up itself: AGI() returns with AGISTATUS=HANGUP, as in the recordings
    assert record.agi_status == "HANGUP" and record.hangup_by == "script"
    assert event.result == "answered"


async def test_hangup_in_the_middle_of_reading_digits():
    seen: dict[str, object] = {}

    async def handler(ch: AGIChannel) -> None:
        try:
            await ch.get_data("beep", 10000, 4)
        except AGIHangup:
            seen["hangup"] = True
            seen["hung_up_flag"] = ch.hung_up
            sent = ch.commands_sent
            try:
                await ch.stream_file("beep")
            except AGIHangup:
                seen["no_more_commands"] = ch.commands_sent == sent

    callee = Callee(answer_after=0.5, keys=[KeyPress("12", delay=0.3)], hangup_at_input=1)
    event, record = await place_call(handler, callee)
    assert seen == {"hangup": True, "hung_up_flag": True, "no_more_commands": True}
    assert record.hangup_by == "callee"
    assert not any(c.startswith("STREAM FILE") for c in record.commands)


async def test_invalid_command_is_reported_and_the_call_goes_on():
    seen: dict[str, object] = {}

    async def handler(ch: AGIChannel) -> None:
        try:
            await ch.run_command("FROBNICATE NOW")
        except AGICommandError as exc:
            seen["code"] = exc.code
        try:
            await ch.run_command("SET VARIABLE X it's bad")
        except AGICommandError as exc:
            seen["usage"] = exc.code
        await ch.verbose("still alive")
        seen["after"] = await ch.get_variable("X")
        await ch.hangup()

    event, record = await place_call(handler, Callee(answer_after=0.5))
    assert seen == {"code": 510, "usage": 520, "after": None}
    assert record.commands[:2] == ["FROBNICATE NOW", "SET VARIABLE X it's bad"]
    assert record.commands[-1] == "HANGUP"


async def test_refused_connection_from_host_not_on_allow_list():
    called = False

    async def handler(ch: AGIChannel) -> None:
        nonlocal called
        called = True

    event, record = await place_call(handler, Callee(answer_after=0.5, hangup_after=5), allow=("127.0.0.2",))
    assert called is False
    assert record.commands == []  # the connection was closed before a single command
    assert record.answered_at is not None
