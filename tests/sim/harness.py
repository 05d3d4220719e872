"""A simulated Asterisk + a test FastAGI server + a logged-in raw AMI client, wired together."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ivr import dialplan_vars as dv
from ivr.sim import Callee, SimulatedAsterisk
from tests.sim.wire import AgiServer, AmiClient, Message, Script, header

CALLER = '"Ivanov Ivan" <79161234567>'
# sound lengths as the recordings measured them (endpos / 8000) or longer than any use
SOUNDS: dict[str, float | None] = {
    "beep": 3404 / 8000,
    "hello-world": 11234 / 8000,
    "tt-monkeys": 129440 / 8000,
    "demo-congrats": 5.0,
    "vm-enter-num-to-call": 2.0,
    "no-such-sound-file": None,
    "ru/hello-world": 8023 / 8000,
}


def sound_duration(name: str) -> float | None:
    if name.startswith("ru/"):
        return SOUNDS.get(name)  # unknown in Russian: the plain name is used
    return SOUNDS.get(name, 2.0)


@dataclass
class Harness:
    sim: SimulatedAsterisk
    agi: AgiServer
    ami: AmiClient

    async def originate(
        self,
        action_id: str,
        *,
        channel: str = "Local/s@debtor-sim",
        script: str = "test",
        call_id: str | None = None,
        variables: Sequence[str] = (),
        timeout: int = 30000,
        context: str = dv.CONTEXT_ROBOT,
        caller: str | None = CALLER,
        asynchronous: bool = True,
    ) -> Message:
        rows = [
            ("Action", "Originate"),
            ("ActionID", action_id),
            ("Channel", channel),
            ("Context", context),
        ]
        rows += [("Exten", "s"), ("Priority", "1"), ("Timeout", str(timeout))]
        if caller is not None:
            rows.append(("CallerID", caller))
        if asynchronous:
            rows.append(("Async", "true"))
        rows.append(("Variable", f"{dv.AGI_URL}={self.agi.url}"))
        rows.append(("Variable", f"{dv.SCRIPT}={script}"))
        if call_id is not None:
            rows.append(("Variable", f"{dv.CALL_ID}={call_id}"))
        rows += [("Variable", v) for v in variables]
        self.ami.send(*rows)
        # the action's own response, so that the call exists in the simulator afterwards
        got = await self.ami.read_until(
            lambda m: header(m, "ActionID") == action_id and header(m, "Event") is None
        )
        self.ami.pending[:0] = got[:-1]  # events of earlier calls stay readable, in order
        return got[-1]


@contextlib.asynccontextmanager
async def harness(
    book: Callable[[str], Callee] | Callee,
    *,
    speed: float = 20.0,
    scripts: dict[str, Script] | None = None,
    default: Script | None = None,
    events: str | None = None,
    users: dict[str, str] | None = None,
    **kwargs: Any,
) -> AsyncIterator[Harness]:
    if isinstance(book, Callee):
        fixed = book
        book = lambda _number: fixed  # noqa: E731
    kwargs.setdefault("sound_duration", sound_duration)
    sim = SimulatedAsterisk(book, users=users or {"ivr": "secret"}, speed=speed, **kwargs)
    agi = AgiServer(speed=speed, scripts=scripts or {}, default=default)
    await agi.start()
    await sim.start()
    ami = await AmiClient.connect(sim.ami_port)
    user, secret = next(iter((users or {"ivr": "secret"}).items()))
    reply = await ami.login(user, secret, events=events)
    assert ("Message", "Authentication accepted") in reply
    if events is None:
        assert [header(await ami.read(), "Event") for _ in range(2)] == [
            "FullyBooted",
            "SuccessfulAuth",
        ]
    try:
        yield Harness(sim, agi, ami)
        assert not agi.errors, agi.errors
    finally:
        await ami.close()
        await sim.stop()
        await agi.stop()
