"""Classic AGI relayed to a FastAGI server: the spawned process (a real subprocess, as Asterisk
runs it) passes the recorded environment and every byte on, turns SIGHUP into a HANGUP notice,
and fails in one line when the server is not there."""

from __future__ import annotations

import asyncio
import os
import signal
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


async def spawn(*argv: str, relay_url: str | None) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if k != "IVR_CLASSIC_RELAY"}
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


async def test_unreachable_server_fails_in_one_line(transcripts: Path) -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    proc = await spawn("debt-call", "x", relay_url=f"agi://127.0.0.1:{port}")
    send(proc, env_bytes(transcripts))
    assert await asyncio.wait_for(proc.wait(), 30) == 1
    assert proc.stdout is not None and proc.stderr is not None
    assert await proc.stdout.read() == b""  # nothing Asterisk could take for a command
    err = (await proc.stderr.read()).decode()
    assert err.count("\n") == 1 and "cannot reach the FastAGI server" in err


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
