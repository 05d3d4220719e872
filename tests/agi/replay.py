"""Transcript reader and an Asterisk stand-in that replays a recorded FastAGI session over TCP.

A transcript (shared/asterisk-transcripts/agi-*.txt) becomes a list of steps:
``Send(line)`` (a ``<<`` line: Asterisk -> script), ``Expect(line)`` (a ``>>`` line the script must
send, compared byte for byte), ``HalfClose()`` (the recorded script half-closed here: the player
then requires EOF with no further bytes) and ``Close()`` (Asterisk closed the socket).

Where our channel deliberately differs from the recorded test client (it probes with CHANNEL STATUS
after ``result=-1``; it sends nothing once hung up) the tests splice steps, and every reply they
splice in is looked up in a recording (`Transcript.reply_to`), never typed by hand.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Send:
    line: str


@dataclass(frozen=True)
class Expect:
    line: str


@dataclass(frozen=True)
class HalfClose:
    pass


@dataclass(frozen=True)
class Close:
    pass


Step = Send | Expect | HalfClose | Close

_TOTALS = re.compile(r"bytes sent=(\d+), bytes received=(\d+)")


@dataclass
class Transcript:
    name: str
    env_lines: list[str]  # without the terminating blank line
    steps: list[Step]
    bytes_sent: int = 0  # by the recorded script
    bytes_received: int = 0  # by the recorded script (what Asterisk sent)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Transcript:
        env: list[str] = []
        steps: list[Step] = []
        in_env = True
        t = cls(path.stem, env, steps)
        for raw in path.read_text(encoding="utf-8").split("\n"):
            if raw.startswith("<< ") or raw == "<<":
                line = raw[3:]
                if in_env:
                    if line == "":
                        in_env = False
                    else:
                        env.append(line)
                else:
                    steps.append(Send(line))
            elif raw.startswith(">> "):
                steps.append(Expect(raw[3:]))
            elif raw.startswith("## "):
                note = raw[3:]
                t.notes.append(note)
                if "half-closes the socket" in note:
                    steps.append(HalfClose())
                elif "EOF from Asterisk" in note:
                    steps.append(Close())
                m = _TOTALS.search(note)
                if m:
                    t.bytes_sent, t.bytes_received = int(m.group(1)), int(m.group(2))
        return t

    @property
    def env(self) -> dict[str, str]:
        pairs = (line.partition(": ") if ": " in line else (line.rstrip(":"), "", "") for line in self.env_lines)
        return {key: value for key, _, value in pairs}

    @property
    def route(self) -> str:
        return self.env["agi_network_script"]

    def commands(self) -> list[str]:
        return [s.line for s in self.steps if isinstance(s, Expect)]

    def prefix(self, n_commands: int) -> list[Step]:
        """Steps through the n-th command, its reply and any notices before the next command
        or the half-close."""
        out: list[Step] = []
        seen = 0
        for step in self.steps:
            if isinstance(step, Expect | HalfClose):
                if seen == n_commands or isinstance(step, HalfClose):
                    break
                seen += 1
            out.append(step)
        assert seen == n_commands, f"{self.name} has only {seen} commands"
        return out

    def ending(self) -> list[Step]:
        """From the script's half-close to Asterisk's close (the recorded last HANGUP)."""
        i = next(i for i, s in enumerate(self.steps) if isinstance(s, HalfClose))
        return list(self.steps[i:])

    def received_after(self, command: str) -> list[str]:
        """The ``<<`` lines that followed the first `command` up to the next command."""
        out: list[str] = []
        found = False
        for step in self.steps:
            if isinstance(step, Expect):
                if found:
                    break
                found = step.line == command
            elif found and isinstance(step, Send):
                out.append(step.line)
            elif found:
                break
        assert found, f"{command!r} not in {self.name}"
        return out

    def reply_to(self, command: str) -> list[str]:
        """The recorded reply (one line, or the 520 block) to `command`, without notices."""
        return [line for line in self.received_after(command) if line != "HANGUP"]


def load(transcripts: Path, name: str) -> Transcript:
    return Transcript.load(transcripts / f"{name}.txt")


@dataclass
class PlayResult:
    client_bytes: bytes  # everything the script sent
    asterisk_bytes: int  # how many bytes we sent as Asterisk


async def play(port: int, env_lines: list[str], steps: list[Step], *, timeout: float = 5.0) -> PlayResult:
    """Be Asterisk: connect, send the environment, then walk the steps."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = bytearray()
    sent = 0
    try:
        block = "".join(f"{line}\n" for line in env_lines) + "\n"
        data = block.encode()
        writer.write(data)
        sent += len(data)
        await writer.drain()
        for step in steps:
            if isinstance(step, Send):
                data = f"{step.line}\n".encode()
                writer.write(data)
                sent += len(data)
                await writer.drain()
            elif isinstance(step, Expect):
                got = await asyncio.wait_for(reader.readline(), timeout)
                received += got
                assert got == f"{step.line}\n".encode(), f"expected {step.line!r}, script sent {got!r}"
            elif isinstance(step, HalfClose):
                rest = await asyncio.wait_for(reader.read(), timeout)
                received += rest
                assert rest == b"", f"script sent more than the recording: {rest!r}"
                assert reader.at_eof()
            elif isinstance(step, Close):
                break
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass
    return PlayResult(bytes(received), sent)
