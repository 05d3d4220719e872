"""A fake AMI server on 127.0.0.1 that replays a recorded transcript (see transcript.py).

For each recorded TCP connection it sends the recorded ``<<`` messages in order and, at each
recorded ``>>`` action, waits for the client's action with the same ``Action:`` header. Recorded
gaps between messages are compressed (``scale``, capped at ``cap`` seconds).

What it changes in the recording, each the way Asterisk itself behaves:

* ActionIDs: the recorded ActionID of each action is replaced by the client's in everything sent
  afterwards (replies and OriginateResponse events). If the recorded action had no ActionID but
  the client's has one, the reply gets it (Asterisk echoes ActionID iff the action had one).
* Originate variables the recording did not have (IVR_CALL_ID): Asterisk emits one VarSet per
  Originate variable on each channel (``;1`` and ``;2``); so after the first recorded VarSet of an
  Originate variable on a channel, VarSets for the extra variables are sent for that channel,
  with values decoded as Asterisk decodes ``Variable:`` headers (:func:`asterisk_variables`).
* Between recorded connections ("reconnect attempt N failed: ... Connect call failed") the
  listening socket is closed, so connection attempts are refused, then reopened on the same port.

Everything the client sent is kept in ``received`` for assertions (e.g. never a second Originate).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from tests.ami import transcript as tr


def separate_args(buf: str, delim: str = ",") -> list[str]:
    """Python rendering of Asterisk's __ast_app_separate_args(buf, delim, remove_chars=1)."""
    args: list[str] = []
    chars = list(buf)
    i = 0
    paren = quote = bracket = 0
    was_delim = False
    start_new = True
    current: list[str] = []
    while i < len(chars):
        if start_new:
            current = []
            start_new = False
            was_delim = False
        ch = chars[i]
        if ch == "(":
            paren += 1
            current.append(ch)
        elif ch == ")":
            if paren:
                paren -= 1
            current.append(ch)
        elif ch == "[":
            bracket += 1
            current.append(ch)
        elif ch == "]":
            if bracket:
                bracket -= 1
            current.append(ch)
        elif ch == '"' and delim != '"':
            quote = 0 if quote else 1  # the quote character itself is removed
        elif ch == "\\":
            i += 1  # the backslash is removed and the next character taken literally
            if i < len(chars):
                current.append(chars[i])
        elif ch == delim and not paren and not quote and not bracket:
            args.append("".join(current))
            start_new = True
            was_delim = True
        else:
            current.append(ch)
        i += 1
    if not start_new:
        args.append("".join(current))
    elif was_delim:
        args.append("")  # a trailing delimiter gives one more (empty) argument
    return args


def asterisk_variables(header_value: str) -> list[tuple[str, str]]:
    """What Asterisk stores for one ``Variable:`` header (main/manager.c man_do_variable_value)."""
    out: list[tuple[str, str]] = []
    for arg in separate_args(header_value.lstrip(" \t")):
        name, sep, value = arg.partition("=")
        if sep and name:
            out.append((name, value))
    return out


@dataclass
class _Step:
    kind: str  # send | expect | close | client_close
    t: float
    message: str = ""


@dataclass
class _Connection:
    steps: list[_Step] = field(default_factory=list)
    refused_before: bool = False  # a refused attempt was recorded before this connection


def _script(path: Path) -> list[_Connection]:
    conns: list[_Connection] = []
    refused = False
    for item in tr.parse(path):
        if item.direction == tr.NOTE:
            if item.message.startswith("TCP connect"):
                conns.append(_Connection(refused_before=refused))
                refused = False
            elif "Connect call failed" in item.message:
                conns.pop()  # the "TCP connect" note of the refused attempt
                refused = True
            elif item.message.startswith("EOF"):
                conns[-1].steps.append(_Step("close", item.t))
            elif item.message.startswith("client closes"):
                conns[-1].steps.append(_Step("client_close", item.t))
            continue
        if not conns:
            raise ValueError(f"{path}: not an AMI client session (no 'TCP connect' note first)")
        kind = "send" if item.direction == tr.ASTERISK else "expect"
        conns[-1].steps.append(_Step(kind, item.t, item.message))
    return conns


def _header(message: str, name: str) -> str | None:
    for key, value in tr.headers_of(message):
        if key.lower() == name.lower():
            return value
    return None


class ReplayServer:
    def __init__(self, path: str | Path, *, port: int = 0, scale: float = 0.05, cap: float = 0.2,
                 refuse_for: float = 0.15, after_script: str = "refuse",
                 cut_after: str | None = None, silent: bool = False) -> None:
        """``after_script``: what connections after the recorded ones get: "refuse" (nothing
        listens) or "repeat" (the last recorded connection again). ``cut_after``: drop the
        connection as soon as the client sends this action, without a reply (e.g. "Originate").
        ``silent``: every connection gets the banner and the recorded Login reply, then no
        answer to anything (a hung Asterisk)."""
        self.path = Path(path)
        self.conns = _script(self.path)
        self.scale = scale
        self.cap = cap
        self.refuse_for = refuse_for
        self.after_script = after_script
        self.cut_after = cut_after
        self.silent = silent
        self._closed = False
        self.port = port
        self.accepted_at: list[float] = []  # loop time of each accepted connection
        self.waiting_for: str | None = None  # the recorded action the script now waits for
        self.received: list[tuple[int, list[tuple[str, str]]]] = []  # (connection no, headers)
        self.unexpected: list[tuple[int, str]] = []
        self.missing: list[tuple[str, str, str]] = []  # (action, header, recorded value)
        self.connections = 0
        self.finished = asyncio.Event()  # the recorded script has been played to its end
        self._server: asyncio.Server | None = None
        self._next = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port or 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        self._closed = True
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()

    def actions(self, name: str) -> list[list[tuple[str, str]]]:
        return [h for _, h in self.received if h and h[0][1] == name]

    def _delay(self, gap: float) -> float:
        return max(0.0, min(self.cap, gap * self.scale))

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _reopen_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._closed:
            return
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        index = self._next
        self._next += 1
        self.connections += 1
        self.accepted_at.append(asyncio.get_running_loop().time())
        try:
            if self.silent:
                await self._play_silent(index, reader, writer)
            elif index < len(self.conns):
                await self._play(index, self.conns[index], reader, writer)
            elif self.after_script == "repeat":
                await self._play(index, self.conns[-1], reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)
        if self.silent:
            return
        if index == len(self.conns) - 1:
            self.finished.set()
            if self.after_script == "refuse":
                await self._stop_listening()
        elif index + 1 < len(self.conns) and self.conns[index + 1].refused_before:
            await self._stop_listening()
            reopen = asyncio.create_task(self._reopen_later(self.refuse_for))
            self._tasks.add(reopen)
            reopen.add_done_callback(self._tasks.discard)

    async def _read_action(self, index: int, reader: asyncio.StreamReader) -> list[tuple[str, str]]:
        raw = await reader.readuntil(b"\r\n\r\n")
        headers = tr.headers_of(raw.decode("utf-8", errors="replace"))
        self.received.append((index, headers))
        return headers

    async def _play(self, index: int, conn: _Connection, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        ids: dict[str, str] = {}  # recorded ActionID -> client's
        echo_id: str | None = None  # reply due to an action recorded without ActionID
        extra_vars: list[tuple[str, str]] = []
        originate_vars: set[str] = set()
        injected: set[str] = set()
        prev_t = conn.steps[0].t if conn.steps else 0.0
        for step in conn.steps:
            if step.kind == "expect":
                want = _header(step.message, "Action")
                self.waiting_for = want
                while True:
                    got = await self._read_action(index, reader)
                    action = got[0][1] if got else ""
                    if action == want:
                        break
                    self.unexpected.append((index, action))
                self.waiting_for = None
                recorded = tr.headers_of(step.message)
                client_id = dict((k.lower(), v) for k, v in got).get("actionid")
                recorded_id = _header(step.message, "ActionID")
                if recorded_id is not None and client_id is not None:
                    ids[recorded_id] = client_id
                echo_id = client_id if recorded_id is None else None
                for key, value in recorded:
                    if key.lower() != "actionid" and (key, value) not in got:
                        self.missing.append((action, key, value))
                if action == "Originate":
                    rec_vars = [v for k, v in recorded if k == "Variable"]
                    got_vars = [v for k, v in got if k == "Variable"]
                    originate_vars = {n for v in rec_vars for n, _ in asterisk_variables(v)}
                    extra_vars = [nv for v in got_vars if v not in rec_vars for nv in asterisk_variables(v)]
                    injected = set()
                prev_t = step.t
                if self.cut_after == action:
                    writer.transport.abort()
                    return
                continue
            await asyncio.sleep(self._delay(step.t - prev_t))
            prev_t = step.t
            if step.kind == "close":
                writer.close()
                return
            if step.kind == "client_close":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reader.read(), 2.0)
                continue
            message = step.message
            for recorded_id, client_id in ids.items():
                message = message.replace(f"\r\nActionID: {recorded_id}\r\n", f"\r\nActionID: {client_id}\r\n")
            if echo_id is not None and message.startswith("Response:") and "\r\nActionID:" not in message:
                first, rest = message.split("\r\n", 1)
                message = f"{first}\r\nActionID: {echo_id}\r\n{rest}"
                echo_id = None
            writer.write(message.encode())
            if extra_vars and message.startswith("Event: VarSet\r\n"):
                uniqueid = _header(message, "Uniqueid") or ""
                if _header(message, "Variable") in originate_vars and uniqueid not in injected:
                    injected.add(uniqueid)
                    for name, value in extra_vars:
                        clone = message.replace(f"\r\nVariable: {_header(message, 'Variable')}\r\n",
                                                f"\r\nVariable: {name}\r\n")
                        clone = clone.replace(f"\r\nValue: {_header(message, 'Value')}\r\n",
                                              f"\r\nValue: {value}\r\n")
                        writer.write(clone.encode())
            await writer.drain()
        # script over for this connection: keep it open until the client goes
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader.read(), 5.0)

    async def _play_silent(self, index: int, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        """Banner and the recorded Login reply, then swallow everything (a hung Asterisk)."""
        steps = self.conns[0].steps
        banner = next(s.message for s in steps if s.kind == "send")
        login_reply = next(s.message for s in steps if s.kind == "send" and s.message.startswith("Response:"))
        writer.write(banner.encode())
        got = await self._read_action(index, reader)
        client_id = dict((k.lower(), v) for k, v in got).get("actionid", "")
        recorded_id = _header(login_reply, "ActionID") or ""
        writer.write(login_reply.replace(f"ActionID: {recorded_id}\r\n", f"ActionID: {client_id}\r\n").encode())
        while True:
            await self._read_action(index, reader)
