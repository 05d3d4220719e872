"""Classic AGI: the same channel over stdin/stdout pipes, in-process and as a real subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.agi.channel import AGIChannel, AGIHangup
from ivr.agi.classic import serve_classic
from tests.agi.conftest import Box, capture
from tests.agi.replay import load

REPO = Path(__file__).resolve().parents[2]


class Pipes:
    """Asterisk's side of a classic AGI process: we write its stdin and read its stdout."""

    def __init__(self) -> None:
        self.in_r, self.in_w = os.pipe()
        self.out_r, self.out_w = os.pipe()
        self.reader: asyncio.StreamReader | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(self.reader),  # type: ignore[arg-type]
                                     os.fdopen(self.out_r, "rb", buffering=0))

    def send(self, line: str) -> None:
        os.write(self.in_w, line.encode() + b"\n")

    async def command(self) -> str:
        assert self.reader is not None
        return (await asyncio.wait_for(self.reader.readline(), 5)).decode().rstrip("\n")

    def close(self) -> None:
        for fd in (self.in_r, self.in_w, self.out_w):
            try:
                os.close(fd)
            except OSError:
                pass


async def test_sighup_marks_channel_hung_up(transcripts: Path) -> None:
    env = load(transcripts, "agi-env").env
    box = Box()

    async def handler(ch: AGIChannel) -> None:
        await ch.verbose("waiting")
        assert await ch.wait_for_hangup(5)
        with pytest.raises(AGIHangup):
            await ch.noop()

    pipes = Pipes()
    await pipes.open()
    try:
        task = asyncio.create_task(serve_classic(capture(handler, box), "t", env, [], {},
                                                 in_fd=pipes.in_r, out_fd=pipes.out_w))
        assert await pipes.command() == 'VERBOSE "waiting" 1'
        pipes.send("200 result=1")
        os.kill(os.getpid(), signal.SIGHUP)  # what Asterisk does to a classic script on hang-up
        assert await asyncio.wait_for(task, 30) == 0
        box.check()
        os.close(pipes.out_w)
        assert pipes.reader is not None
        assert await asyncio.wait_for(pipes.reader.read(), 5) == b""  # NOOP never sent
    finally:
        pipes.close()
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL


async def test_hangup_line_and_leftover_bytes(transcripts: Path) -> None:
    """Bytes that arrived with the environment (read by pyst2's reader) are not lost."""
    env = load(transcripts, "agi-env").env
    box = Box()

    async def handler(ch: AGIChannel) -> None:
        assert ch.hung_up  # the HANGUP that came in the same read as the environment
        with pytest.raises(AGIHangup):
            await ch.answer()

    pipes = Pipes()
    await pipes.open()
    try:
        assert await serve_classic(capture(handler, box), "t", env, [], {}, leftover=b"HANGUP\n",
                                   in_fd=pipes.in_r, out_fd=pipes.out_w) == 0
        box.check()
    finally:
        pipes.close()


async def test_unknown_route(transcripts: Path) -> None:
    env = load(transcripts, "agi-env").env
    pipes = Pipes()
    await pipes.open()
    try:
        task = asyncio.create_task(serve_classic(None, "nope", env, [], {}, in_fd=pipes.in_r, out_fd=pipes.out_w))
        assert await pipes.command() == 'VERBOSE "ivr: unknown route nope" 1'
        pipes.send("200 result=1")
        assert await asyncio.wait_for(task, 30) == 2
    finally:
        pipes.close()


def test_subprocess_entry_point_with_pyst2(transcripts: Path) -> None:
    """`python -m ivr.agi.classic echo ...` in process, as Asterisk spawns it: pyst2 reads the environment,
    the channel speaks on stdout, nothing private leaks to stderr."""
    t = load(transcripts, "agi-env-args")
    env_bytes = ("".join(f"{line}\n" for line in t.env_lines) + "\n").encode()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ivr.agi.classic", "echo?lang=ru", "first arg", "42", ""],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
        env=os.environ | {"IVR_CLASSIC_RELAY": "off"},  # relaying is the default (test_classic_relay.py)
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        proc.stdin.write(env_bytes)
        proc.stdin.flush()
        line = proc.stdout.readline()
        assert line == (b"VERBOSE \"ivr echo: route=echo args=['first arg', '42', ''] query={'lang': 'ru'}\" 1\n")
        proc.stdin.write(b"200 result=1\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"NOOP\n"
        proc.stdin.write(b"200 result=0\n")
        proc.stdin.flush()
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read() == b""
        stderr = proc.stderr.read().decode()
        assert "79161234567" not in stderr and "ENV LINE" not in stderr
        assert "running this call in process" not in stderr  # asked for, not a fall-back
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            f.close()


def test_subprocess_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "ivr.agi.classic"], capture_output=True, cwd=REPO, timeout=10)
    assert result.returncode == 2 and b"usage" in result.stderr
