"""One AMI TCP session: banner, CRLF framing, replies matched by ActionID, list replies.

No login, reconnect or call logic here (that is :mod:`ivr.ami.client`). Replies are matched to
their action by ActionID only, so events and other replies may interleave freely; events are
handed on as raw bytes so the client can drop the ones it does not need without decoding them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ivr.ami import protocol as p

log = logging.getLogger(__name__)

READ_LIMIT = 4 * 1024 * 1024  # one message; Status replies of a busy server stay far below


class AMIError(Exception):
    """Asterisk answered ``Response: Error`` (its Message is kept), or the exchange failed."""

    def __init__(self, message: str, *, action: str = "", response: dict[str, str] | None = None) -> None:
        super().__init__(f"{action}: {message}" if action else message)
        self.message = message
        self.action = action
        self.response = response or {}


class AMINotConnected(AMIError):
    """No logged-in AMI session, or it closed before the reply came."""


class AMIShuttingDown(AMIError):
    """``Asterisk is shutting down``: a graceful restart is waiting for calls to end."""


class AMITimeout(AMIError):
    """No reply within the action's timeout (the connection itself may still be alive)."""


@dataclass(frozen=True)
class Reply:
    message: p.Message
    events: list[p.Message] = field(default_factory=list)  # list actions (Status): the items


@dataclass
class _Pending:
    action: str
    future: asyncio.Future[Reply]
    complete_event: str | None  # list action: the event that ends the list
    on_item: Callable[[p.Message], None] | None = None  # list items, as they arrive
    response: p.Message | None = None
    events: list[p.Message] = field(default_factory=list)


def error_for(action: str, message: p.Message) -> AMIError:
    text = message.get(p.MESSAGE) or "(no message)"
    cls = AMIShuttingDown if text == p.MSG_SHUTTING_DOWN else AMIError
    return cls(text, action=action, response=message.to_dict())


class AMIConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, banner: str, *,
                 on_event: Callable[[bytes], None], id_prefix: str) -> None:
        self.banner = banner
        self._reader = reader
        self._writer = writer
        self._on_event = on_event
        self._id_prefix = id_prefix
        self._seq = 0
        self._pending: dict[str, _Pending] = {}
        self._lists = 0  # pending list actions: only then do events need an ActionID look
        self._closed = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, host: str, port: int, *, timeout: float, on_event: Callable[[bytes], None],
                   id_prefix: str) -> AMIConnection:
        """Connect and read the banner; raises OSError, TimeoutError or AMIError."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=READ_LIMIT), timeout)
        try:
            line = await asyncio.wait_for(reader.readuntil(p.EOL_BYTES), timeout)
        except (asyncio.IncompleteReadError, TimeoutError, asyncio.LimitOverrunError) as exc:
            writer.close()
            raise AMIError(f"no AMI banner from {host}:{port} ({type(exc).__name__})") from exc
        banner = line.decode("utf-8", errors="replace").strip()
        if not banner.startswith(p.BANNER_PREFIX):
            writer.close()
            raise AMIError(f"{host}:{port} is not an AMI server (banner {banner[:60]!r})")
        conn = cls(reader, writer, banner, on_event=on_event, id_prefix=id_prefix)
        conn._task = asyncio.create_task(conn._read_loop(), name=f"ami-read-{id_prefix}")
        return conn

    # --- sending -------------------------------------------------------------------------
    def next_action_id(self) -> str:
        self._seq += 1
        return f"{self._id_prefix}-{self._seq}"

    @property
    def is_closed(self) -> bool:
        return self._closed.done()

    def submit(self, action: str, headers: Iterable[tuple[str, str]] = (), *,
               action_id: str | None = None, complete_event: str | None = None,
               on_item: Callable[[p.Message], None] | None = None) -> asyncio.Future[Reply]:
        """Write one action now and return the future of its reply.

        For a list action (``complete_event``), ``on_item`` sees each item as it is read, before
        any event that follows it on the wire.

        Raises InvalidHeader (nothing written) or AMINotConnected (nothing written). Once this
        returns, the bytes are in the transport: the action may have reached Asterisk.
        """
        aid = action_id or self.next_action_id()
        data = p.encode_action(action, [(p.ACTION_ID, aid), *headers])
        if self.is_closed or self._writer.is_closing():
            raise AMINotConnected("not connected", action=action)
        if aid in self._pending:
            raise ValueError(f"ActionID {aid!r} is already waiting for a reply")
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[aid] = _Pending(action, future, complete_event, on_item)
        if complete_event:
            self._lists += 1
        self._writer.write(data)
        return future

    async def request(self, action: str, headers: Iterable[tuple[str, str]] = (), *,
                      timeout: float, complete_event: str | None = None,
                      on_item: Callable[[p.Message], None] | None = None) -> Reply:
        """Send an action and wait for its reply; ``Response: Error`` raises AMIError."""
        aid = self.next_action_id()
        future = self.submit(action, headers, action_id=aid, complete_event=complete_event, on_item=on_item)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self.forget(aid)
            raise AMITimeout(f"no reply within {timeout:.1f}s", action=action) from None

    def forget(self, action_id: str) -> None:
        """Stop waiting for a reply (its late arrival is then ignored)."""
        pending = self._pending.pop(action_id, None)
        if pending is not None and pending.complete_event:
            self._lists -= 1

    # --- receiving -----------------------------------------------------------------------
    async def _read_loop(self) -> None:
        reason = "EOF"
        try:
            while True:
                raw = await self._reader.readuntil(p.END_OF_MESSAGE)
                try:
                    self._dispatch(raw)
                except Exception:  # a bug in a handler must not kill the session
                    log.exception("AMI: failed to handle a message")
        except asyncio.IncompleteReadError:
            reason = "EOF"
        except asyncio.LimitOverrunError:
            reason = f"message over {READ_LIMIT} bytes"
            log.error("AMI: %s; dropping the connection", reason)
        except (OSError, ConnectionError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        except asyncio.CancelledError:
            reason = "closed"
        finally:
            self._finish(reason)

    def _dispatch(self, raw: bytes) -> None:
        if raw.startswith(b"Event:"):
            if self._lists and b"\r\nActionID: " in raw:
                message = p.decode(raw)
                pending = self._pending.get(message.action_id or "")
                if pending is not None and pending.complete_event:
                    self._list_item(message.action_id or "", pending, message)
                    return
            self._on_event(raw)
            return
        message = p.decode(raw)
        if message.kind != "response":
            log.debug("AMI: ignoring a message that is neither response nor event: %r", raw[:80])
            return
        aid = message.action_id
        pending = self._pending.get(aid or "")
        if pending is None:
            # replies to actions we gave up on, or sent without ActionID: nobody is waiting
            log.debug("AMI: reply with unknown ActionID %r ignored", aid)
            return
        assert aid is not None
        is_list_start = (pending.complete_event is not None and message.name == p.SUCCESS
                         and (message.get(p.EVENT_LIST) or "").lower() == "start")
        if is_list_start:
            pending.response = message
            return
        self.forget(aid)
        if pending.future.done():
            return
        if message.name == p.ERROR:
            pending.future.set_exception(error_for(pending.action, message))
        else:
            pending.future.set_result(Reply(message))

    def _list_item(self, aid: str, pending: _Pending, message: p.Message) -> None:
        if message.name != pending.complete_event:
            pending.events.append(message)
            if pending.on_item is not None:
                pending.on_item(message)
            return
        self.forget(aid)
        if not pending.future.done():
            pending.future.set_result(Reply(pending.response or message, pending.events))

    # --- closing -------------------------------------------------------------------------
    def _finish(self, reason: str) -> None:
        if self._closed.done():
            return
        pending, self._pending = self._pending, {}
        self._lists = 0
        for item in pending.values():
            if not item.future.done():
                item.future.set_exception(
                    AMINotConnected(f"connection closed before the reply ({reason})", action=item.action))
                item.future.exception()  # mark retrieved: nobody may be awaiting any more
        self._writer.close()
        self._closed.set_result(reason)

    def abort(self) -> None:
        """Close now (keep-alive failure, stop); pending replies fail with AMINotConnected."""
        transport = self._writer.transport
        if not transport.is_closing():
            transport.abort()
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._finish("closed by us")

    async def wait_closed(self) -> str:
        """Wait until the session ends; returns why (EOF, error text, "closed by us")."""
        return await asyncio.shield(self._closed)
