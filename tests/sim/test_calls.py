"""Call engine behaviour beyond the recordings: reactive keys, AMD, operator calls, channel naming,
speed, and a 1,000-call smoke run."""

from __future__ import annotations

import asyncio
import re
import time

from ivr import dialplan_vars as dv
from ivr.sim import Callee, KeyPress, agi_peer
from ivr.sim.channel import SimCall
from tests.sim.harness import harness
from tests.sim.wire import AgiSession, header, is_event

DEAD = "511 Command Not Permitted on a dead channel or intercept routine"


async def test_press_due_after_the_command_ended_moves_to_the_next_input() -> None:
    replies: list[str] = []

    async def script(s: AgiSession) -> None:
        replies.append(await s.cmd('STREAM FILE beep "12"'))  # 0.43 s, ends before the press
        replies.append(await s.cmd("GET DATA beep 3000 1"))
        replies.append(await s.cmd("WAIT FOR DIGIT 3000"))
        replies.append(await s.cmd("WAIT FOR DIGIT 500"))  # keys exhausted: nothing pressed

    callee = Callee(answer_after=0.0, keys=[KeyPress("1", delay=1.0), KeyPress("2", delay=0.5)])
    async with harness(callee, default=script) as h:
        await h.originate("k", call_id="c-k")
        assert await h.sim.wait_idle(20)
        record = h.sim.calls[0]
    assert replies == ["200 result=0 endpos=3404", "200 result=1", "200 result=50", "200 result=0"]
    assert (record.digits_delivered, record.digits_lost, record.input_opportunities) == (
        "12",
        "",
        4,
    )


async def test_press_in_flight_lands_on_the_next_command_like_a_real_line() -> None:
    replies: list[str] = []

    async def script(s: AgiSession) -> None:
        replies.append(await s.cmd('STREAM FILE demo-congrats "0123456789"'))
        replies.append(await s.cmd("GET DATA beep 3000 3"))  # the rest of "2511" arrives here

    callee = Callee(answer_after=0.0, keys=[KeyPress("2511", 0.5)])
    async with harness(callee, speed=5, default=script) as h:
        await h.originate("f", call_id="c-f")
        assert await h.sim.wait_idle(20)
    assert re.fullmatch(r"200 result=50 endpos=\d+", replies[0])
    assert replies[1] == "200 result=511"


async def test_hangup_at_the_nth_input_and_dead_channel_rules() -> None:
    received: list[str] = []

    async def script(s: AgiSession) -> None:
        received.append(await s.cmd("GET DATA beep 2000 1"))
        received.append(await s.cmd("GET DATA beep 9000 1"))
        received.append(await s.cmd('SAY DIGITS 123 ""'))
        received.append(await s.cmd('SET VARIABLE X "after"'))
        received.append(await s.cmd("GET VARIABLE X"))

    async with harness(Callee(answer_after=0.0, hangup_at_input=2), default=script) as h:
        await h.originate("h", call_id="c-h")
        assert await h.sim.wait_idle(20)
        session = h.agi.sessions[0]
        record = h.sim.calls[0]
    assert received == [
        "200 result= (timeout)",
        "200 result=-1",
        DEAD,
        "200 result=1",
        "200 result=1 (after)",
    ]
    after = session.received[session.received.index("200 result=-1") :]
    assert after[:3] == ["200 result=-1", "HANGUP", DEAD]
    assert after[-1] == "HANGUP"  # one more on half-close
    assert (record.hangup_by, record.agi_status, record.hangup_cause) == ("callee", "HANGUP", 16)


async def test_digits_while_idle_or_not_escape_are_lost() -> None:
    async def script(s: AgiSession) -> None:
        assert await s.cmd('STREAM FILE tt-monkeys "12"') == "200 result=0 endpos=129440"
        await s.idle(3.0)
        assert await s.cmd("WAIT FOR DIGIT 1000") == "200 result=0"

    callee = Callee(answer_after=0.0, timeline=[(1.0, "7"), (17.2, "5")])
    async with harness(callee, speed=20, default=script) as h:
        await h.originate("lost", call_id="c-l")
        assert await h.sim.wait_idle(20)
        assert h.sim.calls[0].digits_lost == "75"


async def test_amd_sets_machine_or_human_before_agi() -> None:
    statuses: dict[str, str] = {}

    async def script(s: AgiSession) -> None:
        statuses[s.env["agi_arg_1"]] = await s.cmd(f"GET VARIABLE {dv.AMD_STATUS}")

    book = {
        "79160000001": Callee("machine", answer_after=0.5),
        "79160000002": Callee(answer_after=0.5),
    }
    async with harness(lambda n: book[n], default=script) as h:
        for n, number in enumerate(book):
            await h.originate(
                f"amd-{n}",
                channel=f"PJSIP/{number}@trunk",
                call_id=number,
                variables=(f"{dv.AMD_ENABLED}=1",),
            )
        assert await h.sim.wait_idle(20)
        amd = [r.amd_status for r in h.sim.calls]
    assert statuses == {
        "79160000001": "200 result=1 (MACHINE)",
        "79160000002": "200 result=1 (HUMAN)",
    }
    assert amd == ["MACHINE", "HUMAN"]


async def test_hangup_during_amd_never_reaches_agi() -> None:
    async with harness(Callee(answer_after=0.0, hangup_after=1.0), amd_seconds=2.5) as h:
        await h.originate("amd-hu", call_id="c-a", variables=(f"{dv.AMD_ENABLED}=1",))
        got = await h.ami.read_until(
            lambda m: header(m, "Event") == "Hangup" and (header(m, "Channel") or "").endswith(";1")
        )
        assert await h.sim.wait_idle(10)
        record = h.sim.calls[0]
    assert h.agi.sessions == []
    assert record.amd_status == "HANGUP" and record.agi_status is None
    assert [
        (header(m, "Channel") or "")[-2:] + ":" + (header(m, "Cause") or "")
        for m in got
        if header(m, "Event") == "Hangup"
    ] == [";2:16", ";1:16"]


async def test_pjsip_channel_naming_number_and_callerid_in_env() -> None:
    numbers: list[str] = []

    def book(number: str) -> Callee:
        numbers.append(number)
        return Callee(answer_after=0.2, language="ru")

    async with harness(book, default=None) as h:
        await h.originate(
            "p1",
            channel="PJSIP/79161234567@debt-trunk",
            call_id="c-p1",
            caller='"Robot" <84951234567>',
        )
        await h.originate("p2", channel="SIP/old-trunk/79161112233", call_id="c-p2", caller=None)
        got = await h.ami.read_until(is_event("OriginateResponse", ActionID="p2"))
        assert await h.sim.wait_idle(10)
        env = {s.env["agi_arg_1"]: s.env for s in h.agi.sessions}
    assert numbers == ["79161234567", "79161112233"]
    success = next(
        m
        for m in got
        if header(m, "Event") == "OriginateResponse" and header(m, "ActionID") == "p1"
    )
    assert re.fullmatch(
        r"Local/79161234567@debt-trunk-[0-9a-f]{8};1", header(success, "Channel") or ""
    )
    assert env["c-p1"]["agi_channel"] == header(success, "Channel")
    assert (
        env["c-p1"]["agi_callerid"],
        env["c-p1"]["agi_calleridname"],
        env["c-p1"]["agi_language"],
    ) == ("84951234567", "Robot", "ru")
    assert (env["c-p2"]["agi_callerid"], env["c-p2"]["agi_calleridname"]) == ("unknown", "unknown")
    assert (
        env["c-p1"]["agi_network_script"] == "test"
        and env["c-p1"]["agi_context"] == dv.CONTEXT_ROBOT
    )


async def test_operator_click_to_call_rings_answers_holds_and_hangs_up() -> None:
    async with harness(
        Callee(answer_after=0.0), operator=Callee(answer_after=1.0), operator_call_seconds=5.0
    ) as h:
        await h.originate(
            "op",
            channel="PJSIP/101",
            context=dv.CONTEXT_OPERATOR,
            variables=(f"{dv.OPERATOR_TARGET}=79161234567",),
        )
        got = await h.ami.read_until(
            lambda m: header(m, "Event") == "Hangup" and (header(m, "Channel") or "").endswith(";2")
        )
        assert await h.sim.wait_idle(10)
        record = h.sim.calls[0]
    events = [header(m, "Event") for m in got]
    assert "DialState" in events  # it rang
    response = next(m for m in got if header(m, "Event") == "OriginateResponse")
    assert (header(response, "Response"), header(response, "Reason")) == ("Success", "4")
    assert re.fullmatch(r"Local/101@pjsip-[0-9a-f]{8};1", header(response, "Channel") or "")
    assert [header(m, "Cause") for m in got if header(m, "Event") == "Hangup"] == ["16", "16"]
    assert h.agi.sessions == [] and record.number == "101" and record.hangup_by == "dialplan"
    assert record.duration is not None and record.duration >= 4.9  # simulated seconds held


async def test_agi_server_down_fails_agi_and_clears_normally() -> None:
    async with harness(Callee(answer_after=0.0)) as h:
        await h.agi.stop()
        h.agi.port = 9  # the discard port: nothing listens on loopback
        await h.originate("down", call_id="c-d")
        got = await h.ami.read_until(
            lambda m: header(m, "Event") == "Hangup" and (header(m, "Channel") or "").endswith(";2")
        )
        assert await h.sim.wait_idle(10)
    assert ("AGISTATUS", "FAILURE") in [(header(m, "Variable"), header(m, "Value")) for m in got]
    assert [(header(m, "Cause"), header(m, "Cause-txt")) for m in got if header(m, "Event") == "Hangup"] == [
        ("16", "Normal Clearing"), ("16", "Normal Clearing"),
    ]  # fmt: skip
    assert h.sim.calls[0].agi_status == "FAILURE"


async def test_speed_factor_scales_a_long_prompt() -> None:
    replies: list[str] = []

    async def script(s: AgiSession) -> None:
        replies.append(await s.cmd('STREAM FILE long30 ""'))
        replies.append(await s.cmd("GET DATA long30 5000 2"))

    callee = Callee(answer_after=0.0, keys=[KeyPress("42", delay=10.0)])
    sounds = {"long30": 30.0}
    async with harness(callee, speed=100, default=script, sound_duration=sounds.get) as h:
        await h.originate("fast", call_id="c-s")
        assert await asyncio.wait_for(h.sim.wait_idle(10), 15)  # hang guard only
        record = h.sim.calls[0]
    assert replies == ["200 result=0 endpos=240000", "200 result=42"]
    assert record.duration is not None and record.duration > 35  # simulated seconds, not real


async def test_thousand_concurrent_calls_finish_by_themselves(monkeypatch) -> None:
    # The simulator gives a FastAGI connect 5 real seconds (a bound for a server that never
    # answers). Here 1,000 connects, their accepts and 1,000 scripts share one event loop, which a
    # busy machine starves for longer than that: the connects are done in the kernel but the loop
    # gets to them late. Nothing here is about connect time-outs, so the bound only guards a hang.
    monkeypatch.setattr(agi_peer, "CONNECT_TIMEOUT", 120.0)

    async def script(s: AgiSession) -> None:
        await s.cmd("ANSWER")
        await s.cmd("GET DATA beep 5000 1")
        await s.cmd("HANGUP")

    n = 1000
    callee = Callee(answer_after=1.0, keys=[KeyPress("1", 0.5)])
    # 1,000 calls share one event loop with the test's FastAGI server, so the loop runs late; a
    # press due before the GET DATA time-out still wins (the simulator orders them by simulated
    # time, see test_a_stalled_event_loop_does_not_let_a_timeout_overtake_a_key_press)
    async with harness(callee, speed=10, default=script, events="off") as h:
        for i in range(n):
            h.ami.send(
                ("Action", "Originate"), ("ActionID", f"bulk-{i}"), ("Channel", f"PJSIP/7916{i:07d}@trunk"),
                ("Context", dv.CONTEXT_ROBOT), ("Exten", "s"), ("Priority", "1"), ("Async", "true"),
                ("Variable", f"{dv.AGI_URL}={h.agi.url},{dv.SCRIPT}=bulk,{dv.CALL_ID}=bulk-{i}"),
            )  # fmt: skip
        replies = [await h.ami.read(30) for _ in range(n)]
        assert all(header(r, "Message") == "Originate successfully queued" for r in replies if r)
        assert await h.sim.wait_idle(180)  # bounds a hang only
        calls = list(h.sim.calls)
    assert len(calls) == n and h.sim.active_calls == 0
    assert [c for c in calls if not c.answered or c.agi_status != "HANGUP"] == []
    assert [c for c in calls if c.digits_delivered != "1"] == []
    assert {c.call_id for c in calls} == {f"bulk-{i}" for i in range(n)}
    assert len({c.uniqueid for c in calls}) == n


async def test_optional_agi_exec_events_and_manager_channelvars() -> None:
    async def script(s: AgiSession) -> None:
        assert await s.cmd("NOOP") == "200 result=0"
        assert await s.cmd("XYZZY") == "510 Invalid or unknown command"

    callee = Callee(answer_after=0.0)
    async with harness(callee, default=script, agi_events=True, channelvars=(dv.CALL_ID,)) as h:
        await h.originate("ev", call_id="c-ev")
        got = await h.ami.read_until(
            lambda m: header(m, "Event") == "Hangup" and (header(m, "Channel") or "").endswith(";2")
        )
    first = next(m for m in got if header(m, "Event") == "Newchannel")
    assert ("ChanVariable", f"{dv.CALL_ID}=") in first  # not set yet when the channel is born
    assert ("ChanVariable", f"{dv.CALL_ID}=c-ev") in got[-1]
    ends = [
        (header(m, "Command"), header(m, "ResultCode"), header(m, "Result"))
        for m in got
        if header(m, "Event") == "AGIExecEnd"
    ]
    assert ends == [("NOOP", "200", "Success"), ("XYZZY", "510", "Invalid or unknown command")]


async def test_a_stalled_event_loop_does_not_let_a_timeout_overtake_a_key_press(monkeypatch) -> None:
    # On a busy machine the event loop runs late. A press due (in simulated time) before the
    # command's time-out must still win, however late the loop gets to each step of sending it.
    replies: list[str] = []

    async def script(s: AgiSession) -> None:
        replies.append(await s.cmd("GET DATA beep 2000 1"))

    original = SimCall.dtmf_begin

    def stalling(self: SimCall, digit: str) -> None:
        original(self, digit)
        time.sleep(0.5)  # the whole loop freezes mid-digit, long past the GET DATA time-out

    monkeypatch.setattr(SimCall, "dtmf_begin", stalling)
    callee = Callee(answer_after=0.0, keys=[KeyPress("1", delay=0.5)])
    async with harness(callee, speed=20, default=script) as h:
        await h.originate("stall", call_id="c-stall")
        assert await h.sim.wait_idle(30)
        record = h.sim.calls[0]
    assert replies == ["200 result=1"]
    assert (record.digits_delivered, record.digits_lost) == ("1", "")
