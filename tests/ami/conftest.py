"""Helpers for the AMI tests: replay servers, a client wired to record its callbacks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ivr.ami.client import AMIClient
from ivr.ami.types import CallEnded, OriginateRequest, OriginateResult
from tests.ami.fake_ami import ReplayServer

FAST: dict[str, Any] = {"ping_interval": 60.0, "ping_timeout": 1.0, "reconnect_min": 0.05, "reconnect_max": 0.4,
        "connect_timeout": 2.0, "action_timeout": 2.0}

CALLER_ID = '"Ivanov Ivan" <79161234567>'


async def eventually(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Wait until ``predicate()`` holds; fail the test otherwise. The time-out only bounds a hang
    (a busy machine can be slow by seconds): never use it to mean "did not happen"."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.005)


@dataclass
class Recorder:
    results: list[OriginateResult] = field(default_factory=list)
    ended: list[CallEnded] = field(default_factory=list)
    changes: list[bool] = field(default_factory=list)
    lost: list[list[str]] = field(default_factory=list)

    def attach(self, client: AMIClient) -> None:
        # a mix of sync and coroutine callbacks, as the client must accept both
        client.on_originate_result = self.results.append

        async def ended(event: CallEnded) -> None:
            await asyncio.sleep(0)
            self.ended.append(event)

        client.on_call_ended = ended
        client.on_connection_change = self.changes.append
        client.on_lost_originates = self.lost.append


@dataclass
class Rig:
    server: ReplayServer
    client: AMIClient
    rec: Recorder


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def rig(transcripts: Path) -> AsyncIterator[RigFactory]:
    """``await rig("ami-originate-busy.txt", **server_options, client={...})``."""
    made: list[Rig] = []

    async def make(name: str, *, client: dict[str, Any] | None = None, start: bool = True,
                   username: str = "lab", secret: str = "labsecret", **server_options: Any) -> Rig:
        server = ReplayServer(transcripts / name, **server_options)
        port = await server.start()
        ami = AMIClient("127.0.0.1", port, username, secret, **{**FAST, **(client or {})})
        rec = Recorder()
        rec.attach(ami)
        made.append(Rig(server, ami, rec))
        if start:
            await ami.start()
        return made[-1]

    yield make
    for item in made:
        await item.client.stop()
        await item.server.close()


def request(action_id: str, channel: str = "Local/s@debtor-sim", *, exten: str = "s",
            timeout_ms: int = 30000, **variables: str) -> OriginateRequest:
    """An Originate shaped like the recorded ones (README: "How the calls were made")."""
    return OriginateRequest(action_id=action_id, channel=channel, context="robot", exten=exten,
                            priority=1, timeout_ms=timeout_ms, caller_id=CALLER_ID,
                            variables=variables)
