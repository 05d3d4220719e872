from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from ivr.agi.channel import AGIChannel
from ivr.agi.server import FastAGIServer

Handler = Callable[[AGIChannel], Awaitable[None]]


@dataclass
class Box:
    """What a test handler did: failures inside a handler are swallowed (logged) by the server,
    so they are captured here and re-raised by the test."""

    error: BaseException | None = None
    finished: bool = False
    calls: int = 0
    values: dict[str, object] = field(default_factory=dict)

    def check(self) -> None:
        if self.error is not None:
            raise self.error
        assert self.finished, "handler did not finish"


def capture(handler: Handler, box: Box) -> Handler:
    async def wrapped(channel: AGIChannel) -> None:
        box.calls += 1
        try:
            await handler(channel)
        except BaseException as exc:
            box.error = exc
            raise
        box.finished = True

    return wrapped


@pytest.fixture
async def agi_server() -> AsyncIterator[Callable[..., Awaitable[FastAGIServer]]]:
    servers: list[FastAGIServer] = []

    async def start(routes: dict[str, Handler], **kw: object) -> FastAGIServer:
        kw.setdefault("port", 0)
        kw.setdefault("close_timeout", 2.0)
        server = FastAGIServer(routes, **kw)  # type: ignore[arg-type]
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop(grace=2.0)


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Rate-limited warnings are process-wide; each test reads its own from a clean slate."""
    from ivr.agi import ratelog

    ratelog.reset_all()
