"""Dead connections, lost originates, injection, reply matching and reconciliation."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ivr.ami import protocol as p
from ivr.ami.client import AMIClient, AMIError, AMINotConnected, OriginateUnknown
from tests.ami import transcript as tr
from tests.ami.conftest import FAST, Recorder, RigFactory, eventually, request
from tests.ami.fake_ami import ReplayServer


async def test_lost_originate_is_reported_once_and_never_resent(rig: RigFactory) -> None:
    # the replayed second session waits for an Originate that never comes, so Logoff at stop()
    # goes unanswered: a short action timeout keeps the test fast
    r = await rig("ami-originate-success.txt", cut_after="Originate", after_script="repeat",
                  client={"action_timeout": 0.3})
    assert await r.client.wait_connected(30)
    with pytest.raises(OriginateUnknown) as err:
        await r.client.originate(request("att-lost", AGI_PATH="ami-call"))
    assert err.value.action_id == "att-lost"
    await eventually(lambda: r.rec.changes == [True, False, True], what="reconnect")
    await asyncio.sleep(0.1)  # time in which a resend would show up
    await r.client.stop()
    assert r.rec.lost == [["att-lost"]]
    assert len(r.server.actions("Originate")) == 1
    assert [n for n, h in r.server.received if h[0][1] == "Login"] == [0, 1]
    assert r.rec.results == [] and r.rec.ended == []


async def test_originate_without_reply_times_out_as_unknown(rig: RigFactory) -> None:
    r = await rig("ami-login-ping-logoff.txt", silent=True, client={"action_timeout": 0.3})
    assert await r.client.wait_connected(30)
    with pytest.raises(OriginateUnknown):
        await r.client.originate(request("att-slow", AGI_PATH="x"))
    await r.client.stop()
    assert r.rec.lost == [["att-slow"]]
    assert len(r.server.actions("Originate")) == 1


async def test_ping_timeout_reconnects(rig: RigFactory) -> None:
    r = await rig("ami-login-ping-logoff.txt", silent=True,
                  client={"ping_interval": 0.1, "ping_timeout": 0.1})
    await eventually(lambda: r.server.connections >= 2 and r.rec.changes[:3] == [True, False, True],
                     what="reconnect after an unanswered Ping")
    assert r.server.actions("Ping")  # the keep-alive was sent and went unanswered
    await r.client.stop()


async def test_pending_actions_fail_when_the_connection_drops(rig: RigFactory) -> None:
    r = await rig("ami-login-ping-logoff.txt", silent=True, client={"action_timeout": 5.0})
    assert await r.client.wait_connected(30)
    waiting = asyncio.create_task(r.client.action("Ping"))
    await eventually(lambda: len(r.server.actions("Ping")) == 1)
    for writer in list(r.server._writers):
        writer.transport.abort()
    with pytest.raises(AMINotConnected):
        await waiting
    await r.client.stop()


async def test_header_injection_is_impossible(rig: RigFactory) -> None:
    r = await rig("ami-login-ping-logoff.txt", client={"action_timeout": 0.3})
    assert await r.client.wait_connected(30)
    with pytest.raises(p.InvalidHeader):
        await r.client.originate(request("att-inj", NOTE="x\r\nAction: Hangup\r\nChannel: all"))
    with pytest.raises(p.InvalidHeader):
        await r.client.action("Ping", {"X-Note": "a\nAction: Logoff"})
    with pytest.raises(p.InvalidHeader):
        await r.client.action("Ping", [("ActionID", "mine")])  # ActionIDs are the client's
    await r.client.stop()
    assert [h[0][1] for _, h in r.server.received] == ["Login", "Logoff"]
    assert r.rec.lost == []


async def test_call_id_variable_must_match_the_action_id(rig: RigFactory) -> None:
    r = await rig("ami-login-ping-logoff.txt", client={"action_timeout": 0.3})
    assert await r.client.wait_connected(30)
    with pytest.raises(ValueError):
        await r.client.originate(request("att-a", IVR_CALL_ID="att-b"))
    await r.client.stop()
    assert r.server.actions("Originate") == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_refused_connections_back_off_until_asterisk_is_up(transcripts: Path) -> None:
    port = _free_port()
    client = AMIClient("127.0.0.1", port, "lab", "labsecret", **{**FAST, "action_timeout": 0.3})
    rec = Recorder()
    rec.attach(client)
    await client.start()
    server = ReplayServer(transcripts / "ami-login-ping-logoff.txt", port=port)
    try:
        await eventually(lambda: client.last_error is not None and "cannot connect" in client.last_error)
        assert not client.connected
        await server.start()
        assert await client.wait_connected(30)
        assert client.last_error is None
    finally:
        await client.stop()
        await server.close()
    assert rec.changes == [True, False]


# --- hand-made servers for what no recording shows --------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, dict[str, str]], Awaitable[None]]


@pytest.fixture
async def scripted(transcripts: Path) -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    """A server that sends the recorded banner and Login reply, then calls ``handler`` for each
    further action with its headers."""
    items = tr.parse(transcripts / "ami-login-ping-logoff.txt")
    banner = items[4].message
    login_reply = next(i.message for i in items if i.message.startswith("Response: Success"))
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(banner.encode())
            login = dict(tr.headers_of((await reader.readuntil(b"\r\n\r\n")).decode()))
            writer.write(login_reply.replace("lab-1", login["ActionID"]).encode())
            try:
                while True:
                    headers = dict(tr.headers_of((await reader.readuntil(b"\r\n\r\n")).decode()))
                    await handler(reader, writer, headers)
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()


async def test_replies_are_matched_by_action_id_not_by_order(
        scripted: Callable[[Handler], Awaitable[int]]) -> None:
    held: list[dict[str, str]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, h: dict[str, str]) -> None:
        if h["Action"] == "Logoff":
            writer.write(f"Response: Goodbye\r\nActionID: {h['ActionID']}\r\n\r\n".encode())
            return
        held.append(h)
        if len(held) < 2:
            return
        # answer the second first, with an unrelated reply and events in between
        first, second = held
        writer.write(b"Event: Newexten\r\nChannel: X\r\nActionID: " + first["ActionID"].encode() + b"\r\n\r\n")
        writer.write(f"Response: Success\r\nActionID: {second['ActionID']}\r\nPing: Pong\r\nTag: second\r\n\r\n".encode())
        writer.write(b"Response: Success\r\nActionID: someone-else-7\r\n\r\n")
        writer.write(f"Response: Error\r\nActionID: {first['ActionID']}\r\nMessage: first failed\r\n\r\n".encode())

    port = await scripted(handler)
    client = AMIClient("127.0.0.1", port, "lab", "labsecret", **FAST)
    await client.start()
    try:
        assert await client.wait_connected(30)
        one = asyncio.create_task(client.action("Ping", {"Tag": "first"}))
        await eventually(lambda: len(held) == 1)
        two = asyncio.create_task(client.action("Ping", {"Tag": "second"}))
        assert (await two)["Tag"] == "second"
        with pytest.raises(AMIError) as err:
            await one
        assert err.value.message == "first failed"
    finally:
        await client.stop()


async def test_find_calls_lists_channels_and_tracks_them_again(
        scripted: Callable[[Handler], Awaitable[int]]) -> None:
    """No recording has a Status reply; this one follows main/manager.c action_status (list
    start, one Status event per channel with ``Variable: NAME=value`` lines, StatusComplete)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, h: dict[str, str]) -> None:
        aid = h["ActionID"]
        if h["Action"] == "Logoff":
            writer.write(f"Response: Goodbye\r\nActionID: {aid}\r\n\r\n".encode())
            return
        assert h == {"Action": "Status", "ActionID": aid, "Variables": "IVR_CALL_ID"}
        writer.write(
            f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\nMessage: Channel status will follow\r\n\r\n"
            f"Event: Status\r\nPrivilege: Call\r\nChannel: Local/s@debtor-sim-00000040;1\r\nChannelState: 6\r\n"
            f"ChannelStateDesc: Up\r\nUniqueid: 1795371300.80\r\nVariable: IVR_CALL_ID=att-9\r\nActionID: {aid}\r\n\r\n"
            "Event: Newexten\r\nChannel: Local/s@debtor-sim-00000040;1\r\nUniqueid: 1795371300.80\r\n\r\n"
            f"Event: Status\r\nPrivilege: Call\r\nChannel: PJSIP/operator-00000002\r\nChannelState: 4\r\n"
            f"ChannelStateDesc: Ring\r\nUniqueid: 1795371300.82\r\nVariable: IVR_CALL_ID=\r\nActionID: {aid}\r\n\r\n"
            f"Event: StatusComplete\r\nActionID: {aid}\r\nEventList: Complete\r\nListItems: 2\r\nItems: 2\r\n\r\n"
            "Event: Hangup\r\nChannel: Local/s@debtor-sim-00000040;1\r\nChannelState: 6\r\nUniqueid: 1795371300.80\r\n"
            "Cause: 16\r\nCause-txt: Normal Clearing\r\n\r\n".encode())

    port = await scripted(handler)
    client = AMIClient("127.0.0.1", port, "lab", "labsecret", **FAST)
    rec = Recorder()
    rec.attach(client)
    await client.start()
    try:
        assert await client.wait_connected(30)
        calls = await client.find_calls()
        assert [(c.channel, c.uniqueid, c.call_id, c.state) for c in calls] == [
            ("Local/s@debtor-sim-00000040;1", "1795371300.80", "att-9", "Up"),
            ("PJSIP/operator-00000002", "1795371300.82", None, "Ring"),
        ]
        await eventually(lambda: len(rec.ended) == 1)
        assert (rec.ended[0].call_id, rec.ended[0].result, rec.ended[0].cause) == ("att-9", "answered", 16)
    finally:
        await client.stop()
