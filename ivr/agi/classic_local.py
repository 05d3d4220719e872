"""Classic AGI, the call run in this process (``python -m ivr.agi.classic ROUTE [ARG...]`` with
``IVR_CLASSIC_RELAY=off`` or ``--in-process``, or when the relay found no FastAGI server to take
the call; ivr.agi.classic dispatches here).

Asterisk's ``AGI(/path/to/script,arg1,...)`` spawns one process per call and talks AGI over its
stdin/stdout. This runs the same async handlers as the FastAGI server through the same
`AGIChannel`; a wrapper script for the dialplan is one line::

    #!/bin/sh
    IVR_CLASSIC_RELAY=off exec /opt/ivr/.venv/bin/python -m ivr.agi.classic debt-call "$@"

* ROUTE may carry a query string like a FastAGI path (``debt-call?lang=ru``). The channel's `args`
  are the command-line arguments after ROUTE: in classic AGI they are the same values Asterisk
  also lists as ``agi_arg_N``.
* The environment block is read with pyst2's ``asterisk.agi.AGI`` (the codec the project
  standardised on). Its constructor installs a SIGHUP handler with ``signal.signal``, which only
  works in the main thread: here we are the main thread. Only the environment part of pyst2 is
  reused: its command methods are synchronous, raise on every ``result=-1`` and would read an
  unsolicited ``HANGUP`` line as the reply to the pending command (the replies then shift by one).
  It is given a line reader over fd 0 that reads no further than the blank line, so no byte is lost
  between pyst2 and the channel, and a stderr sink, because pyst2 echoes the whole environment
  (caller number included) to stderr.
* Asterisk signals a hang-up to classic scripts with SIGHUP; it is routed to the channel (and to
  pyst2's flag) through the event loop.
* pyst2's ``asterisk.fastagi`` is not used at all: it imports ``SocketServer`` (Python 2) and fails
  to import on Python 3; the FastAGI server is `ivr.agi.server`.
* Routes: the built-in diagnostic routes (``ping``, ``echo``, ``bench``) need nothing else; any
  other route loads the call script (``build_routes``) with settings from ``$IVR_ENV_FILE``
  (default ``.env``) without running migrations: one process per call must stay cheap.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import signal
import sys
from typing import Any

from ivr.agi import protocol as p
from ivr.agi.channel import AGIChannel, AGICommandError, AGIHangup, Write
from ivr.agi.routing import builtin_routes, resolve_routes
from ivr.agi.server import Handler, run_handler
from ivr.config import ConfigError

log = logging.getLogger(__name__)



class _FdLineReader:
    """``readline()`` over a raw fd for pyst2, reading in chunks but keeping what follows."""

    def __init__(self, fd: int, preread: bytes = b"") -> None:
        self._fd = fd
        self._buf = preread  # bytes someone else already took from fd (the relay's fall-back)

    def readline(self) -> str:
        while b"\n" not in self._buf:
            chunk = os.read(self._fd, 4096)
            if not chunk:
                line, self._buf = self._buf, b""
                return line.decode("utf-8", "replace")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode("utf-8", "replace") + "\n"

    @property
    def leftover(self) -> bytes:
        return self._buf


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class _PipeReader(asyncio.Protocol):
    def __init__(self, channel: AGIChannel, splitter: p.LineSplitter) -> None:
        self._channel = channel
        self._splitter = splitter
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        for line in self._splitter.feed(data):
            self._channel.feed_line(line)

    def eof_received(self) -> bool:
        self._channel.feed_eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._channel.feed_eof()
        if not self.closed.done():
            self.closed.set_result(None)


def _fd_writer(fd: int) -> Write:
    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
            except BlockingIOError:  # stdout shares a non-blocking file description with stdin
                select.select([], [fd], [], 5.0)
                continue
            view = view[n:]

    return write



async def _read_stdin_in_thread(channel: AGIChannel, splitter: p.LineSplitter, fd: int) -> None:
    """Fallback for a stdin that asyncio cannot watch (a regular file)."""
    loop = asyncio.get_running_loop()
    while True:
        data = await loop.run_in_executor(None, os.read, fd, 65536)
        if not data:
            channel.feed_eof()
            return
        for line in splitter.feed(data):
            channel.feed_line(line)


async def serve_classic(
    handler: Handler | None,
    route: str,
    env: dict[str, str],
    args: list[str],
    query: dict[str, str],
    *,
    leftover: bytes = b"",
    in_fd: int = 0,
    out_fd: int = 1,
    agi: Any = None,
) -> int:
    """Run one call over in_fd/out_fd; returns the process exit status."""
    loop = asyncio.get_running_loop()
    channel = AGIChannel(env, _fd_writer(out_fd), args=args, script=route, query=query)

    def on_sighup() -> None:
        if agi is not None:
            agi._got_sighup = True
        channel.notice_hangup()

    try:
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        sighup_installed = True
    except (ValueError, RuntimeError):  # not the main thread: the 511 replies still tell
        sighup_installed = False
    splitter = p.LineSplitter()
    for line in splitter.feed(leftover):
        channel.feed_line(line)
    transport: asyncio.BaseTransport | None = None
    pump: asyncio.Task[None] | None = None
    try:
        stdin = os.fdopen(in_fd, "rb", buffering=0, closefd=False)
        transport, _ = await loop.connect_read_pipe(lambda: _PipeReader(channel, splitter), stdin)
    except ValueError:
        pump = loop.create_task(_read_stdin_in_thread(channel, splitter, in_fd))
    try:
        if handler is None:
            log.warning("classic AGI: unknown route %r", route)
            try:
                await channel.verbose(f"ivr: unknown route {route}", 1)
            except (AGIHangup, AGICommandError):
                pass
            return 2
        await run_handler(channel, handler, route)
        return 0
    finally:
        if transport is not None:
            transport.close()
        if pump is not None:
            pump.cancel()
        if sighup_installed:
            loop.remove_signal_handler(signal.SIGHUP)


def _lookup(route: str) -> Handler | None:
    builtins = builtin_routes()
    if route in builtins:
        return builtins[route]
    from ivr.config import load_settings

    settings = load_settings(os.environ.get("IVR_ENV_FILE", ".env"))
    return resolve_routes(settings, migrate=False).get(route)


def main(argv: list[str], preread: bytes = b"") -> int:
    """Run the call of `argv` (ROUTE [ARG...], already checked by ivr.agi.classic.main).

    `preread`: what was already read from stdin (the relay read the environment block before it
    found no server); pyst2 and the channel read it first, as if it were still in the pipe."""
    from asterisk.agi import AGI  # pyst2

    from ivr.logsetup import configure_logging

    configure_logging(getattr(logging, os.environ.get("IVR_LOG_LEVEL", "WARNING").upper(), logging.WARNING))
    # Anything printed by mistake must not reach Asterisk as a command.
    out_fd = os.dup(1)
    try:
        os.dup2(2, 1)
    except OSError:  # no stderr: stray output goes nowhere rather than to Asterisk
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
    sys.stdout = sys.stderr
    reader = _FdLineReader(0, preread)
    agi = AGI(stdin=reader, stdout=_Sink(), stderr=_Sink())
    route, query = p.split_route(argv[0])
    try:
        handler = _lookup(route)
    except ConfigError as exc:
        log.error("classic AGI: configuration error: %s", exc)
        return 2
    return asyncio.run(
        serve_classic(handler, route, dict(agi.env), argv[1:], query,
                      leftover=reader.leftover, out_fd=out_fd, agi=agi)
    )

