"""FastAGI server: Asterisk's ``AGI(agi://host:port/route?query,args)`` connects here.

One asyncio Protocol per connection (no per-line regex, no StreamReader layer: replies go straight
from `data_received` into the channel), one task per call running the route's handler.

Session shape, as the recorded client did it (shared/asterisk-transcripts/agi-*.txt): read the
``agi_*`` block up to the blank line, run the handler, then half-close (``shutdown(SHUT_WR)``) and
keep reading until Asterisk closes (it sends a last ``HANGUP`` first), bounded by `close_timeout`;
the socket is always closed. Handler exceptions are logged with the route and never stop the
server.

Nothing a peer sends can hold the server (`AGILimits`): the environment block must arrive within
`env_timeout` and stay under `env_max_lines` / `env_max_bytes`, and name a route (a block of bare
newlines is refused); every reply has a deadline (`ReplyDeadlines` in the channel); a call has a
session deadline; at most `max_connections` are open at once, the next is closed at accept. Every
refusal is logged, rate-limited, so a flood of bad connections costs a few log lines.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType

from ivr.agi import protocol as p
from ivr.agi.channel import AGIChannel, AGICommandError, AGIHangup, ReplyDeadlines
from ivr.agi.load import LoadMeter
from ivr.agi.ratelog import RateLimitedLog
from ivr.config import Settings

log = logging.getLogger(__name__)
_limited = RateLimitedLog(log)

Handler = Callable[[AGIChannel], Awaitable[None]]

# Replies are short (the longest in the recordings is a GET VARIABLE of a few dozen bytes); a line
# this long is not Asterisk, and a buffer per connection must stay small when thousands are open.
MAX_REPLY_LINE = 64 * 1024
# Lines that answer nothing before the connection is dropped (one is already a protocol error; a
# few are let through so the warning can name what was sent).
MAX_STRAY_LINES = 8
# Open files besides the FastAGI connections: database, AMI, web, logs, audio files.
_FD_RESERVE = 256


@dataclasses.dataclass(frozen=True)
class AGILimits:
    """Bounds on what one FastAGI peer may cost (settings IVR_AGI_*; see .env.example).

    The recorded Asterisk sends its whole 22-line environment block (1 KB) in one write right after
    connecting, so `env_timeout` can be a few seconds; the reply deadlines must cover the longest
    prompt a call plays, see `ReplyDeadlines`."""

    env_timeout: float = 5.0
    env_max_lines: int = 256  # 22 lines + up to 128 agi_arg_N lines (Asterisk's own limit)
    env_max_bytes: int = 16 * 1024
    max_connections: int = 4000  # twice the 2,000 concurrent calls of scripts/bench_fastagi.py
    reply_quick: float = 30.0
    reply_media: float = 600.0
    session_timeout: float = 3600.0
    close_timeout: float = 5.0

    def __post_init__(self) -> None:
        for name in ("env_timeout", "reply_quick", "reply_media", "session_timeout", "close_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"AGILimits.{name} must be positive")
        for name in ("env_max_lines", "env_max_bytes", "max_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"AGILimits.{name} must be at least 1")

    @property
    def deadlines(self) -> ReplyDeadlines:
        return ReplyDeadlines(self.reply_quick, self.reply_media)

    @classmethod
    def from_settings(cls, settings: Settings) -> AGILimits:
        return cls(
            env_timeout=settings.agi_env_timeout,
            env_max_lines=settings.agi_env_max_lines,
            env_max_bytes=settings.agi_env_max_bytes,
            max_connections=settings.agi_max_connections,
            reply_quick=settings.agi_reply_timeout,
            reply_media=settings.agi_media_timeout,
            session_timeout=settings.agi_session_timeout,
        )


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


async def run_handler(channel: AGIChannel, handler: Handler, route: str) -> None:
    """Run one call's handler; a hang-up is a normal end, anything else is logged, not raised."""
    try:
        await handler(channel)
    except AGIHangup as exc:
        log.debug("AGI route %s: call ended by hang-up (%s)", route, exc)
    except Exception:
        log.exception("AGI route %s: handler failed", route)


FULL_COLLECTION_EVERY = 1000  # middle-generation collections per full one (CPython's default: 10)


def freeze_startup_objects() -> None:
    """Take everything allocated at start-up (imports, settings, route tables) out of the garbage
    collector's view, so a full collection only walks the objects of calls in progress. With
    thousands of calls up, full collections over the whole heap were the longest event-loop stalls
    in scripts/bench_fastagi.py. For process entry points (`ivr agi-server`), not library code.

    Then full collections are made rare: at 2,000 calls held each one walked every call's objects
    for 65-134 ms (measured with gc.callbacks in scripts/bench_fastagi.py: 5 in 65 s), stalling
    every call's next command, and they made most of the turnaround p99. The young generations are
    still collected as usual (cycles of a finished call are freed within a few thousand
    allocations); a full collection now comes after FULL_COLLECTION_EVERY collections of the
    middle generation instead of 10: under full load about every 20 minutes."""
    gc.collect()
    gc.freeze()
    young, middle, _full = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)


def parse_allow(allow: Sequence[str]) -> list[IPNetwork]:
    """IP addresses or networks ("10.0.0.0/24"); ValueError names the bad entry."""
    networks: list[IPNetwork] = []
    for item in allow:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ValueError(f"FastAGI allow list: {item!r} is not an IP address or network") from None
    return networks


def host_allowed(host: str, networks: Sequence[IPNetwork]) -> bool:
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == net.version and addr in net for net in networks)


class _Connection(asyncio.Protocol):
    """One FastAGI TCP connection: environment block, then lines into the channel."""

    def __init__(self, server: FastAGIServer) -> None:
        self._server = server
        self.transport: asyncio.Transport | None = None
        self.channel: AGIChannel | None = None
        self.peer = "?"
        self._env: dict[str, str] = {}
        self._env_lines = 0
        self._env_bytes = 0
        self._split = p.LineSplitter(max_line=server.limits.env_max_bytes)
        self._closed: asyncio.Future[None] | None = None
        self._env_timer: asyncio.TimerHandle | None = None
        # when the line the script is answering arrived (env block end, or a reply): the time to
        # our next write is this server's own delay, which LoadMeter reports to the dialer
        self._t_in = 0.0

    # asyncio callbacks -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "?"
        server = self._server
        if not host_allowed(self.peer, server.networks):
            # closed before reading a byte: nothing from an unknown host reaches the parser
            _limited.warning("allow", "FastAGI: refused connection from %s (not in the allow list)", self.peer)
            transport.abort()
            return
        limit = server.limits.max_connections
        if len(server.connections) >= limit:
            _limited.warning("cap", "FastAGI: %d connections open (IVR_AGI_MAX_CONNECTIONS); refused connection from %s",
                             limit, self.peer)
            transport.abort()
            return
        loop = asyncio.get_running_loop()
        self._closed = loop.create_future()
        server.connections.add(self)
        self._env_timer = loop.call_later(server.limits.env_timeout, self._env_timed_out)

    def data_received(self, data: bytes) -> None:
        try:
            lines = self._split.feed(data)
        except p.AGIProtocolError as exc:
            self._refuse("line", "%s", exc)
            return
        channel = self.channel
        if channel is not None:
            if lines:
                self._t_in = self._server.load.now()
            for line in lines:
                channel.feed_line(line)
            if channel.stray_lines > MAX_STRAY_LINES:
                self._refuse("stray", "%d lines that answer no command", channel.stray_lines)
            return
        limits = self._server.limits
        for i, line in enumerate(lines):
            self._env_lines += 1
            self._env_bytes += len(line) + 1
            if self._env_lines > limits.env_max_lines or self._env_bytes > limits.env_max_bytes:
                self._refuse("env-size", "environment block over %d lines or %d bytes",
                             limits.env_max_lines, limits.env_max_bytes)
                return
            if line:
                kv = p.parse_env_line(line)
                if kv is not None:
                    self._env[kv[0]] = kv[1]
                continue
            if p.ENV_NETWORK_SCRIPT not in self._env and p.ENV_REQUEST not in self._env:
                # a blank line before any request: not Asterisk (a newline flood, a port scan)
                self._refuse("env-empty", "environment block names no request")
                return
            channel = self._start()
            for rest in lines[i + 1 :]:
                channel.feed_line(rest)
            return
        if self._env_bytes + len(self._split.pending) > limits.env_max_bytes:
            self._refuse("env-size", "environment block over %d lines or %d bytes",
                         limits.env_max_lines, limits.env_max_bytes)

    def eof_received(self) -> bool:
        if self.channel is not None:
            self.channel.feed_eof()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        if self._env_timer is not None:
            self._env_timer.cancel()
            self._env_timer = None
        if self.channel is not None:
            self.channel.feed_eof()
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        self._server.connections.discard(self)

    # session ------------------------------------------------------------------------------
    def _start(self) -> AGIChannel:
        if self._env_timer is not None:
            self._env_timer.cancel()
            self._env_timer = None
        assert self.transport is not None
        # replies are short: from here on a long line is refused well before the env limit
        self._split.max_line = MAX_REPLY_LINE
        self._t_in = self._server.load.now()
        channel = AGIChannel(self._env, self._write, deadlines=self._server.limits.deadlines, peer=self.peer)
        self.channel = channel
        self._server._spawn(self)
        return channel

    def _write(self, data: bytes) -> None:
        if self._t_in:
            meter = self._server.load
            now = meter.now()
            meter.record(now - self._t_in, now)
            self._t_in = 0.0
        assert self.transport is not None
        self.transport.write(data)

    def _env_timed_out(self) -> None:
        self._env_timer = None
        if self.channel is None:
            self._refuse("env-timeout", "no complete environment block within %.0fs", self._server.limits.env_timeout)

    def _refuse(self, kind: str, why: str, *args: object) -> None:
        _limited.warning(kind, "FastAGI %s: " + why + "; closing", self.peer, *args)
        self._abort()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    async def finish(self, timeout: float) -> None:
        """Half-close, read until Asterisk closes (bounded), always close."""
        transport = self.transport
        assert transport is not None and self._closed is not None
        try:
            if not transport.is_closing():
                try:
                    transport.write_eof()
                except (OSError, RuntimeError, NotImplementedError):
                    transport.close()
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(self._closed)
            except TimeoutError:
                log.debug("FastAGI %s: Asterisk did not close within %.1fs", self.peer, timeout)
        finally:
            transport.close()


class FastAGIServer:
    """Serve `routes` (route name -> handler) on host:port to the hosts in `allow`.

    `limits` bounds what each peer may cost; the keyword timeouts, when given, override the
    matching fields of `limits` (tests and the benchmark set them directly)."""

    def __init__(
        self,
        routes: Mapping[str, Handler],
        host: str = "127.0.0.1",
        port: int = 4573,
        allow: Sequence[str] = ("127.0.0.1", "::1"),
        *,
        limits: AGILimits | None = None,
        session_timeout: float | None = None,
        env_timeout: float | None = None,
        close_timeout: float | None = None,
        reuse_port: bool = False,
    ) -> None:
        limits = limits or AGILimits()
        self.limits = dataclasses.replace(
            limits,
            session_timeout=limits.session_timeout if session_timeout is None else session_timeout,
            env_timeout=limits.env_timeout if env_timeout is None else env_timeout,
            close_timeout=limits.close_timeout if close_timeout is None else close_timeout,
        )
        self.routes = routes
        self.host = host
        self.port = port
        self.networks = parse_allow(allow)
        # several processes on one port (`ivr agi-server --workers N`): the kernel spreads connects
        self.reuse_port = reuse_port
        self.connections: set[_Connection] = set()
        self._sessions: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        # calls in progress and this server's own delays: what the dialer's back-pressure reads
        self.load = LoadMeter(lambda: len(self._sessions))

    @property
    def session_timeout(self) -> float:
        return self.limits.session_timeout

    @property
    def env_timeout(self) -> float:
        return self.limits.env_timeout

    @property
    def close_timeout(self) -> float:
        return self.limits.close_timeout

    @property
    def active_calls(self) -> int:
        """Calls whose environment arrived and whose session has not ended yet."""
        return len(self._sessions)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # a large backlog: a dialer burst can bring thousands of connects at once
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, backlog=4096, reuse_address=True,
            reuse_port=self.reuse_port or None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("FastAGI server listening on %s:%d (routes: %s; at most %d connections)", self.host, self.port,
                 ", ".join(sorted(self.routes)) or "none", self.limits.max_connections)
        _fit_fd_limit(self.limits.max_connections)

    async def stop(self, grace: float = 30.0) -> None:
        """Stop accepting; let calls in progress finish, cancel those still running after `grace`."""
        if self._server is not None:
            self._server.close()
        sessions = set(self._sessions)
        if sessions:
            _, pending = await asyncio.wait(sessions, timeout=grace)
            if pending:
                log.warning("FastAGI: cancelling %d call(s) still running after %.0fs", len(pending), grace)
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=self.close_timeout + 1.0)
        for conn in list(self.connections):
            conn._abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FastAGIServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _spawn(self, conn: _Connection) -> None:
        task = asyncio.get_running_loop().create_task(self._session(conn))
        self._sessions.add(task)
        task.add_done_callback(self._sessions.discard)

    async def _session(self, conn: _Connection) -> None:
        channel = conn.channel
        assert channel is not None
        route = channel.script
        try:
            handler = self.routes.get(route)
            if handler is None:
                _limited.warning("route", "FastAGI %s: unknown route %.80r", conn.peer, route)
                try:
                    await channel.verbose(f"ivr: unknown route {route}", 1)
                except (AGIHangup, AGICommandError):
                    pass
                return
            try:
                async with asyncio.timeout(self.session_timeout):
                    await run_handler(channel, handler, route)
            except TimeoutError:
                log.warning("AGI route %s: call exceeded %.0fs and was ended", route, self.session_timeout)
        finally:
            await conn.finish(self.close_timeout)


def _fit_fd_limit(max_connections: int) -> None:
    """A cap above the open-file limit is no cap: accept() fails with EMFILE first. Raise the soft
    limit to fit the cap when the hard limit allows (a dedicated server process: harmless), else
    say which setting to change."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return
    needed = max_connections + _FD_RESERVE
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    except (OSError, ValueError):
        pass
    if soft < needed:
        log.warning("FastAGI: IVR_AGI_MAX_CONNECTIONS=%d needs about %d open files, the limit is %d; "
                    "raise it (ulimit -n, systemd LimitNOFILE=) or lower the cap", max_connections, needed, soft)
