"""The simulated AMI against the recorded AMI sessions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ivr import dialplan_vars as dv
from ivr.sim import Callee, SimulatedAsterisk
from tests.sim.harness import harness
from tests.sim.wire import (
    AgiSession,
    AmiClient,
    Message,
    ami_exchange,
    header,
    is_event,
    load_transcript,
    replay_script,
)

VOLATILE = {
    "Uptime",
    "LastReload",
    "EventTV",
    "SessionID",
    "LocalAddress",
    "RemoteAddress",
    "SessionTV",
    "Timestamp",
}


def assert_same_message(got: Message | None, want: Message) -> None:
    assert got is not None, f"EOF instead of {want}"
    assert [k for k, _ in got] == [k for k, _ in want]
    for (key, value), (_, expected) in zip(got, want, strict=True):
        if key not in VOLATILE:
            assert value == expected, key


@contextlib.asynccontextmanager
async def replay_ami(path: Path, users: dict[str, str]) -> AsyncIterator[AmiClient]:
    """Send the recorded actions and compare every recorded reply message; yields the client."""
    sim = SimulatedAsterisk(lambda n: Callee(), users=users, speed=20)
    await sim.start()
    client = await AmiClient.connect(sim.ami_port)
    try:
        assert client.banner == "Asterisk Call Manager/11.0.0"
        for direction, msg in ami_exchange(path):
            if direction == "send":
                client.send(*msg)
            else:
                assert_same_message(await client.read(), msg)
        yield client
    finally:
        await client.close()
        await sim.stop()


async def test_login_ping_unknown_logoff_match_recording(transcripts: Path) -> None:
    async with replay_ami(
        transcripts / "ami-login-ping-logoff.txt", {"lab": "labsecret"}
    ) as client:
        assert await client.read() is None  # Logoff closes the socket
        assert client.raw.count(b"\r\n") == client.raw.count(b"\n")  # CRLF everywhere


@pytest.mark.parametrize("name", ["ami-login-wrong-secret.txt", "ami-login-unknown-user.txt"])
async def test_bad_login_fails_then_closes(name: str, transcripts: Path) -> None:
    async with replay_ami(transcripts / name, {"lab": "labsecret"}) as client:
        assert await client.read() is None


async def test_actions_before_login_are_denied_and_socket_stays_open(transcripts: Path) -> None:
    async with replay_ami(
        transcripts / "ami-action-before-login.txt", {"lab": "labsecret"}
    ) as client:
        reply = await client.login("lab", "labsecret")
        assert header(reply, "Message") == "Authentication accepted"


# -- Originate event streams ----------------------------------------------------------------

EMITTED = {
    "Newchannel", "VarSet", "NewCallerid", "NewConnectedLine", "LocalBridge", "DialBegin", "DialState",
    "Newstate", "DialEnd", "OriginateResponse", "DTMFBegin", "DTMFEnd", "SoftHangupRequest",
    "HangupRequest", "Hangup",
}  # fmt: skip
RECORDED_VARS = {
    "AGI_PATH",
    "DIGITS",
    "ANSWER_DELAY",
    "PLAYBACKSTATUS",
    "PAYMENT_CHOICE",
    "AGISTATUS",
}


def canon(msg: Message) -> tuple[str, ...] | None:
    event = header(msg, "Event")
    if event not in EMITTED:
        return None
    chan = (
        header(msg, "Channel") or header(msg, "DestChannel") or header(msg, "LocalOneChannel") or ""
    )
    half = chan[-2:] if chan.endswith((";1", ";2")) else ""
    if event == "VarSet":
        var = header(msg, "Variable") or ""
        return (event, half, var, header(msg, "Value") or "") if var in RECORDED_VARS else None
    if event in ("Hangup", "HangupRequest", "SoftHangupRequest"):
        return event, half, header(msg, "Cause") or ""
    if event in ("DialEnd", "DialState"):
        return event, half, header(msg, "DialStatus") or ""
    if event == "Newstate":
        return event, half, header(msg, "ChannelState") or ""
    if event == "OriginateResponse":
        return (
            event,
            header(msg, "Response") or "",
            header(msg, "Reason") or "",
            header(msg, "Uniqueid") or "",
        )
    if event.startswith("DTMF"):
        return event, half, header(msg, "Digit") or ""
    return event, half


def recorded_events(path: Path) -> list[Message]:
    return [m for d, m in ami_exchange(path) if d == "recv" and header(m, "Event")]


def recorded_originate(path: Path) -> Message:
    return next(
        m for d, m in ami_exchange(path) if d == "send" and header(m, "Action") == "Originate"
    )


def mask(seq: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    return [
        t[:3] + ("<uid>",) if t[0] == "OriginateResponse" and t[3] != "<unknown>" else t
        for t in seq
    ]


async def run_recorded_originate(
    transcripts: Path, name: str, callee: Callee, speed: float = 20.0
) -> tuple[list[Message], list[Message]]:
    """Originate what the recording originated; return (our events, recorded events)."""
    path = transcripts / f"{name}.txt"
    agi_file = transcripts / f"{name}.agi.txt"
    script = replay_script(load_transcript(agi_file)) if agi_file.exists() else None
    recorded = recorded_events(path)
    async with harness(callee, speed=speed, default=script) as h:
        action = recorded_originate(path)
        h.ami.send(*action, ("Variable", f"{dv.AGI_URL}={h.agi.url},{dv.SCRIPT}=ami-call"))
        ours = await h.ami.read_until(
            lambda m: header(m, "Event") == "Hangup" and (header(m, "Channel") or "").endswith(";2")
        )
        # the ;1 half may hang up after ;2 (busy, congestion): read until both are gone
        if not any(
            header(m, "Event") == "Hangup" and (header(m, "Channel") or "").endswith(";1")
            for m in ours
        ):
            ours += await h.ami.read_until(lambda m: header(m, "Event") == "Hangup")
        await h.sim.wait_idle(10)
    return ours, recorded


@pytest.mark.parametrize(
    ("name", "callee"),
    [
        ("ami-originate-success", Callee(answer_after=0.0, timeline=[(1.0, "1w2")])),
        ("ami-originate-busy", Callee("busy", answer_after=0.0)),
        ("ami-originate-noanswer", Callee("no_answer")),
        ("ami-originate-congestion", Callee("congestion", answer_after=0.0)),
    ],
)
async def test_originate_event_stream_matches_recording(
    name: str, callee: Callee, transcripts: Path
) -> None:
    ours, recorded = await run_recorded_originate(transcripts, name, callee)
    want = [c for c in map(canon, recorded) if c]
    got = [c for c in map(canon, ours) if c]
    assert mask(got) == mask(want)
    # every event type we send has the recorded headers, in the recorded order
    for event in EMITTED:
        rec = next((m for m in recorded if header(m, "Event") == event), None)
        mine = next((m for m in ours if header(m, "Event") == event), None)
        if rec is not None and mine is not None:
            assert [k for k, _ in mine] == [k for k, _ in rec], event
    response = next(m for m in ours if header(m, "Event") == "OriginateResponse")
    rec_response = next(m for m in recorded if header(m, "Event") == "OriginateResponse")
    for key in (
        "ActionID",
        "Response",
        "Context",
        "Exten",
        "Reason",
        "CallerIDNum",
        "CallerIDName",
    ):
        assert header(response, key) == header(rec_response, key), key
    if header(rec_response, "Response") == "Failure":
        assert header(response, "Channel") == header(
            rec_response, "Channel"
        )  # exactly as requested
        assert header(response, "Uniqueid") == "<unknown>"
    else:
        newchannel = next(m for m in ours if header(m, "Event") == "Newchannel")
        assert header(response, "Channel") == header(newchannel, "Channel")
        assert header(response, "Uniqueid") == header(newchannel, "Uniqueid")


async def test_originate_validation_and_unknown_technology() -> None:
    async with harness(Callee(answer_after=0.0)) as h:
        h.ami.send(
            ("Action", "Originate"), ("ActionID", "no-chan"), ("Context", "x"), ("Exten", "s")
        )
        assert header(await h.ami.read(), "Message") == "Channel not specified"
        reply = await h.originate("no-slash", channel="garbage")
        assert (header(reply, "Response"), header(reply, "Message")) == ("Error", "Invalid channel")
        reply = await h.originate("unknown-tech", channel="NoSuchTech/12345")
        assert header(reply, "Message") == "Originate successfully queued"
        event = await h.ami.read()
        assert event is not None and header(event, "Event") == "OriginateResponse"
        assert [header(event, k) for k in ("ActionID", "Response", "Channel", "Reason", "Uniqueid")] == [
            "unknown-tech", "Failure", "NoSuchTech/12345", "0", "<unknown>",
        ]  # fmt: skip
        reply = await h.originate("sync-unknown", channel="NoSuchTech/12345", asynchronous=False)
        assert (header(reply, "Response"), header(reply, "Message")) == (
            "Error",
            "Originate failed",
        )


async def test_variable_headers_split_at_unquoted_commas() -> None:
    async with harness(Callee(answer_after=0.0, hangup_after=1.0)) as h:
        await h.originate(
            "vars",
            call_id="c-1",
            variables=("AGI_ARGS=first arg,42,,Иванов И.И.", 'B="x,y",C=f(a,b)', 'Q="keep,commas"'),
        )
        events = await h.ami.read_until(is_event("NewConnectedLine"))
        events += await h.ami.read_until(is_event("NewConnectedLine"))
        on_two = [
            (header(m, "Variable"), header(m, "Value"))
            for m in events
            if header(m, "Event") == "VarSet" and (header(m, "Channel") or "").endswith(";2")
        ]
        on_one = [
            (header(m, "Variable"), header(m, "Value"))
            for m in events
            if header(m, "Event") == "VarSet" and (header(m, "Channel") or "").endswith(";1")
        ]
        assert on_two == [
            (dv.AGI_URL, h.agi.url), (dv.SCRIPT, "test"), (dv.CALL_ID, "c-1"), ("AGI_ARGS", "first arg"),
            ("B", "x,y"), ("C", "f(a,b)"), ("Q", "keep,commas"),
        ]  # fmt: skip
        assert on_one == list(reversed(on_two))  # ;1 gets them in reverse header order, as recorded
        assert await h.sim.wait_idle(10)


async def test_status_coreshowchannels_and_hangup_action() -> None:
    async def wait_forever(session: AgiSession) -> None:
        assert await session.cmd("WAIT FOR DIGIT -1") == "200 result=-1"
        assert (
            await session.cmd("CHANNEL STATUS")
            == "511 Command Not Permitted on a dead channel or intercept routine"
        )

    async with harness(Callee(answer_after=0.0), default=wait_forever) as h:
        await h.originate("live", call_id="call-7")
        await h.ami.read_until(is_event("OriginateResponse"))
        h.ami.send(("Action", "Status"), ("ActionID", "st"), ("Variables", f"{dv.CALL_ID},NOPE"))
        got = await h.ami.read_until(is_event("StatusComplete"))
        got = [m for m in got if header(m, "ActionID") == "st"]
        assert [
            (header(m, "Response"), header(m, "EventList"), header(m, "Message")) for m in got[:1]
        ] == [("Success", "start", "Channel status will follow")]
        statuses = [m for m in got if header(m, "Event") == "Status"]
        assert len(statuses) == 2
        for m in statuses:
            assert ("Variable", f"{dv.CALL_ID}=call-7") in m and ("Variable", "NOPE=") in m
        assert header(got[-1], "Items") == "2" and header(got[-1], "EventList") == "Complete"
        one = next(
            header(m, "Channel") for m in statuses if (header(m, "Channel") or "").endswith(";1")
        )

        h.ami.send(("Action", "CoreShowChannels"), ("ActionID", "cs"))
        got = await h.ami.read_until(is_event("CoreShowChannelsComplete"))
        listed = [header(m, "Channel") for m in got if header(m, "Event") == "CoreShowChannel"]
        assert one in listed and len(listed) == 2
        assert header(got[-1], "ListItems") == "2"

        h.ami.send(
            ("Action", "Hangup"), ("ActionID", "hu-bad"), ("Channel", "Local/nope-00000000;1")
        )
        assert (
            header(
                (await h.ami.read_until(lambda m: header(m, "ActionID") == "hu-bad"))[-1], "Message"
            )
            == "No such channel"
        )
        h.ami.send(("Action", "Hangup"), ("ActionID", "hu"), ("Channel", one or ""))
        got = await h.ami.read_until(
            lambda m: header(m, "Event") == "Hangup" and header(m, "Channel") == one
        )
        assert (
            header(next(m for m in got if header(m, "ActionID") == "hu"), "Message")
            == "Channel Hungup"
        )
        assert await h.sim.wait_idle(10)
        assert h.sim.calls[0].hangup_by == "ami"
        received = h.agi.sessions[0].received
        assert received[-3:] == ["200 result=-1", "HANGUP", "511 Command Not Permitted on a dead channel or intercept routine"] or received[-4:-1] == [
            "200 result=-1", "HANGUP", "511 Command Not Permitted on a dead channel or intercept routine",
        ]  # fmt: skip


async def test_channel_limit_refuses_with_reason_0_and_no_channel() -> None:
    async def hold(session: AgiSession) -> None:
        assert await session.cmd("WAIT FOR DIGIT -1") == "200 result=-1"

    callee = Callee(answer_after=0.5, hangup_after=10.0)
    async with harness(callee, channel_limit=2, default=hold) as h:
        for i in range(3):
            await h.originate(f"lim-{i}", channel=f"PJSIP/7916000000{i}@trunk")
        got = await h.ami.read_until(is_event("OriginateResponse", ActionID="lim-2"))
        refused = got[-1]
        assert [header(refused, k) for k in ("Response", "Reason", "Uniqueid", "Channel")] == [
            "Failure",
            "0",
            "<unknown>",
            "PJSIP/79160000002@trunk",
        ]
        channels = {header(m, "Channel") for m in got if header(m, "Event") == "Newchannel"}
        assert len(channels) == 4 and not any("79160000002" in (c or "") for c in channels)
        assert await h.sim.wait_idle(10)
        assert [r.outcome for r in h.sim.calls] == ["answer", "answer", "channel_limit"]
        assert [r.answered for r in h.sim.calls] == [True, True, False]
        await h.originate("lim-again", channel="PJSIP/79160000002@trunk")  # capacity is back
        got = await h.ami.read_until(is_event("OriginateResponse", ActionID="lim-again"))
        assert header(got[-1], "Response") == "Success"
        assert await h.sim.wait_idle(10)


async def test_restart_now_drops_calls_refuses_then_comes_back() -> None:
    async def hold(session: AgiSession) -> None:
        with contextlib.suppress(ConnectionError):  # the restart drops the FastAGI connection
            await session.cmd("WAIT FOR DIGIT -1")

    async with harness(Callee(answer_after=0.0), default=hold, restart_seconds=10.0) as h:
        await h.originate("before", call_id="c-r")
        await h.ami.read_until(is_event("OriginateResponse"))
        restart = asyncio.create_task(h.sim.restart())
        got = await h.ami.read_until(is_event("Shutdown"))
        assert [(header(got[-1], "Shutdown"), header(got[-1], "Restart"))] == [("Cleanly", "True")]
        assert await h.ami.read() is None
        with pytest.raises(OSError):
            await AmiClient.connect(h.sim.ami_port)
        await asyncio.wait_for(restart, 10)
        assert h.sim.active_calls == 0 and h.sim.calls[0].hangup_by == "restart"
        again = await AmiClient.connect(h.sim.ami_port)
        await again.login()
        booted = await again.read()
        assert header(booted, "Event") == "FullyBooted" and header(booted, "Uptime") == "0"
        h.ami = again


async def test_restart_gracefully_waits_for_calls_and_refuses_actions() -> None:
    async def hold(session: AgiSession) -> None:
        assert await session.cmd("WAIT FOR DIGIT -1") == "200 result=-1"

    async with harness(Callee(answer_after=0.0, hangup_after=4.0), default=hold) as h:
        await h.originate("g", call_id="c-g")
        await h.ami.read_until(is_event("OriginateResponse"))
        restart = asyncio.create_task(h.sim.restart(graceful=True))
        await asyncio.sleep(0.01)
        h.ami.send(("Action", "Ping"), ("ActionID", "p"))
        got = await h.ami.read_until(lambda m: header(m, "ActionID") == "p")
        assert (header(got[-1], "Response"), header(got[-1], "Message")) == (
            "Error",
            "Asterisk is shutting down",
        )
        got = await h.ami.read_until(is_event("Shutdown"))
        assert [header(m, "Event") for m in got].count("Hangup") == 2  # the call ended first
        assert await h.ami.read() is None
        await asyncio.wait_for(restart, 10)
        assert h.sim.calls[0].hangup_by == "callee"
        h.ami = await AmiClient.connect(h.sim.ami_port)
        await h.ami.login()
