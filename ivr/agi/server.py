"""FastAGI server: Asterisk's ``AGI(agi://host:port/route?query,args)`` connects here.

One asyncio Protocol per connection (no per-line regex, no StreamReader layer: replies go straight
from `data_received` into the channel), one task per call running the route's handler.

Session shape, as the recorded client did it (shared/asterisk-transcripts/agi-*.txt): read the
``agi_*`` block up to the blank line, run the handler, then half-close (``shutdown(SHUT_WR)``) and
keep reading until Asterisk closes (it sends a last ``HANGUP`` first), bounded by `close_timeout`;
the socket is always closed. Handler exceptions are logged with the route and never stop the
server.
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType

from ivr.agi import protocol as p
from ivr.agi.channel import AGIChannel, AGICommandError, AGIHangup

log = logging.getLogger(__name__)

Handler = Callable[[AGIChannel], Awaitable[None]]

_MAX_ENV_LINES = 512
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


async def run_handler(channel: AGIChannel, handler: Handler, route: str) -> None:
    """Run one call's handler; a hang-up is a normal end, anything else is logged, not raised."""
    try:
        await handler(channel)
    except AGIHangup as exc:
        log.debug("AGI route %s: call ended by hang-up (%s)", route, exc)
    except Exception:
        log.exception("AGI route %s: handler failed", route)


def freeze_startup_objects() -> None:
    """Take everything allocated at start-up (imports, settings, route tables) out of the garbage
    collector's view, so a full collection only walks the objects of calls in progress. With
    thousands of calls up, full collections over the whole heap were the longest event-loop stalls
    in scripts/bench_fastagi.py. For process entry points (`ivr agi-server`), not library code."""
    gc.collect()
    gc.freeze()


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
        self._split = p.LineSplitter()
        self._closed: asyncio.Future[None] | None = None
        self._env_timer: asyncio.TimerHandle | None = None

    # asyncio callbacks -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if peer else "?"
        server = self._server
        if not host_allowed(self.peer, server.networks):
            # closed before reading a byte: nothing from an unknown host reaches the parser
            log.warning("FastAGI: refused connection from %s (not in the allow list)", self.peer)
            transport.abort()
            return
        loop = asyncio.get_running_loop()
        self._closed = loop.create_future()
        server.connections.add(self)
        self._env_timer = loop.call_later(server.env_timeout, self._env_timed_out)

    def data_received(self, data: bytes) -> None:
        try:
            lines = self._split.feed(data)
        except p.AGIProtocolError as exc:
            log.warning("FastAGI %s: %s; closing", self.peer, exc)
            self._abort()
            return
        channel = self.channel
        if channel is not None:
            for line in lines:
                channel.feed_line(line)
            return
        for i, line in enumerate(lines):
            if line:
                kv = p.parse_env_line(line)
                if kv is not None:
                    self._env[kv[0]] = kv[1]
                if len(self._env) > _MAX_ENV_LINES:
                    log.warning("FastAGI %s: environment block too long; closing", self.peer)
                    self._abort()
                    return
                continue
            channel = self._start()
            for rest in lines[i + 1 :]:
                channel.feed_line(rest)
            return

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
        channel = AGIChannel(self._env, self.transport.write)
        self.channel = channel
        self._server._spawn(self)
        return channel

    def _env_timed_out(self) -> None:
        self._env_timer = None
        if self.channel is None:
            log.warning("FastAGI %s: no complete environment block within %.0fs; closing",
                        self.peer, self._server.env_timeout)
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
    """Serve `routes` (route name -> handler) on host:port to the hosts in `allow`."""

    def __init__(
        self,
        routes: Mapping[str, Handler],
        host: str = "127.0.0.1",
        port: int = 4573,
        allow: Sequence[str] = ("127.0.0.1", "::1"),
        *,
        session_timeout: float = 3600.0,
        env_timeout: float = 10.0,
        close_timeout: float = 5.0,
    ) -> None:
        self.routes = routes
        self.host = host
        self.port = port
        self.networks = parse_allow(allow)
        self.session_timeout = session_timeout
        self.env_timeout = env_timeout
        self.close_timeout = close_timeout
        self.connections: set[_Connection] = set()
        self._sessions: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def active_calls(self) -> int:
        """Calls whose environment arrived and whose session has not ended yet."""
        return len(self._sessions)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # a large backlog: a dialer burst can bring thousands of connects at once
        self._server = await loop.create_server(
            lambda: _Connection(self), self.host, self.port, backlog=4096, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("FastAGI server listening on %s:%d (routes: %s)", self.host, self.port,
                 ", ".join(sorted(self.routes)) or "none")

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
                log.warning("FastAGI %s: unknown route %r", conn.peer, route)
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
