"""AGIChannel over an in-memory wire: ordering of notices and replies, hang-up rules, errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import pytest

from ivr.agi import protocol as p
from ivr.agi.channel import AGIChannel, AGICommandError, AGIHangup, DigitResult

DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"


class Wire:
    """Both ends in memory: what the channel wrote, and a way to play Asterisk's bytes."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.sent = bytearray()
        self.channel = AGIChannel(env or {"agi_network_script": "t"}, self.sent.extend)
        self.splitter = p.LineSplitter()

    def feed(self, data: bytes) -> None:
        for line in self.splitter.feed(data):
            self.channel.feed_line(line)

    def lines(self) -> list[str]:
        return self.sent.decode().splitlines()

    async def start(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        await asyncio.sleep(0)  # let it write its command
        return task


@pytest.mark.parametrize("chunk", [1, 3, 100])
async def test_notice_between_command_and_reply_any_chunking(chunk: int) -> None:
    w = Wire()
    task = await w.start(w.channel.get_variable("AGISIGHUP"))
    data = b"HANGUP\n200 result=0\n"
    for i in range(0, len(data), chunk):
        w.feed(data[i : i + chunk])
    assert await task is None  # its own reply, not the notice
    assert w.channel.hung_up
    with pytest.raises(AGIHangup):
        await w.channel.noop()
    assert w.lines() == ["GET VARIABLE AGISIGHUP"]


async def test_minus_one_with_notice_already_seen_skips_probe() -> None:
    w = Wire()
    task = await w.start(w.channel.stream_file("demo-congrats", "0123456789*#"))
    w.feed(b"200 result=-1 endpos=24160\nHANGUP\n")
    with pytest.raises(AGIHangup):
        await task
    assert w.lines() == ['STREAM FILE demo-congrats "0123456789*#"']


async def test_minus_one_probe_dead() -> None:
    w = Wire()
    task = await w.start(w.channel.get_data("beep", 10000, 4))
    w.feed(b"200 result=-1\n")
    await asyncio.sleep(0)
    assert w.lines() == ["GET DATA beep 10000 4", "CHANNEL STATUS"]
    w.feed(DEAD)
    with pytest.raises(AGIHangup):
        await task
    assert w.channel.hung_up


async def test_minus_one_probe_live_is_missing_file(caplog: pytest.LogCaptureFixture) -> None:
    w = Wire()
    for call, expected in ((w.channel.stream_file("no-such", "12"), None),
                           (w.channel.get_data("no-such", 3000, 4), DigitResult("", True)),
                           (w.channel.say_digits("12"), None),
                           (w.channel.wait_for_digit(100), None)):
        task = await w.start(call)
        w.feed(b"200 result=-1 endpos=0\n")
        await asyncio.sleep(0)
        w.feed(b"200 result=6\n")
        with caplog.at_level(logging.WARNING):
            assert await task == expected
    assert not w.channel.hung_up
    assert w.lines().count("CHANNEL STATUS") == 4
    assert "missing sound file" in caplog.text


async def test_511_marks_hung_up_and_silences_channel() -> None:
    w = Wire()
    task = await w.start(w.channel.say_number(5))
    w.feed(DEAD)
    with pytest.raises(AGIHangup):
        await task
    assert w.channel.hung_up
    before = bytes(w.sent)
    for call in (w.channel.set_variable("A", "b"), w.channel.hangup(), w.channel.run_command("NOOP")):
        with pytest.raises(AGIHangup):
            await call
    assert bytes(w.sent) == before


async def test_eof_mid_command() -> None:
    w = Wire()
    task = await w.start(w.channel.wait_for_digit(5000))
    w.channel.feed_eof()
    with pytest.raises(AGIHangup):
        await task
    assert w.channel.hung_up
    assert await w.channel.wait_for_hangup(0.01)


async def test_write_failure_is_hangup() -> None:
    def broken(data: bytes) -> None:
        raise BrokenPipeError

    ch = AGIChannel({}, broken)
    with pytest.raises(AGIHangup):
        await ch.answer()
    assert ch.hung_up


async def test_error_codes() -> None:
    w = Wire()
    task = await w.start(w.channel.run_command("xyzzy"))
    w.feed(b"510 Invalid or unknown command\n")
    with pytest.raises(AGICommandError) as info:
        await task
    assert (info.value.code, info.value.message, info.value.command) == (510, "Invalid or unknown command", "xyzzy")
    task = await w.start(w.channel.run_command("GET OPTION"))
    w.feed(b"520 Invalid command syntax.  Proper usage not available.\n")
    with pytest.raises(AGICommandError) as info:
        await task
    assert info.value.code == 520
    task = await w.start(w.channel.noop())
    w.feed(b"503 result=-2 Memory allocation failure\n")
    with pytest.raises(AGICommandError) as info:
        await task
    assert info.value.code == 503
    assert not w.channel.hung_up


async def test_one_command_at_a_time() -> None:
    w = Wire()
    first = await w.start(w.channel.noop())
    with pytest.raises(RuntimeError):
        await w.channel.noop()
    w.feed(b"200 result=0\n")
    await first
    assert w.lines() == ["NOOP"]


async def test_cancelled_command_desyncs_channel(caplog: pytest.LogCaptureFixture) -> None:
    w = Wire()
    task = await w.start(w.channel.get_variable("X"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with caplog.at_level(logging.WARNING):
        w.feed(b"200 result=1 (late)\n")  # the late reply is dropped, never paired with later commands
    assert "no command pending" in caplog.text
    with pytest.raises(AGIHangup):
        await w.channel.noop()
    assert w.lines() == ["GET VARIABLE X"]


async def test_validation_sends_nothing() -> None:
    w = Wire()
    with pytest.raises(ValueError):
        await w.channel.stream_file("two words")
    with pytest.raises(ValueError):
        await w.channel.set_variable("BAD\nNAME", "x")
    assert w.sent == b""


async def test_exec_and_variables() -> None:
    w = Wire()
    task = await w.start(w.channel.exec("NoSuchApplication", "foo"))
    w.feed(b"200 result=-2\n")
    assert await task == -2
    task = await w.start(w.channel.get_full_variable("${X}"))
    w.feed(b"200 result=1 ()\n")
    assert await task == ""
    task = await w.start(w.channel.get_variable("X"))
    w.feed(b"200 result=1 (a (b) c)\n")
    assert await task == "a (b) c"


async def test_channel_identity_from_env() -> None:
    env = {"agi_network_script": "debt-call?campaign=7&lang=ru", "agi_arg_1": "call-42", "agi_arg_2": "",
           "agi_uniqueid": "1795370949.0"}
    ch = AGIChannel(env, bytearray().extend)
    assert ch.script == "debt-call"
    assert ch.query == {"campaign": "7", "lang": "ru"}
    assert ch.args == ["call-42", ""]
    assert ch.env["agi_uniqueid"] == "1795370949.0"
    with pytest.raises(TypeError):
        ch.env["x"] = "y"  # type: ignore[index]


async def test_wait_for_hangup_times_out() -> None:
    w = Wire()
    assert not await w.channel.wait_for_hangup(0.01)
    w.feed(b"HANGUP\n")
    assert await w.channel.wait_for_hangup(0.01)


async def test_from_streams_over_a_socketpair(transcripts) -> None:  # type: ignore[no-untyped-def]
    """The stream factory (for simulators): environment, notice ordering, EOF."""
    import socket

    from tests.agi.replay import load

    t = load(transcripts, "agi-hangup-getdata")
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours)
    a_reader, a_writer = await asyncio.open_connection(sock=theirs)
    a_writer.write(("".join(f"{line}\n" for line in t.env_lines) + "\n").encode())
    ch = await AGIChannel.from_streams(reader, writer)
    assert ch.script == "hangup-getdata" and dict(ch.env) == t.env
    task = asyncio.ensure_future(ch.get_variable("AGISIGHUP"))
    assert await a_reader.readline() == b"GET VARIABLE AGISIGHUP\n"
    a_writer.write(b"HANGUP\n200 result=0\n")
    assert await task is None and ch.hung_up
    a_writer.close()
    assert ch.pump_task is not None
    await asyncio.wait_for(ch.pump_task, 30)
    writer.close()
