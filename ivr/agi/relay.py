"""Classic AGI relayed to the robot's FastAGI server: the per-call process Asterisk spawns only
moves bytes, the call runs in the server that `ivr run` / `ivr agi-server` keeps warm.

Why: a classic AGI process that runs the call itself must import asyncio, SQLAlchemy and the
ORM models before it can say a word (about 0.3 s of CPU however lazily the rest is loaded, see
the README's "Classic AGI"); the relay imports nothing but the standard library's socket, select
and signal, so it costs a few tens of milliseconds and the first prompt is as quick as over
FastAGI. ivr.agi.classic relays by default (to the server named by ``IVR_CLASSIC_RELAY``,
``--relay``, or else the robot's settings: ivr.agi.relay_target).

The conversation is FastAGI's, byte for byte:

* the environment block Asterisk wrote on stdin is passed on with ``agi_network: yes``,
  ``agi_network_script`` / ``agi_request`` naming ROUTE (and its query string), and the
  ``agi_arg_N`` lines taken from the command line, like Asterisk's own FastAGI client sends them;
* then stdin is copied to the socket and the socket to stdout until the server closes (the call
  is over: exit 0) or Asterisk closes stdin (the server sees EOF, which it treats as a hang-up);
* SIGHUP, Asterisk's hang-up signal to classic scripts, becomes the ``HANGUP`` line FastAGI
  uses for the same news (sent between two lines, never inside one).

Nothing is written to stdout but what the server sends. When the server cannot take the call
(bad URL, connection refused or timed out, or reset before it read a byte: its allow list or
connection cap) nothing has reached Asterisk yet, and `relay` raises `NotRelayed` carrying every
byte it read from stdin, so that the caller can run the call in process instead of losing it.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import socket
import sys

DEFAULT_PORT = 4573
MAX_ENV_BYTES = 64 * 1024
# A live server completes the handshake in milliseconds even across a LAN; 2 s still covers one
# SYN retransmission (1 s on Linux) when its accept backlog overflowed. Past that the subscriber,
# who is already listening to silence, is better served by the in-process fall-back.
CONNECT_TIMEOUT = 2.0
HANGUP_LINE = b"HANGUP\n"
_REPLACED = (b"agi_network:", b"agi_network_script:", b"agi_request:", b"agi_arg_")


class RelayError(Exception):
    pass


class NotRelayed(Exception):
    """The server did not take the call and nothing was written to Asterisk: the call can still be
    run another way. `consumed` is what was read from stdin, byte for byte, followed by a
    ``HANGUP`` line if Asterisk's SIGHUP came meanwhile."""

    def __init__(self, where: str, why: str, consumed: bytes = b"") -> None:
        super().__init__(f"{where}: {why}")
        self.where, self.why, self.consumed = where, why, consumed


class _ResetBeforeStart(Exception):
    """The server reset the connection before it sent a byte or we forwarded one of Asterisk's."""

    def __init__(self, hangup_seen: bool) -> None:
        super().__init__()
        self.hangup_seen = hangup_seen


def parse_url(url: str) -> tuple[str, int]:
    """``agi://host[:port]`` (IPv6 in brackets) -> (host, port)."""
    rest = url.strip()
    if not rest.startswith("agi://"):
        raise RelayError(f"relay URL must start with agi://, got {url!r}")
    rest = rest[len("agi://"):].rstrip("/")
    if "/" in rest:
        raise RelayError(f"relay URL takes no path (the route comes from the command line): {url!r}")
    host, port = rest, DEFAULT_PORT
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise RelayError(f"bad IPv6 address in {url!r}")
        host, tail = rest[1:end], rest[end + 1:]
        if tail.startswith(":"):
            port = _port(tail[1:], url)
    elif rest.count(":") == 1:
        host, raw = rest.split(":")
        port = _port(raw, url)
    if not host:
        raise RelayError(f"no host in {url!r}")
    return host, port


def _port(raw: str, url: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise RelayError(f"bad port in {url!r}")
    return int(raw)


def read_env(fd: int) -> tuple[list[bytes], bytes]:
    """The environment lines Asterisk wrote (without the blank line) and the bytes after it."""
    buf = b""
    while True:
        end = buf.find(b"\n\n")
        if buf.startswith(b"\n"):
            return [], buf[1:]
        if end >= 0:
            return buf[:end].split(b"\n"), buf[end + 2:]
        if len(buf) > MAX_ENV_BYTES:
            raise RelayError(f"no end of the AGI environment within {MAX_ENV_BYTES} bytes")
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            select.select([fd], [], [])
            continue
        if not chunk:
            raise RelayError("stdin closed before the end of the AGI environment")
        buf += chunk


def network_env(lines: list[bytes], route: str, args: list[str], host: str, port: int) -> bytes:
    """The block a FastAGI server expects for this call (see the module docstring)."""
    def enc(text: str) -> bytes:
        return text.encode("utf-8", "surrogateescape").replace(b"\n", b" ")

    kept = [line.rstrip(b"\r") for line in lines if not line.startswith(_REPLACED)]
    where = f"[{host}]" if ":" in host else host
    ours = [b"agi_network: yes", b"agi_network_script: " + enc(route),
            b"agi_request: " + enc(f"agi://{where}:{port}/{route}")]
    ours += [enc(f"agi_arg_{n}: ") + enc(arg) for n, arg in enumerate(args, 1)]
    return b"\n".join([*kept, *ours]) + b"\n\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:  # stdout may share a non-blocking file description with stdin
            select.select([], [fd], [], 5.0)


def pump(sock: socket.socket, in_fd: int, out_fd: int, pending: bytes, hangup_r: int | None) -> None:
    """Copy until the server closes. `pending`: bytes Asterisk sent right after the environment.

    Raises _ResetBeforeStart when the server resets the connection before anything was exchanged
    (it refused us at accept: allow list, connection cap), so that the call can still run."""
    hangup_wanted = hangup_sent = False
    at_line_start = True  # of what went to the server: a HANGUP line must not split a reply
    stdin_open = True
    started = False  # a byte went to Asterisk or one of Asterisk's (after `pending`) to the server, or stdin ended
    if pending:
        try:
            sock.sendall(pending)
        except (ConnectionResetError, BrokenPipeError):
            raise _ResetBeforeStart(hangup_wanted) from None
        at_line_start = pending.endswith(b"\n")
    while True:
        if hangup_wanted and not hangup_sent and at_line_start:
            try:
                sock.sendall(HANGUP_LINE)
            except (ConnectionResetError, BrokenPipeError):
                if not started:
                    raise _ResetBeforeStart(True) from None
                return
            except OSError:
                return
            hangup_sent = True
        watch: list[int | socket.socket] = [sock]
        if stdin_open:
            watch.append(in_fd)
        if hangup_r is not None:
            watch.append(hangup_r)
        ready, _, _ = select.select(watch, [], [])
        if hangup_r is not None and hangup_r in ready:
            if signal.SIGHUP.value in os.read(hangup_r, 64):  # the wake-up fd carries signal numbers
                hangup_wanted = True
        if sock in ready:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                if not started:
                    raise _ResetBeforeStart(hangup_wanted) from None
                return
            if not data:
                return  # the script is done
            started = True
            try:
                _write_all(out_fd, data)
            except BrokenPipeError:  # Asterisk is gone: let the server see it
                return
        if stdin_open and in_fd in ready:
            try:
                data = os.read(in_fd, 65536)
            except BlockingIOError:
                continue
            if not data:
                stdin_open = False
                started = True  # Asterisk is gone: nothing left to run in process
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    return
                continue
            started = True
            try:
                sock.sendall(data)
            except OSError:
                return
            at_line_start = data.endswith(b"\n")


def _hangup_seen(hangup_r: int) -> bool:
    """Whether SIGHUP reached the wake-up fd (without waiting)."""
    seen = False
    while select.select([hangup_r], [], [], 0)[0]:
        data = os.read(hangup_r, 64)
        seen = seen or signal.SIGHUP.value in data
        if not data:
            break
    return seen


def _consumed(lines: list[bytes], pending: bytes, hung_up: bool) -> bytes:
    """What read_env took from stdin, rebuilt exactly (it split the block at "\\n" and dropped the
    blank line), plus the HANGUP line FastAGI would have carried for a SIGHUP."""
    block = b"".join(line + b"\n" for line in lines) + b"\n" + pending
    if hung_up and (not pending or pending.endswith(b"\n")):
        block += HANGUP_LINE
    return block


def _why(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since 3.10
        return f"no answer within {CONNECT_TIMEOUT:g} s"
    return exc.strerror or errno.errorcode.get(exc.errno or 0, "") or str(exc) or type(exc).__name__


def relay(url: str, argv: list[str], *, in_fd: int = 0, out_fd: int = 1) -> int:
    """Relay one classic AGI call (argv = ROUTE [ARG...]) to the FastAGI server at `url`.

    Returns the exit status (1: Asterisk's side broke off before the environment ended); raises
    NotRelayed when the server did not take the call (see the module docstring)."""
    # Installed first: Asterisk's SIGHUP would otherwise kill us before the server heard of it.
    hangup_r, hangup_w = os.pipe()
    os.set_blocking(hangup_w, False)
    previous = signal.signal(signal.SIGHUP, lambda *_: None)
    old_wakeup = signal.set_wakeup_fd(hangup_w, warn_on_full_buffer=False)
    try:
        try:
            host, port = parse_url(url)
        except RelayError as exc:
            raise NotRelayed(url, str(exc)) from None  # nothing read yet
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines, pending = read_env(in_fd)
        try:
            sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise NotRelayed(where, _why(exc), _consumed(lines, pending, _hangup_seen(hangup_r))) from None
        with sock:
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                try:
                    sock.sendall(network_env(lines, argv[0], argv[1:], host, port))
                except (ConnectionResetError, BrokenPipeError):
                    raise _ResetBeforeStart(False) from None
                pump(sock, in_fd, out_fd, pending, hangup_r)
            except _ResetBeforeStart as exc:
                raise NotRelayed(where, "connection reset before the call started; its allow list or connection cap?",
                                 _consumed(lines, pending, exc.hangup_seen or _hangup_seen(hangup_r))) from None
        return 0
    except RelayError as exc:
        print(f"ivr classic AGI relay: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.set_wakeup_fd(old_wakeup)
        signal.signal(signal.SIGHUP, previous)
        os.close(hangup_r)
        os.close(hangup_w)
