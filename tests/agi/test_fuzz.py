"""Hostile and random bytes from the Asterisk side: the reply parser, the line splitter, the
channel and the real FastAGI server never let anything but their own error types out, never log a
traceback, and always end the connection within its deadlines."""

from __future__ import annotations

import asyncio
import logging

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ivr.agi import protocol as p
from ivr.agi import ratelog
from ivr.agi.channel import AGIChannel, AGICommandError, AGIHangup, ReplyDeadlines
from ivr.agi.server import AGILimits, FastAGIServer

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SESSIONS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.function_scoped_fixture])

# Lines that look like Asterisk's (so the fuzzer gets past the first check) mixed with noise.
REAL_LINES = ["200 result=0", "200 result=1 (a (b) c)", "200 result=-1 endpos=24160", "200 result= (timeout)",
              "510 Invalid or unknown command", "511 Command Not Permitted on a dead channel or intercept routine",
              "520-Invalid command syntax.  Proper usage follows:", "520 End of proper usage.", "HANGUP",
              "200 result=53 endpos=17760", "200", "200 result=1 (", "200 result=x endpos=y", ""]
lines = st.one_of(st.sampled_from(REAL_LINES), st.text(max_size=80).map(lambda s: s.replace("\n", " ")))
raw_bytes = st.one_of(st.binary(max_size=400),
                      st.lists(lines, max_size=12).map(lambda ls: "".join(f"{x}\n" for x in ls).encode()))


@FUZZ
@given(st.text(max_size=200))
def test_reply_parser_raises_only_its_own_error(line: str) -> None:
    try:
        reply = p.parse_reply(line)
    except p.AGIProtocolError:
        return
    assert reply.code >= 0
    try:
        assert isinstance(reply.result_int, int)
    except p.AGIProtocolError:
        pass


@FUZZ
@given(st.text(max_size=200))
@example("GET DATA beep " + "9" * 400 + " 5")  # once an OverflowError computing the deadline
@example("WAIT FOR DIGIT " + "9" * 5000)  # beyond int()'s digit limit
def test_env_and_command_helpers_never_raise(text: str) -> None:
    p.parse_env_line(text)
    p.route_from_env({p.ENV_NETWORK_SCRIPT: text})
    p.route_from_env({p.ENV_REQUEST: text})
    p.is_quick(text)
    wait = p.reply_wait_ms(text)
    assert wait is None or wait >= 0
    ReplyDeadlines().for_line(text)


@FUZZ
@given(st.lists(st.binary(max_size=64), max_size=20), st.integers(min_value=1, max_value=128))
def test_line_splitter_any_bytes(chunks: list[bytes], max_line: int) -> None:
    splitter = p.LineSplitter(max_line=max_line)
    for chunk in chunks:
        try:
            for line in splitter.feed(chunk):
                assert "\n" not in line
        except p.AGIProtocolError:
            return
        assert len(splitter.pending) <= max_line


@FUZZ
@given(st.lists(lines, max_size=15))
def test_channel_command_ends_with_a_reply_or_its_own_errors(replies: list[str]) -> None:
    async def scenario() -> None:
        written = bytearray()
        channel = AGIChannel({p.ENV_NETWORK_SCRIPT: "t"}, written.extend, deadlines=ReplyDeadlines(quick=0.05, media=0.05))

        async def feed() -> None:
            await asyncio.sleep(0)
            for line in replies:
                channel.feed_line(line)
            channel.feed_eof()

        feeder = asyncio.ensure_future(feed())
        for command in (channel.get_data("beep", 10, 2), channel.get_variable("X"), channel.exec("Playback", "x")):
            try:
                await command
            except (AGIHangup, AGICommandError):
                pass
        await feeder

    asyncio.run(scenario())


class _LoopErrors:
    def __init__(self) -> None:
        self.contexts: list[dict[str, object]] = []

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        self.contexts.append(context)


async def _session(env: bytes, rest: bytes, errors: _LoopErrors) -> None:
    asyncio.get_running_loop().set_exception_handler(errors)

    async def handler(ch: AGIChannel) -> None:
        try:
            await ch.answer()
            await ch.get_data("beep", 100, 4)
            await ch.set_variable("IVR_RESULT", "x")
            await ch.get_variable("IVR_RESULT")
            await ch.hangup()
        except (AGIHangup, AGICommandError):
            pass

    limits = AGILimits(env_timeout=0.3, reply_quick=0.3, reply_media=0.3, close_timeout=0.3,
                       env_max_lines=64, env_max_bytes=4096)
    server = FastAGIServer({"t": handler}, port=0, limits=limits)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(env + rest)
            await writer.drain()
            writer.write_eof()
            async with asyncio.timeout(20):  # every phase has a deadline: the server closes
                while await reader.read(4096):
                    pass
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
        async with asyncio.timeout(20):
            while server.connections or server.active_calls:
                await asyncio.sleep(0.01)
    finally:
        await server.stop(grace=5)


ENV_BLOCKS = st.sampled_from([
    b"",
    b"agi_network: yes\nagi_network_script: t\nagi_arg_1: call-1\n\n",
    b"agi_network_script: t\n\n",
    b"agi_network_script: nope\n\n",
    b"\n",
    b"agi_request: agi://127.0.0.1/t\n\n",
])


@SESSIONS
@given(ENV_BLOCKS, raw_bytes)
def test_fastagi_session_with_hostile_bytes(caplog: pytest.LogCaptureFixture, env: bytes, rest: bytes) -> None:
    ratelog.reset_all()
    caplog.clear()
    errors = _LoopErrors()
    with caplog.at_level(logging.DEBUG, logger="ivr"):
        asyncio.run(_session(env, rest, errors))
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
    assert not errors.contexts, errors.contexts
