"""Classic AGI relayed to the robot's FastAGI server: the per-call process Asterisk spawns only
moves bytes, the call runs in the server that `ivr run` / `ivr agi-server` keeps warm.

Why: a classic AGI process that runs the call itself must import asyncio, SQLAlchemy and the
ORM models before it can say a word (about 0.3 s of CPU however lazily the rest is loaded, see
the README's "Classic AGI"); the relay imports nothing but the standard library's socket, select
and signal, so it costs a few tens of milliseconds and the first prompt is as quick as over
FastAGI. Turn it on with ``IVR_CLASSIC_RELAY=agi://host:port`` in the AGI process's environment
(or ``--relay agi://host:port`` before the route); without it, ivr.agi.classic runs the call in
process as before.

The conversation is FastAGI's, byte for byte:

* the environment block Asterisk wrote on stdin is passed on with ``agi_network: yes``,
  ``agi_network_script`` / ``agi_request`` naming ROUTE (and its query string), and the
  ``agi_arg_N`` lines taken from the command line, like Asterisk's own FastAGI client sends them;
* then stdin is copied to the socket and the socket to stdout until the server closes (the call
  is over: exit 0) or Asterisk closes stdin (the server sees EOF, which it treats as a hang-up);
* SIGHUP, Asterisk's hang-up signal to classic scripts, becomes the ``HANGUP`` line FastAGI
  uses for the same news (sent between two lines, never inside one).

Nothing is written to stdout but what the server sends; problems go to stderr in one line, and
the exit status is 1 when the server cannot be reached (Asterisk sets AGISTATUS=FAILURE and the
dialplan goes on).
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
CONNECT_TIMEOUT = 5.0
HANGUP_LINE = b"HANGUP\n"
_REPLACED = (b"agi_network:", b"agi_network_script:", b"agi_request:", b"agi_arg_")


class RelayError(Exception):
    pass


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
    """Copy until the server closes. `pending`: bytes Asterisk sent right after the environment."""
    hangup_wanted = hangup_sent = False
    at_line_start = True  # of what went to the server: a HANGUP line must not split a reply
    stdin_open = True
    if pending:
        sock.sendall(pending)
        at_line_start = pending.endswith(b"\n")
    while True:
        if hangup_wanted and not hangup_sent and at_line_start:
            try:
                sock.sendall(HANGUP_LINE)
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
                return
            if not data:
                return  # the script is done
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
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    return
                continue
            try:
                sock.sendall(data)
            except OSError:
                return
            at_line_start = data.endswith(b"\n")


def relay(url: str, argv: list[str], *, in_fd: int = 0, out_fd: int = 1) -> int:
    """Relay one classic AGI call (argv = ROUTE [ARG...]) to the FastAGI server at `url`."""
    # Installed first: Asterisk's SIGHUP would otherwise kill us before the server heard of it.
    hangup_r, hangup_w = os.pipe()
    os.set_blocking(hangup_w, False)
    previous = signal.signal(signal.SIGHUP, lambda *_: None)
    old_wakeup = signal.set_wakeup_fd(hangup_w, warn_on_full_buffer=False)
    try:
        host, port = parse_url(url)
        lines, pending = read_env(in_fd)
        try:
            sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise RelayError(f"cannot reach the FastAGI server {host}:{port}: "
                             f"{exc.strerror or errno.errorcode.get(exc.errno or 0, exc)}") from None
        with sock:
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(network_env(lines, argv[0], argv[1:], host, port))
            pump(sock, in_fd, out_fd, pending, hangup_r)
        return 0
    except RelayError as exc:
        print(f"ivr classic AGI relay: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.set_wakeup_fd(old_wakeup)
        signal.signal(signal.SIGHUP, previous)
        os.close(hangup_r)
        os.close(hangup_w)
