"""Test-side wire tools: transcript parsing, a tiny FastAGI server that replays a script, and a raw
AMI client. Deliberately independent of ivr.agi / ivr.ami, so the simulator is checked against
the recordings and not against our own client code."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

# -- transcripts ------------------------------------------------------------------------------

_IDLE = re.compile(r"script idle for ([\d.]+)s")


@dataclass
class Step:
    kind: str  # "send" | "recv" | "idle" | "halfclose"
    text: str = ""
    seconds: float = 0.0


def load_transcript(path: Path) -> list[Step]:
    steps: list[Step] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(">> "):
            steps.append(Step("send", line[3:]))
        elif line.startswith("<< ") or line == "<<":
            steps.append(Step("recv", line[3:]))
        elif line.startswith("## "):
            m = _IDLE.search(line)
            if m:
                steps.append(Step("idle", seconds=float(m.group(1))))
            elif "half-closes" in line:
                steps.append(Step("halfclose"))
    return steps


def env_map(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition(": ")
        out[key.rstrip(":")] = value
    return out


def split_env(received: list[str]) -> tuple[list[str], list[str]]:
    """(agi_ lines, lines after the blank line ending the block)."""
    blank = received.index("")
    return received[:blank], received[blank + 1 :]


def ami_messages(path: Path, direction: str = "<<") -> list[list[tuple[str, str]]]:
    """The AMI messages one side sent (banner excluded), as header lists."""
    out: list[list[tuple[str, str]]] = []
    cur: list[tuple[str, str]] = []
    prefix = direction + " "
    for line in path.read_text(encoding="utf-8").splitlines():
        if not (line.startswith(prefix) or line == direction):
            continue
        body = line[len(prefix) :]
        if body == "":
            if cur:
                out.append(cur)
                cur = []
            continue
        key, sep, value = body.partition(": ")
        if not sep:
            if body.endswith(":"):
                key, value = body[:-1], ""
            else:
                continue  # the banner
        cur.append((key, value))
    return out


# -- FastAGI test server ----------------------------------------------------------------------


class AgiSession:
    """One FastAGI connection seen from the script side; records every line received."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, speed: float
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.speed = speed
        self.received: list[str] = []
        self.env: dict[str, str] = {}
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self.done = asyncio.Event()  # set when the server is through with this session

    async def start(self) -> None:
        while True:
            raw = await self.reader.readline()
            line = raw.decode().rstrip("\n")
            self.received.append(line)
            if line == "":
                break
            key, _, value = line.partition(": ")
            self.env[key] = value
        self._pump = asyncio.create_task(self._read_all())

    async def _read_all(self) -> None:
        while True:
            raw = await self.reader.readline()
            if not raw:
                await self._lines.put(None)
                return
            line = raw.decode().rstrip("\n")
            self.received.append(line)
            await self._lines.put(line)

    async def cmd(self, line: str) -> str:
        """Send a command; return its reply (a 520 block joined by newlines). HANGUP notices are
        recorded in `received` but are not replies."""
        self.writer.write((line + "\n").encode())
        reply: list[str] = []
        while True:
            got = await asyncio.wait_for(self._lines.get(), 30)
            if got is None:
                raise ConnectionError(f"EOF while waiting for the reply to {line!r}")
            if not reply:
                if got == "HANGUP":
                    continue
                reply.append(got)
                if not got.startswith("520-"):
                    return got
            else:
                reply.append(got)
                if got.startswith("520 "):
                    return "\n".join(reply)

    async def idle(self, sim_seconds: float) -> None:
        await asyncio.sleep(sim_seconds / self.speed)

    async def finish(self) -> list[str]:
        """Half-close and read until Asterisk closes; returns what came after the half-close."""
        before = len(self.received)
        if self.writer.is_closing():
            return []
        with contextlib.suppress(OSError, RuntimeError):
            self.writer.write_eof()
        if self._pump is not None:
            await asyncio.wait_for(self._pump, 30)
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
        return self.received[before:]


Script = Callable[[AgiSession], Awaitable[None]]


@dataclass
class AgiServer:
    """FastAGI server for tests: route (agi_network_script) → script coroutine."""

    speed: float
    scripts: dict[str, Script] = field(default_factory=dict)
    default: Script | None = None
    sessions: list[AgiSession] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    port: int = 0
    _server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        # a backlog for a burst: with asyncio's default of 100, 1,000 simultaneous connects
        # overflow it, the kernel drops SYNs and a retried connect outlasts the simulator's
        # connect time-out on a busy machine (the product's FastAGI server uses 4096 too)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"agi://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = AgiSession(reader, writer, self.speed)
        self.sessions.append(session)
        try:
            await session.start()
            script = self.scripts.get(session.env.get("agi_network_script", ""), self.default)
            if script is not None:
                await script(session)
            await session.finish()
        except Exception as exc:  # surfaced by the test through `errors`
            self.errors.append(exc)
            writer.close()
        finally:
            session.done.set()

    async def wait_done(self, timeout: float = 30) -> None:
        """Until every session so far has been read to its end (its last HANGUP and EOF)."""
        async with asyncio.timeout(timeout):
            for session in list(self.sessions):
                await session.done.wait()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()


def replay_script(steps: list[Step]) -> Script:
    """Send the recorded commands with the recorded idle times (scaled by the session speed)."""

    async def run(session: AgiSession) -> None:
        for step in steps:
            if step.kind == "send":
                await session.cmd(step.text)
            elif step.kind == "idle":
                await session.idle(step.seconds)
            elif step.kind == "halfclose":
                return

    return run


# -- raw AMI client ---------------------------------------------------------------------------

Message = list[tuple[str, str]]


def header(msg: Message | None, key: str) -> str | None:
    for k, v in msg or ():
        if k == key:
            return v
    return None


class AmiClient:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, banner: str
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.banner = banner
        self.raw = b""
        self.pending: list[Message] = []  # read but handed back (see Harness.originate)

    @classmethod
    async def connect(cls, port: int) -> AmiClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        banner = await asyncio.wait_for(reader.readline(), 5)
        assert banner.endswith(b"\r\n")
        return cls(reader, writer, banner.decode().rstrip("\r\n"))

    def send(self, *rows: tuple[str, str]) -> None:
        self.writer.write("".join(f"{k}: {v}\r\n" for k, v in rows).encode() + b"\r\n")

    async def read(self, timeout: float = 10) -> Message | None:
        if self.pending:
            return self.pending.pop(0)
        msg: Message = []
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), timeout)
            if not raw:
                return None
            self.raw += raw
            assert raw.endswith(b"\r\n"), raw
            line = raw[:-2].decode()
            if line == "":
                if msg:
                    return msg
                continue
            key, _, value = line.partition(": ")
            if line.endswith(":") and not value:
                key = line[:-1]
            msg.append((key, value))

    async def read_until(
        self, pred: Callable[[Message], bool], timeout: float = 20
    ) -> list[Message]:
        """Messages up to and including the first one matching `pred`."""
        got: list[Message] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = await self.read(max(deadline - loop.time(), 0.01))
            if msg is None:
                raise ConnectionError(
                    f"EOF; got {[header(m, 'Event') or header(m, 'Response') for m in got]}"
                )
            got.append(msg)
            if pred(msg):
                return got

    async def until_call_gone(self, timeout: float = 20) -> list[Message]:
        """Messages up to the later of the two Hangup events of a Local pair."""
        got: list[Message] = []
        halves: set[str] = set()
        while halves != {";1", ";2"}:
            batch = await self.read_until(is_event("Hangup"), timeout)
            got += batch
            halves.add((header(batch[-1], "Channel") or "")[-2:])
        return got

    async def login(
        self, user: str = "ivr", secret: str = "secret", events: str | None = None
    ) -> Message:
        rows = [
            ("Action", "Login"),
            ("ActionID", "login-1"),
            ("Username", user),
            ("Secret", secret),
        ]
        if events is not None:
            rows.append(("Events", events))
        self.send(*rows)
        msg = await self.read()
        assert msg is not None
        return msg

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def is_event(name: str, **fields: str) -> Callable[[Message], bool]:
    def pred(msg: Message) -> bool:
        return header(msg, "Event") == name and all(header(msg, k) == v for k, v in fields.items())

    return pred


def ami_exchange(path: Path) -> list[tuple[str, Message]]:
    """The AMI conversation as ("send"|"recv", message) in wire order (banner excluded)."""
    out: list[tuple[str, Message]] = []
    cur: Message = []
    cur_dir = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(("<< ", ">> ")) or line in ("<<", ">>"):
            direction = "recv" if line.startswith("<<") else "send"
            body = line[3:]
            if body == "":
                if cur:
                    out.append((cur_dir, cur))
                    cur = []
                continue
            if ": " in body:
                key, value = body.split(": ", 1)
            elif body.endswith(":"):
                key, value = body[:-1], ""
            else:
                continue  # the banner
            cur_dir = direction
            cur.append((key, value))
    return out
