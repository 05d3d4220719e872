"""What one FastAGI peer may cost: environment deadline and size, reply deadlines, the connection
cap, newline floods, stray lines, and the log staying quiet (rate-limited) under all of them."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ivr.agi.channel import AGIChannel, ReplyDeadlines
from ivr.agi.server import AGILimits, FastAGIServer
from ivr.config import ConfigError, load_settings
from tests.agi.conftest import Box, capture
from tests.agi.test_server import Asterisk


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent before closing (a reset counts as closed with nothing)."""
    try:
        return await asyncio.wait_for(reader.read(), 10)
    except ConnectionResetError:
        return b""


async def wait_until(predicate, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING and text in r.getMessage()]


# --- environment block -------------------------------------------------------------------------
async def test_newline_only_connections_are_closed_without_a_session(agi_server, caplog) -> None:  # type: ignore[no-untyped-def]
    box = Box()
    server = await agi_server({"": capture(lambda ch: ch.noop(), box)})
    with caplog.at_level(logging.WARNING):
        for _ in range(30):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"\n" * 50)
            # nothing is sent back: no VERBOSE, no command to a peer that named no request
            assert await closed_by_server(reader) == b""
            writer.close()
    assert box.calls == 0 and server.active_calls == 0
    lines = warnings_about(caplog, "names no request")
    assert 1 <= len(lines) <= 2, "one line per interval, not one per connection"


async def test_environment_block_size_is_capped(agi_server) -> None:  # type: ignore[no-untyped-def]
    box = Box()
    server = await agi_server({"t": capture(lambda ch: ch.noop(), box)},
                              limits=AGILimits(env_max_lines=40, env_max_bytes=2048, env_timeout=60))
    for flood in (b"agi_x: y\n" * 41,  # too many lines (and no blank line to end them)
                  b"agi_network_script: t\n" + b"a" * 4096,  # one endless line
                  b"agi_network_script: t\n" + b"agi_arg_1: " + b"x" * 2100 + b"\n\n"):  # too many bytes
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(flood)
        assert await closed_by_server(reader) == b""
        writer.close()
    assert box.calls == 0
    # a block inside the limits is still served
    a = await Asterisk.call(server.port, "t", args=("call-1",))
    assert await a.command() == "NOOP"
    await a.reply("200 result=0")
    assert await a.expect_end() == b""
    await server.stop()
    box.check()


async def test_partial_environment_times_out(agi_server) -> None:  # type: ignore[no-untyped-def]
    server = await agi_server({}, limits=AGILimits(env_timeout=0.2))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_network: yes\n")
    assert await closed_by_server(reader) == b""
    writer.close()


# --- reply deadlines ---------------------------------------------------------------------------
def test_reply_deadlines_follow_the_command() -> None:
    d = ReplyDeadlines(quick=30, media=600)
    assert d.for_line('VERBOSE "x" 1') == 30 and d.for_line("GET VARIABLE AMDSTATUS") == 30
    assert d.for_line("get full variable ${X}") == 30  # Asterisk's command words are case-insensitive
    assert d.for_line("GET DATA beep 5000 4") == 600 + 20  # the prompt, then up to 5 s per digit
    assert d.for_line("GET DATA beep") == 600 + 10  # default digit timeout
    assert d.for_line('STREAM FILE debt-message "0123456789*#"') == 600
    assert d.for_line("WAIT FOR DIGIT 6000") == 606
    assert d.for_line("WAIT FOR DIGIT -1") is None  # waits by design; the session deadline bounds it
    assert d.for_line("GET DATA beep x y") == 600  # unparsable: still the media deadline
    with pytest.raises(ValueError):
        ReplyDeadlines(quick=0)


async def test_unknown_route_with_a_silent_peer_is_timed_out(agi_server, caplog) -> None:  # type: ignore[no-untyped-def]
    server = await agi_server({}, limits=AGILimits(reply_quick=0.2))
    with caplog.at_level(logging.WARNING):
        a = await Asterisk.call(server.port, "nope")
        assert await a.command() == 'VERBOSE "ivr: unknown route nope" 1'
        # no reply ever: the server gives up, half-closes and then closes
        assert await closed_by_server(a.reader) == b""
        a.writer.close()
    await wait_until(lambda: not server.connections, "connection closed")
    assert warnings_about(caplog, "unknown route 'nope'")
    assert warnings_about(caplog, "no reply to")


async def test_silent_peer_during_a_prompt_ends_the_call_as_a_hangup(agi_server) -> None:  # type: ignore[no-untyped-def]
    seen: dict[str, object] = {}

    async def handler(ch: AGIChannel) -> None:
        from ivr.agi.channel import AGIHangup

        try:
            await ch.get_data("beep", 100, 2)
        except AGIHangup as exc:
            seen["hangup"] = str(exc)
        seen["sent_after"] = ch.commands_sent

    box = Box()
    server = await agi_server({"t": capture(handler, box)}, limits=AGILimits(reply_media=0.2))
    a = await Asterisk.call(server.port, "t")
    assert await a.command() == "GET DATA beep 100 2"
    assert await closed_by_server(a.reader) == b""  # never answered: the session ends
    a.writer.close()
    await server.stop()
    box.check()
    assert "no reply from Asterisk" in str(seen["hangup"]) and seen["sent_after"] == 1


# --- hostile lines after the environment -------------------------------------------------------------
async def test_stray_line_flood_is_cut_off_and_logged_once(agi_server, caplog) -> None:  # type: ignore[no-untyped-def]
    release = asyncio.Event()

    async def handler(ch: AGIChannel) -> None:
        await release.wait()  # idle: every line the peer sends answers nothing

    server = await agi_server({"t": handler})
    with caplog.at_level(logging.WARNING):
        a = await Asterisk.call(server.port, "t")
        a.writer.write(b"200 result=0\n" * 10_000)
        await a.writer.drain()
        assert await closed_by_server(a.reader) == b""
        a.writer.close()
    release.set()
    assert len(warnings_about(caplog, "no command pending")) <= 2


async def test_garbage_reply_ends_the_call_without_a_traceback(agi_server, caplog) -> None:  # type: ignore[no-untyped-def]
    from ivr.agi.channel import AGIHangup

    seen: list[str] = []

    async def handler(ch: AGIChannel) -> None:
        try:
            await ch.noop()
        except AGIHangup as exc:
            seen.append(str(exc))

    box = Box()
    server = await agi_server({"t": capture(handler, box)})
    with caplog.at_level(logging.WARNING):
        a = await Asterisk.call(server.port, "t")
        assert await a.command() == "NOOP"
        await a.reply("HELLO THERE")
        assert await a.expect_end() == b""
    await server.stop()
    box.check()
    assert seen and "not an AGI reply" in seen[0]
    assert not [r for r in caplog.records if r.exc_info]


# --- connection cap ----------------------------------------------------------------------------------
async def test_connection_cap_refuses_the_next_and_recovers(agi_server, caplog) -> None:  # type: ignore[no-untyped-def]
    box = Box()
    server = await agi_server({"t": capture(lambda ch: ch.noop(), box)},
                              limits=AGILimits(max_connections=3, env_timeout=60))
    idle = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(3)]
    await wait_until(lambda: len(server.connections) == 3, "three idle connections accepted")
    with caplog.at_level(logging.WARNING):
        for _ in range(20):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            assert await closed_by_server(reader) == b""
            writer.close()
    assert 1 <= len(warnings_about(caplog, "IVR_AGI_MAX_CONNECTIONS")) <= 2
    assert len(server.connections) == 3

    idle[0][1].close()  # one slot frees up: a call gets it
    await wait_until(lambda: len(server.connections) == 2, "slot freed")
    a = await Asterisk.call(server.port, "t")
    assert await a.command() == "NOOP"
    await a.reply("200 result=0")
    assert await a.expect_end() == b""
    for _, writer in idle[1:]:
        writer.close()
    await server.stop()
    box.check()


def test_limit_settings_fail_loudly() -> None:
    s = load_settings(None, environ={"IVR_AGI_MAX_CONNECTIONS": "2500", "IVR_AGI_ENV_TIMEOUT": "3",
                                     "IVR_AGI_MEDIA_TIMEOUT": "900"})
    limits = AGILimits.from_settings(s)
    assert (limits.max_connections, limits.env_timeout, limits.reply_media) == (2500, 3.0, 900.0)
    assert AGILimits.from_settings(load_settings(None, environ={})) == AGILimits()
    for key, value in (("IVR_AGI_MAX_CONNECTIONS", "0"), ("IVR_AGI_MAX_CONNECTIONS", "many"),
                       ("IVR_AGI_ENV_TIMEOUT", "nan"), ("IVR_AGI_REPLY_TIMEOUT", "inf"),
                       ("IVR_AGI_ENV_MAX_BYTES", "10"), ("IVR_AGI_ENV_MAX_LINES", "-1"),
                       ("IVR_AGI_SESSION_TIMEOUT", "0")):
        with pytest.raises(ConfigError, match=key):
            load_settings(None, environ={key: value})


async def test_server_built_from_settings_uses_them() -> None:
    limits = AGILimits.from_settings(load_settings(None, environ={"IVR_AGI_MAX_CONNECTIONS": "7"}))
    server = FastAGIServer({}, port=0, limits=limits, close_timeout=1.0)
    assert server.limits.max_connections == 7 and server.close_timeout == 1.0


async def test_server_raises_its_open_file_limit_to_fit_the_cap(caplog) -> None:  # type: ignore[no-untyped-def]
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 512), hard))
    try:
        with caplog.at_level(logging.WARNING, logger="ivr.agi.server"):
            async with FastAGIServer({}, port=0, limits=AGILimits(max_connections=2000)):
                now, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard >= 2256:
            assert now == 2256 and not warnings_about(caplog, "open files")
        else:  # the hard limit does not allow it: the server says what to change
            assert now == hard and warnings_about(caplog, "IVR_AGI_MAX_CONNECTIONS=2000")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_entry_point_freezes_start_up_objects_and_makes_full_collections_rare() -> None:
    """`ivr agi-server` calls freeze_startup_objects(): full collections stalled every call for
    65-134 ms at 2,000 calls held, so they come after 1000 middle-generation collections, not 10."""
    import gc

    from ivr.agi.server import FULL_COLLECTION_EVERY, freeze_startup_objects

    before = gc.get_threshold()
    try:
        freeze_startup_objects()
        young, middle, full = gc.get_threshold()
        assert (young, middle) == before[:2] and full == FULL_COLLECTION_EVERY >= 1000
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
