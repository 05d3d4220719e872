"""AMIClient against replays of the recorded Asterisk sessions."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ivr.ami.client import (
    AMIError,
    AMINotConnected,
    AMIShuttingDown,
)
from ivr.ami.connection import AMIConnection
from ivr.ami.types import OriginateRequest
from tests.ami import transcript as tr
from tests.ami.conftest import RigFactory, eventually, request
from tests.ami.fake_ami import ReplayServer, asterisk_variables
from tests.conftest import TRANSCRIPTS

# --- login, ping, unknown action, logoff -----------------------------------------------------

async def test_login_ping_unknown_logoff(rig: RigFactory) -> None:
    r = await rig("ami-login-ping-logoff.txt")
    assert await r.client.wait_connected(30)
    assert r.client.banner == "Asterisk Call Manager/11.0.0"
    rtts = [await r.client.ping() for _ in range(3)]  # recorded: with, with, without ActionID
    assert all(rtt >= 0 for rtt in rtts)
    with pytest.raises(AMIError) as err:
        await r.client.action("NoSuchAction")
    assert err.value.message == ("Invalid/unknown command: NoSuchAction. "
                                 "Use Action: ListCommands to show available commands.")
    await r.client.stop()
    assert r.server.unexpected == [] and r.server.missing == []
    assert [h[0][1] for _, h in r.server.received] == ["Login", "Ping", "Ping", "Ping", "NoSuchAction", "Logoff"]
    ids = [dict(h)["ActionID"] for _, h in r.server.received]
    assert len(set(ids)) == len(ids)  # every action carried its own ActionID
    assert r.rec.changes == [True, False]


@pytest.mark.parametrize(("name", "username", "secret"), [
    ("ami-login-wrong-secret.txt", "lab", "wrongsecret"),
    ("ami-login-unknown-user.txt", "nosuchuser", "x"),
])
async def test_refused_login_is_reported_and_retried_with_backoff(
        rig: RigFactory, caplog: pytest.LogCaptureFixture, name: str, username: str, secret: str) -> None:
    caplog.set_level(logging.DEBUG)
    r = await rig(name, username=username, secret=secret, after_script="repeat",
                  client={"reconnect_min": 0.1})
    await eventually(lambda: r.server.connections >= 3, what="three login attempts")
    assert not r.client.connected
    assert not await r.client.wait_connected(0.01)
    assert r.client.last_error is not None and "Authentication failed" in r.client.last_error
    assert repr(username) in r.client.last_error
    assert secret not in caplog.text and secret not in r.client.last_error
    assert "Authentication failed" in caplog.text
    gaps = [b - a for a, b in zip(r.server.accepted_at, r.server.accepted_at[1:], strict=False)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.8 * 0.2  # back-off, never a tight loop
    assert r.rec.changes == []


async def test_actions_before_login_are_denied(transcripts: Path) -> None:
    server = ReplayServer(transcripts / "ami-action-before-login.txt")
    port = await server.start()
    conn = await AMIConnection.open("127.0.0.1", port, timeout=2, on_event=lambda raw: None, id_prefix="t")
    try:
        with pytest.raises(AMIError) as err:
            await conn.request("Ping", timeout=2)
        assert err.value.message == "Permission denied"
        with pytest.raises(AMIError) as err:
            await conn.request("Originate", [("Channel", "Local/s@debtor-sim"), ("Application", "Echo")], timeout=2)
        assert err.value.message == "Permission denied"
        assert not conn.is_closed  # the socket stays open
    finally:
        conn.abort()
        await server.close()
    assert server.unexpected == [] and server.missing == []


async def test_client_refuses_to_act_before_login() -> None:
    from ivr.ami.client import AMIClient

    client = AMIClient("127.0.0.1", 9, "lab", "x")
    with pytest.raises(AMINotConnected):
        await client.ping()
    with pytest.raises(AMINotConnected):
        await client.originate(request("never"))


# --- originate outcomes ----------------------------------------------------------------------

async def test_originate_success_gives_one_result_and_one_call_end(rig: RigFactory) -> None:
    r = await rig("ami-originate-success.txt")
    assert await r.client.wait_connected(30)
    await r.client.originate(request("att-1", AGI_PATH="ami-call", DIGITS="1w2", ANSWER_DELAY="1"))
    await eventually(lambda: len(r.rec.ended) == 1 and r.server.waiting_for == "Logoff")
    await r.client.stop()
    assert r.server.missing == [] and r.server.unexpected == []
    (originate,) = r.server.actions("Originate")
    assert ("ActionID", "att-1") in originate and ("Variable", "IVR_CALL_ID=att-1") in originate
    (result,) = r.rec.results
    assert result.action_id == "att-1" and result.success and result.reason == 4
    assert result.channel == "Local/s@debtor-sim-00000017;1" and result.uniqueid == "1795371149.46"
    assert result.result == "answered"
    (ended,) = r.rec.ended
    assert ended.call_id == "att-1" and ended.result == "answered"
    assert (ended.cause, ended.cause_txt, ended.agi_status) == (0, "Unknown", "HANGUP")
    assert r.rec.lost == []


@pytest.mark.parametrize(("name", "channel", "timeout_ms", "reason", "result", "cause", "half"), [
    ("ami-originate-busy.txt", "Local/busy@debtor-sim", 30000, 5, "busy", 17, ";2"),
    ("ami-originate-noanswer.txt", "Local/noanswer@debtor-sim", 5000, 3, "no_answer", 19, ";1"),
    ("ami-originate-congestion.txt", "Local/congestion@debtor-sim", 30000, 8, "congestion", 34, ";2"),
])
async def test_originate_failures(rig: RigFactory, name: str, channel: str, timeout_ms: int, reason: int,
                                  result: str, cause: int, half: str) -> None:
    r = await rig(name)
    assert await r.client.wait_connected(30)
    await r.client.originate(request("att-f", channel, timeout_ms=timeout_ms, AGI_PATH="env"))
    await eventually(lambda: len(r.rec.ended) == 1 and r.server.waiting_for == "Logoff")
    await r.client.stop()
    assert r.server.missing == [] and r.server.unexpected == []
    (res,) = r.rec.results
    assert not res.success and res.reason == reason and res.result == result
    assert res.channel == channel and res.uniqueid is None  # "Uniqueid: <unknown>"
    (ended,) = r.rec.ended
    assert ended.call_id == "att-f" and ended.cause == cause and ended.result == result
    assert ended.channel.endswith(half)


async def test_invalid_channel_variants(rig: RigFactory) -> None:
    r = await rig("ami-originate-invalid-channel.txt", cap=0.05)
    c = r.client
    assert await c.wait_connected(30)
    await c.originate(request("t-tech", "NoSuchTech/12345", timeout_ms=5000, AGI_PATH="env"))
    await eventually(lambda: len(r.rec.results) == 1)
    await c.originate(request("t-exten", "Local/nosuchexten@debtor-sim", timeout_ms=5000, AGI_PATH="env"))
    await eventually(lambda: len(r.rec.ended) == 1)
    await c.originate(request("t-context", "Local/s@no-such-context", timeout_ms=5000, AGI_PATH="env"))
    await eventually(lambda: len(r.rec.ended) == 2)
    with pytest.raises(AMIError) as err:
        await c.originate(request("t-garbage", "garbage", timeout_ms=5000, AGI_PATH="env"))
    assert err.value.message == "Invalid channel"
    sync = [("Channel", "NoSuchTech/12345"), ("Context", "robot"), ("Exten", "s"), ("Priority", "1"),
            ("Timeout", "5000"), ("CallerID", '"Ivanov Ivan" <79161234567>'), ("Variable", "AGI_PATH=env")]
    for channel in ("NoSuchTech/12345", "Local/nosuchexten@debtor-sim"):
        with pytest.raises(AMIError) as err:
            await c.action("Originate", [("Channel", channel), *sync[1:]])
        assert err.value.message == "Originate failed"
    with pytest.raises(AMIError) as err:
        await c.action("Originate", {"Context": "robot", "Exten": "s", "Priority": "1", "Async": "true"})
    assert err.value.message == "Channel not specified"
    reply = await c.action("Originate", {"Channel": "Local/s@debtor-sim", "Async": "true"})
    assert reply["Message"] == "Originate successfully queued"
    await eventually(lambda: r.server.waiting_for == "Logoff")
    await c.stop()
    assert r.server.unexpected == [] and r.server.missing == []
    assert [(x.action_id, x.reason, x.result) for x in r.rec.results] == [
        ("t-tech", 0, "failed"), ("t-exten", 0, "failed"), ("t-context", 0, "failed")]
    assert [(e.call_id, e.cause, e.result) for e in r.rec.ended] == [
        ("t-exten", 0, "failed"), ("t-context", 0, "failed")]
    assert r.rec.lost == []


async def test_agi_server_down_is_an_answered_call_with_agi_failure(rig: RigFactory) -> None:
    r = await rig("ami-agi-server-down.txt")
    assert await r.client.wait_connected(30)
    await r.client.originate(request("t-down", exten="badport", AGI_PATH="env"))
    await eventually(lambda: len(r.rec.ended) == 1 and r.server.waiting_for == "Logoff")
    await r.client.stop()
    assert r.server.missing == []
    (res,) = r.rec.results
    assert res.success and res.result == "answered"
    (ended,) = r.rec.ended
    assert (ended.cause, ended.cause_txt, ended.result, ended.agi_status) == (
        16, "Normal Clearing", "answered", "FAILURE")


def _recorded_originate(path: Path, action_id: str) -> OriginateRequest:
    sent = next(i.message for i in tr.parse(path)
                if i.direction == tr.CLIENT and i.message.startswith("Action: Originate"))
    h = dict(tr.headers_of(sent))
    variables = dict(nv for k, v in tr.headers_of(sent) if k == "Variable" for nv in asterisk_variables(v))
    return OriginateRequest(action_id=action_id, channel=h["Channel"], context=h["Context"],
                            exten=h["Exten"], priority=int(h["Priority"]), timeout_ms=int(h["Timeout"]),
                            caller_id=h["CallerID"], variables=variables)


@pytest.mark.parametrize("path", sorted((TRANSCRIPTS / "agi-calls-ami").glob("*.ami.txt")),
                         ids=lambda p: p.name[:-8])
async def test_every_recorded_agi_call(rig: RigFactory, path: Path) -> None:
    r = await rig(str(path), scale=0.02, cap=0.05)
    assert await r.client.wait_connected(30)
    await r.client.originate(_recorded_originate(path, "t-call"))
    await eventually(lambda: len(r.rec.ended) == 1 and r.server.waiting_for == "Logoff")
    await r.client.stop()
    if "unquoted" not in path.name:  # the unquoted value is exactly what our encoder avoids
        assert r.server.missing == []
    assert r.server.unexpected == []
    assert [(x.action_id, x.result) for x in r.rec.results] == [("t-call", "answered")]
    assert [(e.call_id, e.result) for e in r.rec.ended] == [("t-call", "answered")]


@pytest.mark.parametrize("name", ["callfile-success.ami.txt", "callfile-busy-retry.ami.txt",
                                  "callfile-noanswer.ami.txt"])
async def test_call_file_traffic_is_ignored(rig: RigFactory, name: str) -> None:
    r = await rig(name, scale=0.01, cap=0.02)
    await eventually(lambda: r.server.waiting_for == "Logoff")
    await r.client.stop()
    assert r.rec.results == [] and r.rec.ended == [] and r.rec.lost == []
    assert r.server.unexpected == []


# --- restarts --------------------------------------------------------------------------------

async def test_core_restart_now_is_ridden_through(rig: RigFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    r = await rig("ami-restart.txt")
    assert await r.client.wait_connected(30)
    await r.client.ping()
    await eventually(lambda: r.rec.changes == [True, False, True], what="reconnect")
    assert "shutting down" in caplog.text  # the Shutdown event was seen
    assert not r.client.shutting_down  # a fresh login clears it
    await r.client.ping()
    await r.client.stop()
    assert r.server.unexpected == []
    assert len(r.server.actions("Login")) == 2


@pytest.mark.parametrize("name", ["ami-restart-gracefully-with-call.txt",
                                  "ami-restart-gracefully-with-call-2.txt"])
async def test_core_restart_gracefully(rig: RigFactory, name: str) -> None:
    r = await rig(name)
    c = r.client
    assert await c.wait_connected(30)
    await c.originate(request("t-before", AGI_PATH="hangup-idle", HANGUP_AFTER="4"))
    await eventually(lambda: r.server.waiting_for == "Ping")
    with pytest.raises(AMIShuttingDown):
        await c.ping()
    assert c.shutting_down
    with pytest.raises(AMIShuttingDown) as err:
        await c.originate(request("t-during", AGI_PATH="env"))
    assert err.value.message == "Asterisk is shutting down"
    await eventually(lambda: r.rec.changes == [True, False, True], what="reconnect")
    await c.stop()
    assert r.server.unexpected == [] and r.server.missing == []
    assert [(x.action_id, x.result) for x in r.rec.results] == [("t-before", "answered")]
    assert [(e.call_id, e.cause, e.result) for e in r.rec.ended] == [("t-before", 16, "answered")]
    assert r.rec.lost == []
