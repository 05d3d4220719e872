"""Classic AGI relayed to a FastAGI server: the spawned process (a real subprocess, as Asterisk
runs it) passes the recorded environment and every byte on, turns SIGHUP into a HANGUP notice;
it relays by default to the server the settings name, and when no server takes the call it runs
the call in process with the environment it already read."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ivr.agi import relay
from ivr.agi.channel import AGIChannel
from ivr.agi.server import FastAGIServer
from tests.agi.conftest import Box, capture
from tests.agi.replay import load

REPO = Path(__file__).resolve().parents[2]
StartServer = Callable[..., Awaitable[FastAGIServer]]


def env_bytes(transcripts: Path, name: str = "agi-env-args") -> bytes:
    t = load(transcripts, name)
    return ("".join(f"{line}\n" for line in t.env_lines) + "\n").encode()


async def spawn(*argv: str, relay_url: str | None, env_file: Path | None = None) -> asyncio.subprocess.Process:
    """`env_file`: the settings file (IVR_ENV_FILE); none given = one that does not exist, so no
    test ever relays to whatever listens on the default port of this (shared) machine."""
    env = {k: v for k, v in os.environ.items() if k != "IVR_CLASSIC_RELAY" and not k.startswith("IVR_AGI_")}
    env["IVR_ENV_FILE"] = str(env_file or REPO / "tests" / "no-such.env")
    if relay_url is not None:
        env["IVR_CLASSIC_RELAY"] = relay_url
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ivr.agi.classic", *argv, cwd=REPO, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def line(proc: asyncio.subprocess.Process) -> bytes:
    assert proc.stdout is not None
    return await asyncio.wait_for(proc.stdout.readline(), 30)


def send(proc: asyncio.subprocess.Process, data: bytes) -> None:
    assert proc.stdin is not None
    proc.stdin.write(data)


async def test_relay_passes_route_args_query_and_replies(transcripts: Path, agi_server: StartServer) -> None:
    box = Box()

    async def handler(ch: AGIChannel) -> None:
        box.values.update(script=ch.script, args=ch.args, query=ch.query, uniqueid=ch.env.get("agi_uniqueid"),
                          callerid=ch.env.get("agi_callerid"), network=ch.env.get("agi_network"))
        box.values["reply"] = await ch.get_variable("CHANNEL(language)")
        await ch.noop()

    server = await agi_server({"probe": capture(handler, box)})
    proc = await spawn("probe?lang=ru", "first arg", "42", "", relay_url=f"agi://127.0.0.1:{server.port}")
    send(proc, env_bytes(transcripts))
    assert await line(proc) == b"GET VARIABLE CHANNEL(language)\n"
    send(proc, b"200 result=1 (en)\n")  # recorded in agi-basic-commands.txt
    assert await line(proc) == b"NOOP\n"
    send(proc, b"200 result=0\n")
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    assert proc.stdout is not None and proc.stderr is not None
    assert await proc.stdout.read() == b""
    assert await proc.stderr.read() == b""
    box.check()
    recorded = load(transcripts, "agi-env-args").env
    assert box.values == {"script": "probe", "args": ["first arg", "42", ""], "query": {"lang": "ru"},
                          "uniqueid": recorded["agi_uniqueid"], "callerid": recorded["agi_callerid"],
                          "network": "yes", "reply": "en"}


async def test_sighup_reaches_the_script_as_a_hangup(transcripts: Path, agi_server: StartServer) -> None:
    box = Box()

    async def handler(ch: AGIChannel) -> None:
        await ch.verbose("waiting")
        box.values["hung_up"] = await ch.wait_for_hangup(20)

    server = await agi_server({"wait": capture(handler, box)})
    proc = await spawn("wait", relay_url=f"agi://127.0.0.1:{server.port}")
    send(proc, env_bytes(transcripts))
    assert await line(proc) == b'VERBOSE "waiting" 1\n'
    send(proc, b"200 result=1\n")
    await asyncio.sleep(0.2)  # the reply is on its way: the HANGUP must not cut into it either way
    proc.send_signal(signal.SIGHUP)
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    box.check()
    assert box.values == {"hung_up": True}


ECHO_FIRST = b"VERBOSE \"ivr echo: route=echo args=['first arg', '42'] query={'lang': 'ru'}\" 1\n"


async def run_echo_in_process(proc: asyncio.subprocess.Process, transcripts: Path) -> str:
    """Drive the built-in `echo` route as Asterisk would; returns stderr. The environment is sent
    once: if the in-process path read stdin again instead of taking what the relay had read, it
    would wait for it forever and the first `line` would time out."""
    send(proc, env_bytes(transcripts))
    assert await line(proc) == ECHO_FIRST  # the in-process echo: the server has no such route
    send(proc, b"200 result=1\n")
    assert await line(proc) == b"NOOP\n"
    send(proc, b"200 result=0\n")
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    assert proc.stdout is not None and proc.stderr is not None
    assert await proc.stdout.read() == b""
    return (await proc.stderr.read()).decode()


def closed_port() -> socket.socket:
    """A port bound but not listening: a connection to it is refused, and nobody else gets it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def fallback_warning(err: str, where: str) -> None:
    assert err.count("\n") == 1, err  # one line, nothing else (no caller number either)
    assert err.startswith(f"ivr classic AGI: FastAGI server at {where} not reachable (")
    assert err.endswith(": running this call in process (slow start)\n")


async def test_default_relays_to_the_server_named_in_the_env_file(transcripts: Path, agi_server: StartServer,
                                                                  tmp_path: Path) -> None:
    box = Box()

    async def handler(ch: AGIChannel) -> None:
        box.values.update(args=ch.args, network=ch.env.get("agi_network"))
        await ch.verbose("from the server")

    server = await agi_server({"echo": capture(handler, box)})
    env_file = tmp_path / "robot.env"
    # the bind address of `ivr run`: a wildcard, which the relay turns into loopback
    env_file.write_text(f"IVR_DATABASE_URL=sqlite:///x.db\nIVR_AGI_HOST=0.0.0.0\nIVR_AGI_PORT={server.port}\n")
    proc = await spawn("echo?lang=ru", "first arg", "42", relay_url=None, env_file=env_file)
    send(proc, env_bytes(transcripts))
    assert await line(proc) == b'VERBOSE "from the server" 1\n'
    send(proc, b"200 result=1\n")
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    assert proc.stderr is not None and await proc.stderr.read() == b""
    box.check()
    assert box.values == {"args": ["first arg", "42"], "network": "yes"}


@pytest.mark.parametrize("how", ["env", "flag"])
async def test_off_runs_in_process_even_with_a_server(transcripts: Path, agi_server: StartServer, tmp_path: Path,
                                                       how: str) -> None:
    box = Box()

    async def handler(ch: AGIChannel) -> None:
        await ch.verbose("from the server")

    server = await agi_server({"echo": capture(handler, box)})
    env_file = tmp_path / "robot.env"
    env_file.write_text(f"IVR_AGI_PORT={server.port}\n")
    if how == "env":
        proc = await spawn("echo?lang=ru", "first arg", "42", relay_url="OFF", env_file=env_file)
    else:
        proc = await spawn("--in-process", "echo?lang=ru", "first arg", "42", relay_url=None, env_file=env_file)
    assert await run_echo_in_process(proc, transcripts) == ""  # no warning: in process was asked for
    assert box.calls == 0 and server.connections == set()


async def test_unreachable_default_server_falls_back_in_process(transcripts: Path, tmp_path: Path) -> None:
    with closed_port() as sock:
        port = sock.getsockname()[1]
        env_file = tmp_path / "robot.env"
        env_file.write_text(f"IVR_AGI_PUBLIC_URL=agi://127.0.0.1:{port}\n")
        proc = await spawn("echo?lang=ru", "first arg", "42", relay_url=None, env_file=env_file)
        err = await run_echo_in_process(proc, transcripts)
    fallback_warning(err, f"127.0.0.1:{port}")
    assert "Connection refused" in err


async def test_unreachable_explicit_relay_falls_back_too(transcripts: Path) -> None:
    with closed_port() as sock:
        port = sock.getsockname()[1]
        proc = await spawn("echo?lang=ru", "first arg", "42", relay_url=f"agi://127.0.0.1:{port}")
        err = await run_echo_in_process(proc, transcripts)
    fallback_warning(err, f"127.0.0.1:{port}")


async def test_bad_relay_url_falls_back(transcripts: Path) -> None:
    proc = await spawn("echo?lang=ru", "first arg", "42", relay_url="http://127.0.0.1:1")
    err = await run_echo_in_process(proc, transcripts)
    fallback_warning(err, "http://127.0.0.1:1")


async def test_reset_at_accept_falls_back(transcripts: Path) -> None:
    """A server that refuses us once connected (its allow list, its connection cap) resets the
    connection without reading the call: the call must not end there with exit 0 and no word."""
    got_env = asyncio.Event()

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # the block arrived: a close now resets, whatever the timing
        got_env.set()
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    refuser = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = refuser.sockets[0].getsockname()[1]
    try:
        proc = await spawn("echo?lang=ru", "first arg", "42", relay_url=f"agi://127.0.0.1:{port}")
        err = await run_echo_in_process(proc, transcripts)
    finally:
        refuser.close()
        await refuser.wait_closed()
    assert got_env.is_set()
    fallback_warning(err, f"127.0.0.1:{port}")
    assert "connection reset before the call started" in err


def test_relay_imports_only_the_standard_library() -> None:
    import subprocess

    code = ("import sys, ivr.agi.classic, ivr.agi.relay; "
            "print(sorted(m for m in sys.modules if m.startswith(('ivr', 'asyncio', 'sqlalchemy', 'asterisk'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=30, check=True)
    assert out.stdout.strip() == "['ivr', 'ivr.agi', 'ivr.agi.classic', 'ivr.agi.relay']"


@pytest.mark.parametrize(("url", "expected"), [
    ("agi://127.0.0.1:4600", ("127.0.0.1", 4600)),
    ("agi://robot.example.net", ("robot.example.net", 4573)),
    ("agi://[::1]:4573/", ("::1", 4573)),
])
def test_parse_url(url: str, expected: tuple[str, int]) -> None:
    assert relay.parse_url(url) == expected


@pytest.mark.parametrize("url", ["http://x:1", "agi://x:99999", "agi://x:1/debt-call", "agi://", "agi://[::1"])
def test_parse_url_refuses(url: str) -> None:
    with pytest.raises(relay.RelayError):
        relay.parse_url(url)


def test_network_env_replaces_the_classic_lines() -> None:
    lines = [b"agi_request: /opt/ivr/agi.sh", b"agi_channel: Local/s@x-1;1", b"agi_network: no",
             b"agi_arg_1: stale", b"agi_callerid: 79161234567"]
    block = relay.network_env(lines, "debt-call?lang=ru", ["id-1", ""], "127.0.0.1", 4573)
    assert block == (b"agi_channel: Local/s@x-1;1\nagi_callerid: 79161234567\nagi_network: yes\n"
                     b"agi_network_script: debt-call?lang=ru\nagi_request: agi://127.0.0.1:4573/debt-call?lang=ru\n"
                     b"agi_arg_1: id-1\nagi_arg_2: \n\n")


def test_read_env_keeps_what_follows(tmp_path: Path) -> None:
    r, w = os.pipe()
    os.write(w, b"agi_a: 1\nagi_b: 2\n\nHANGUP\n")
    os.close(w)
    try:
        assert relay.read_env(r) == ([b"agi_a: 1", b"agi_b: 2"], b"HANGUP\n")
    finally:
        os.close(r)


@pytest.mark.parametrize(("raw", "hung_up", "expected_tail"), [
    (b"agi_a: 1\nagi_b: 2\n\n", False, b""),
    (b"agi_a: 1\n\n200 result=1\n", True, b"HANGUP\n"),  # a SIGHUP while connecting: FastAGI's line
    (b"\nrest", True, b""),  # mid-line: a HANGUP line there would corrupt the line, so none is added
])
def test_fallback_hands_over_exactly_what_was_read(raw: bytes, hung_up: bool, expected_tail: bytes) -> None:
    r, w = os.pipe()
    os.write(w, raw)
    os.close(w)
    try:
        lines, pending = relay.read_env(r)
    finally:
        os.close(r)
    assert relay._consumed(lines, pending, hung_up) == raw + expected_tail
