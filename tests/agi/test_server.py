"""FastAGIServer over real loopback TCP: allow-list, concurrency, graceful stop, bad routes."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ivr.agi.channel import AGIChannel
from ivr.agi.server import FastAGIServer, host_allowed, parse_allow
from tests.agi.conftest import Box, capture


def env_block(script: str, port: int, uniqueid: str = "1795370949.0", args: tuple[str, ...] = ()) -> bytes:
    lines = [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: agi://127.0.0.1:{port}/{script}",
        "agi_channel: Local/s@debtor-sim-00000000;1",
        f"agi_uniqueid: {uniqueid}",
        "agi_callerid: 79161234567",
        *(f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)),
    ]
    return ("\n".join(lines) + "\n\n").encode()


class Asterisk:
    """A scripted Asterisk end of one FastAGI connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def call(cls, port: int, script: str, *, local: str = "127.0.0.1", **kw: object) -> Asterisk:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
        writer.write(env_block(script, port, **kw))  # type: ignore[arg-type]
        await writer.drain()
        return cls(reader, writer)

    async def command(self) -> str:
        line = await asyncio.wait_for(self.reader.readline(), 5)
        assert line.endswith(b"\n"), f"connection ended: {line!r}"
        return line.decode()[:-1]

    async def reply(self, line: str) -> None:
        self.writer.write(line.encode() + b"\n")
        await self.writer.drain()

    async def expect_end(self) -> bytes:
        """The script half-closes; like Asterisk, send a last HANGUP and close."""
        rest = await asyncio.wait_for(self.reader.read(), 5)
        self.writer.write(b"HANGUP\n")
        self.writer.close()
        return rest


# --- allow-list ---------------------------------------------------------------------------------
def test_allow_list_matching() -> None:
    nets = parse_allow(["10.0.0.0/24", "127.0.0.1", "::1"])
    assert host_allowed("10.0.0.77", nets) and host_allowed("127.0.0.1", nets) and host_allowed("::1", nets)
    assert host_allowed("::ffff:127.0.0.1", nets)
    assert not host_allowed("10.0.1.1", nets) and not host_allowed("127.0.0.2", nets)
    assert not host_allowed("not-an-ip", nets)
    with pytest.raises(ValueError, match="10.0.0.300"):
        parse_allow(["10.0.0.300"])


async def test_allow_list_refuses_then_serves(agi_server, caplog: pytest.LogCaptureFixture) -> None:
    box = Box()

    async def handler(ch: AGIChannel) -> None:
        await ch.verbose("served")

    server = await agi_server({"t": capture(handler, box)}, allow=["127.0.0.2"])
    with caplog.at_level(logging.WARNING, logger="ivr.agi.server"):
        a = await Asterisk.call(server.port, "t")  # from 127.0.0.1: not allowed
        try:
            data = await asyncio.wait_for(a.reader.read(), 5)
        except ConnectionResetError:
            data = b""
        a.writer.close()
    assert data == b"" and box.calls == 0
    assert "refused connection from 127.0.0.1" in caplog.text

    a = await Asterisk.call(server.port, "t", local="127.0.0.2")  # the allowed host
    assert await a.command() == 'VERBOSE "served" 1'
    await a.reply("200 result=1")
    assert await a.expect_end() == b""
    await server.stop()
    box.check()

    box2 = Box()
    server = await agi_server({"t": capture(handler, box2)}, allow=["127.0.0.0/8"])
    a = await Asterisk.call(server.port, "t")
    assert await a.command() == 'VERBOSE "served" 1'
    await a.reply("200 result=1")
    await a.expect_end()
    await server.stop()
    box2.check()


# --- concurrency ----------------------------------------------------------------------------------
async def test_concurrent_sessions_each_get_their_own_replies(agi_server) -> None:
    n = 60
    seen: dict[str, str | None] = {}

    async def handler(ch: AGIChannel) -> None:
        uid = ch.env["agi_uniqueid"]
        await ch.set_variable("UID", uid)
        seen[uid] = await ch.get_variable("UID")

    server = await agi_server({"t": handler})
    everyone_in = asyncio.Event()
    arrived = 0

    async def one(i: int) -> None:
        nonlocal arrived
        uid = f"1795370949.{i}"
        a = await Asterisk.call(server.port, "t", uniqueid=uid)
        assert await a.command() == f'SET VARIABLE UID "{uid}"'
        arrived += 1
        if arrived == n:
            everyone_in.set()
        await everyone_in.wait()  # all n calls are in progress at the same time
        await a.reply("200 result=1")
        assert await a.command() == "GET VARIABLE UID"
        await a.reply(f"200 result=1 ({uid})")
        assert await a.expect_end() == b""

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    await asyncio.wait_for(everyone_in.wait(), 10)
    assert server.active_calls == n
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert seen == {f"1795370949.{i}": f"1795370949.{i}" for i in range(n)}


# --- stop --------------------------------------------------------------------------------------------
async def test_graceful_stop_lets_call_finish(agi_server) -> None:
    box = Box()

    async def handler(ch: AGIChannel) -> None:
        await ch.verbose("in progress")
        await ch.noop()

    server = await agi_server({"t": capture(handler, box)})
    a = await Asterisk.call(server.port, "t")
    assert await a.command() == 'VERBOSE "in progress" 1'
    stopping = asyncio.create_task(server.stop(grace=10))
    await asyncio.sleep(0)  # stop() closed the listening socket synchronously
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", server.port)
    assert not stopping.done() and server.active_calls == 1
    await a.reply("200 result=1")
    assert await a.command() == "NOOP"
    await a.reply("200 result=0")
    await a.expect_end()
    await asyncio.wait_for(stopping, 30)
    box.check()
    assert server.active_calls == 0


async def test_stop_cancels_after_grace(agi_server) -> None:
    box = Box()

    async def handler(ch: AGIChannel) -> None:
        await ch.wait_for_digit(-1)  # Asterisk never answers

    server = await agi_server({"t": capture(handler, box)})
    a = await Asterisk.call(server.port, "t")
    assert await a.command() == "WAIT FOR DIGIT -1"
    ending = asyncio.create_task(a.expect_end())  # Asterisk closes once the script half-closes
    await asyncio.wait_for(server.stop(grace=0.2), 5)
    assert isinstance(box.error, asyncio.CancelledError)
    assert await ending == b""


# --- bad routes, failing handlers, time limits ---------------------------------------------------
async def test_unknown_route(agi_server, caplog: pytest.LogCaptureFixture) -> None:
    server = await agi_server({"t": capture(lambda ch: ch.noop(), Box())})
    with caplog.at_level(logging.WARNING, logger="ivr.agi.server"):
        a = await Asterisk.call(server.port, "nope?x=1")
        assert await a.command() == 'VERBOSE "ivr: unknown route nope" 1'
        await a.reply("200 result=1")
        assert await a.expect_end() == b""
    assert "unknown route 'nope'" in caplog.text


async def test_handler_exception_is_logged_and_server_keeps_serving(agi_server, caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def boom(ch: AGIChannel) -> None:
        nonlocal calls
        calls += 1
        await ch.noop()
        raise RuntimeError("kaput")

    server = await agi_server({"boom": boom})
    with caplog.at_level(logging.ERROR, logger="ivr.agi.server"):
        for _ in range(2):
            a = await Asterisk.call(server.port, "boom")
            assert await a.command() == "NOOP"
            await a.reply("200 result=0")
            assert await a.expect_end() == b""
    assert calls == 2
    failures = [r for r in caplog.records if "AGI route boom: handler failed" in r.getMessage()]
    assert len(failures) == 2 and failures[0].exc_info is not None


async def test_session_timeout(agi_server, caplog: pytest.LogCaptureFixture) -> None:
    async def forever(ch: AGIChannel) -> None:
        await ch.wait_for_hangup()

    server = await agi_server({"t": forever}, session_timeout=0.2)
    with caplog.at_level(logging.WARNING, logger="ivr.agi.server"):
        a = await Asterisk.call(server.port, "t")
        assert await a.expect_end() == b""
    assert "exceeded" in caplog.text


async def test_environment_timeout_closes_silent_connection(agi_server) -> None:
    server = await agi_server({}, env_timeout=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: yes\n")  # never finishes the block
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_half_close_then_close_without_waiting_forever(agi_server) -> None:
    server = await agi_server({"t": lambda ch: ch.noop()}, close_timeout=0.2)
    a = await Asterisk.call(server.port, "t")
    assert await a.command() == "NOOP"
    await a.reply("200 result=0")
    assert await asyncio.wait_for(a.reader.read(), 5) == b""  # half-closed
    # we (Asterisk) never close: the server closes on its own after close_timeout
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30  # bounds a hang only
    while server.connections and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert not server.connections
    a.writer.close()


async def test_context_manager_and_ephemeral_port() -> None:
    async with FastAGIServer({}, port=0) as server:
        assert server.port > 0
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.close()
