"""Asterisk's side of AMI: banner, Login, Ping, Logoff, Events, errors, and event fan-out.

Call-related actions (Originate, Status, CoreShowChannels, Hangup) are handed to the call engine
through `actions`. Texts and header order follow ami-login-*.txt, ami-action-before-login.txt,
ami-restart*.txt. Lines end in CRLF; a blank line ends a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from ivr.sim.channel import SimTime

log = logging.getLogger(__name__)

BANNER = "Asterisk Call Manager/11.0.0"
LOGIN_FAIL_DELAY = 1.0  # seconds before "Authentication failed" (ami-login-wrong-secret.txt)

Rows = Sequence[tuple[str, str]]


def format_message(rows: Iterable[tuple[str, str]]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in rows) + "\r\n").encode()


def event_tv(now: float | None = None) -> str:
    moment = dt.datetime.fromtimestamp(time.time() if now is None else now, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


class AmiMessage:
    def __init__(self, rows: list[tuple[str, str]]) -> None:
        self.rows = rows

    def get(self, key: str) -> str | None:
        low = key.lower()
        for k, v in self.rows:
            if k.lower() == low:
                return v
        return None

    def get_all(self, key: str) -> list[str]:
        low = key.lower()
        return [v for k, v in self.rows if k.lower() == low]

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")


class AmiConnection:
    def __init__(
        self, server: AmiServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.user: str | None = None
        self.authenticated = False
        self.event_mask: frozenset[str] | None = None  # None: every class
        self.session_id = f"0x{id(self):x}"
        self.session_tv = event_tv()
        local = writer.get_extra_info("sockname") or ("127.0.0.1", 0)
        remote = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        self.local = f"IPV4/TCP/{local[0]}/{local[1]}"
        self.remote = f"IPV4/TCP/{remote[0]}/{remote[1]}"

    def send(self, rows: Iterable[tuple[str, str]]) -> None:
        self.write(format_message(rows))

    def write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    def respond(self, msg: AmiMessage, response: str, rows: Rows = ()) -> None:
        """`Response:` first, then ActionID when the action had one, then `rows`."""
        head = [("Response", response)]
        if msg.action_id is not None:
            head.append(("ActionID", msg.action_id))
        self.send(head + list(rows))

    def error(self, msg: AmiMessage, message: str) -> None:
        self.respond(msg, "Error", [("Message", message)])

    def wants(self, privilege: str) -> bool:
        if not self.authenticated:
            return False
        if self.event_mask is None:
            return True
        return any(c in self.event_mask for c in privilege.split(",") if c != "all")


ActionHandler = Callable[[AmiConnection, AmiMessage], Awaitable[None]]


async def read_message(reader: asyncio.StreamReader) -> AmiMessage | None:
    rows: list[tuple[str, str]] = []
    while True:
        raw = await reader.readline()
        if not raw:
            return None
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if rows:
                return AmiMessage(rows)
            continue
        key, sep, value = line.partition(":")
        if sep:
            rows.append((key.strip(), value.lstrip(" ")))


class AmiServer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        users: Mapping[str, str],
        simtime: SimTime,
        actions: Mapping[str, ActionHandler],
    ) -> None:
        self.host = host
        self.port = port
        self.users = dict(users)
        self.time = simtime
        self.actions = {k.lower(): v for k, v in actions.items()}
        self.shutting_down = False
        self.boot_time = time.time()
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[AmiConnection] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.boot_time = time.time()
        self.shutting_down = False

    def close_sessions(self, *, restart: bool, announce: bool = True) -> None:
        """Stop listening; tell every session (Event: Shutdown) and close it. Their tasks end
        on their own (EOF); `wait_closed()` waits for them."""
        if self._server is not None:
            self._server.close()
        if announce:
            self.broadcast(
                "Shutdown",
                "system,all",
                [("Shutdown", "Cleanly"), ("Restart", "True" if restart else "False")],
            )
        for conn in list(self._conns):
            conn.writer.close()

    def drop_connections(self) -> None:
        """Cut every AMI connection (no Shutdown event, no Goodbye) and keep listening: a network
        fault between the dialer and Asterisk, not a restart. The calls go on."""
        for conn in list(self._conns):
            conn.writer.transport.abort()

    async def wait_closed(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5.0)
        for task in list(self._tasks):  # only a session stuck in an action gets here
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    @property
    def connections(self) -> int:
        return len(self._conns)

    # -- events --------------------------------------------------------------------------
    def broadcast(self, event: str, privilege: str, headers: Rows) -> None:
        targets = [c for c in self._conns if c.wants(privilege)]
        if not targets:
            return
        data = format_message([("Event", event), ("Privilege", privilege), *headers])
        for conn in targets:
            conn.write(data)

    # -- sessions ------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        conn = AmiConnection(self, reader, writer)
        self._conns.add(conn)
        try:
            writer.write((BANNER + "\r\n").encode())
            while True:
                msg = await read_message(reader)
                if msg is None or not await self._handle(conn, msg):
                    break
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            log.debug("sim AMI: session ended: %s", exc)
        finally:
            self._conns.discard(conn)
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _handle(self, conn: AmiConnection, msg: AmiMessage) -> bool:
        """Answer one action; False closes the session."""
        action = msg.get("Action")
        if action is None:
            conn.error(msg, "Missing action in request")
            return True
        name = action.lower()
        if self.shutting_down and name != "logoff":
            conn.error(msg, "Asterisk is shutting down")
            return True
        if name == "logoff":
            conn.respond(msg, "Goodbye", [("Message", "Thanks for all the fish.")])
            return False
        if name == "login":
            return await self._login(conn, msg)
        if not conn.authenticated:
            conn.error(msg, "Permission denied")
            return True
        if name == "ping":
            conn.respond(msg, "Success", [("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}")])
        elif name == "events":
            mask = (msg.get("EventMask") or "on").strip().lower()
            conn.event_mask = self._mask(mask)
            conn.respond(
                msg, "Success", [("Events", "Off" if conn.event_mask == frozenset() else "On")]
            )
        elif name in self.actions:
            await self.actions[name](conn, msg)
        else:
            conn.error(
                msg,
                f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands.",
            )
            conn.send(
                [
                    ("Event", "RequestBadFormat"),
                    ("Privilege", "security,all"),
                    ("EventTV", event_tv()),
                    ("Severity", "Error"),
                    ("Service", "AMI"),
                    ("EventVersion", "1"),
                    ("SessionID", conn.session_id),
                    ("LocalAddress", conn.local),
                    ("RemoteAddress", conn.remote),
                    ("RequestType", f"Action: {action}"),
                    ("SessionTV", conn.session_tv),
                    ("AccountID", conn.user or ""),
                ]
            )
        return True

    @staticmethod
    def _mask(value: str) -> frozenset[str] | None:
        if value in ("on", "yes", "true", "all", ""):
            return None
        if value in ("off", "no", "false", "none"):
            return frozenset()
        return frozenset(p.strip() for p in value.split(",") if p.strip())

    async def _login(self, conn: AmiConnection, msg: AmiMessage) -> bool:
        if conn.authenticated:
            conn.respond(msg, "Success", [("Message", "Already authenticated")])
            return True
        user = msg.get("Username") or ""
        secret = msg.get("Secret") or ""
        if user not in self.users or self.users[user] != secret:
            log.info("sim AMI: failed login for %r", user)
            await self.time.sleep(LOGIN_FAIL_DELAY)
            conn.error(msg, "Authentication failed")
            return False
        conn.user = user
        conn.authenticated = True
        events = msg.get("Events")
        if events is not None:
            conn.event_mask = self._mask(events.strip().lower())
        uptime = str(int(time.time() - self.boot_time))
        conn.respond(msg, "Success", [("Message", "Authentication accepted")])
        if conn.wants("system,all"):
            conn.send(
                [
                    ("Event", "FullyBooted"),
                    ("Privilege", "system,all"),
                    ("Uptime", uptime),
                    ("LastReload", uptime),
                    ("Status", "Fully Booted"),
                ]
            )
        if conn.wants("security,all"):
            conn.send(
                [
                    ("Event", "SuccessfulAuth"),
                    ("Privilege", "security,all"),
                    ("EventTV", event_tv()),
                    ("Severity", "Informational"),
                    ("Service", "AMI"),
                    ("EventVersion", "1"),
                    ("AccountID", user),
                    ("SessionID", conn.session_id),
                    ("LocalAddress", conn.local),
                    ("RemoteAddress", conn.remote),
                    ("UsingPassword", "0"),
                    ("SessionTV", conn.session_tv),
                ]
            )
        return True
