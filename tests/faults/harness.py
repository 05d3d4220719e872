"""The product as `ivr run` assembles it (ivr.runtime.start_services: FastAGI server, AMI client,
dialer with its health gate and periodic reconcile) against the simulated Asterisk, on a clock
that runs as fast as the simulator, plus the checks every fault scenario makes (issue 15).

Waiting is always on a condition, polled, with a generous deadline that only bounds a hang.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from ivr.clock import FastClock
from ivr.config import Settings
from ivr.db.models import Account, AttemptResult, CallAttempt, DebtCase, PhoneNumber
from ivr.dialer.engine import Dialer
from ivr.dialer.retry import FAULT_RESULTS, LOST
from ivr.dialer.selector import IN_FLIGHT
from ivr.runtime import (
    SIM_SECRET,
    SIM_USER,
    Services,
    simulator_server,
    start_services,
    stop_services,
)
from ivr.sim import Callee, SimulatedAsterisk, book_from_mapping
from ivr.wiring import Database
from tests.dialer.conftest import add_case

REPO = Path(__file__).resolve().parents[2]
UTC = dt.UTC
START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # Monday 11:00 in Moscow: inside the call window
SPEED = 50.0  # clock and simulator seconds per real second
DEADLINE = float(os.environ.get("IVR_FAULTS_DEADLINE", "180"))  # real seconds; only bounds a hang

# Results of attempts that reached the subscriber's line (or may have: lost)
CALL_RESULTS = frozenset({
    AttemptResult.ANSWERED.value, AttemptResult.BUSY.value, AttemptResult.NO_ANSWER.value,
    AttemptResult.MACHINE.value, AttemptResult.CONGESTION.value, AttemptResult.FAILED.value,
})
SERVED = CALL_RESULTS | {LOST}  # a final result that is not a fault of ours


def callees(numbers: list[str]) -> dict[str, Callee]:
    """Most answer and stay a while (the script runs to its end), some ring out, some are busy."""
    book: dict[str, Callee] = {}
    for i, number in enumerate(numbers):
        digits = number.lstrip("+")
        if i % 5 == 3:
            book[digits] = Callee(outcome="no_answer")
        elif i % 5 == 4:
            book[digits] = Callee(outcome="busy", answer_after=3.0)
        else:
            book[digits] = Callee(outcome="answer", answer_after=3.0, hangup_after=120.0)
    return book


def populate(db: Database, n: int, prefix: str = "+79165") -> list[str]:
    numbers = [f"{prefix}{i:06d}" for i in range(n)]
    with db.sessions.begin() as session:
        for number in numbers:
            add_case(session, phones=[number])
    return numbers


def make_settings(tmp: Path, db_url: str, dialer_id: str, **extra: object) -> Settings:
    values: dict[str, object] = dict(
        database_url=db_url, agi_host="127.0.0.1", agi_port=0, calls_per_second=50.0,
        dialer_tick_seconds=5.0, dialer_id=dialer_id, audio_cache_dir=tmp / "audio",
        prompts_dir=REPO / "prompts", originate_timeout_ms=30000,
    )
    values.update(extra)
    return dataclasses.replace(Settings(), **values)  # type: ignore[arg-type]


@dataclass
class Robot:
    """One `ivr run` (FastAGI + AMI + dialer loop) on the simulator."""

    services: Services
    task: asyncio.Task[None]
    stop: asyncio.Event

    @property
    def dialer(self) -> Dialer:
        assert self.services.dialer is not None
        return self.services.dialer

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait([self.task], timeout=30)
        await stop_services(self.services, grace=2)


async def start_robot(settings: Settings, db: Database, sim: SimulatedAsterisk, clock: FastClock,
                      lines: int) -> Robot:
    services = await start_services(settings, db, clock, servers=(simulator_server(sim.ami_port, lines),),
                                    with_web=False, run_dialer_loop=False)
    assert await services.ami["sim"].wait_connected(30), "AMI login to the simulator failed"
    stop = asyncio.Event()
    assert services.dialer is not None
    task = asyncio.create_task(services.dialer.run(stop))
    return Robot(services, task, stop)


def new_sim(numbers: list[str], lines: int | None, book: dict[str, Callee] | None = None) -> SimulatedAsterisk:
    return SimulatedAsterisk(book_from_mapping(book or callees(numbers)), users={SIM_USER: SIM_SECRET},
                             speed=SPEED, channel_limit=lines)


async def wait_for(what: str, check: Callable[[], Awaitable[bool]], deadline: float = DEADLINE) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not await check():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)


def attempts(db: Database) -> list[CallAttempt]:
    with db.sessions() as session:
        return list(session.scalars(select(CallAttempt).order_by(CallAttempt.id)))


def in_flight(db: Database) -> int:
    return sum(1 for a in attempts(db) if a.state in IN_FLIGHT)


def served_everyone(db: Database, numbers: Collection[str]) -> bool:
    """Nothing in flight, and every number has an attempt with a final result that is not ours
    to blame (faults are retried soon, so everyone is eventually served)."""
    rows = attempts(db)
    if any(a.state in IN_FLIGHT for a in rows):
        return False
    served = {a.phone for a in rows if a.result in SERVED}
    return set(numbers) <= served


async def wait_settled(db: Database, sim: SimulatedAsterisk, numbers: Collection[str]) -> None:
    async def settled() -> bool:
        return sim.active_calls == 0 and await asyncio.to_thread(served_everyone, db, numbers)

    try:
        await wait_for("every number served and nothing in flight", settled, deadline=DEADLINE)
    except AssertionError as exc:
        rows = await asyncio.to_thread(attempts, db)
        table = "; ".join(f"{a.phone[-2:]} {a.dialer_id} {a.state}/{a.result}" for a in rows)
        raise AssertionError(f"{exc}; sim calls up: {sim.active_calls}; attempts: {table}") from None


def check_invariants(db: Database, sims: Collection[SimulatedAsterisk], line_limit: int) -> list[CallAttempt]:
    """What every fault scenario asserts; returns the attempts for scenario-specific checks."""
    rows = attempts(db)
    # no attempt left in flight, and every attempt has a definite result
    assert [a.action_id for a in rows if a.state in IN_FLIGHT] == []
    assert [a.action_id for a in rows if a.result is None] == []
    # every result in a known class
    assert {a.result for a in rows} <= SERVED | FAULT_RESULTS, {a.result for a in rows}
    # nobody originated twice: each Originate Asterisk saw is one attempt in the database, and a
    # person's attempts never overlap (the next one is claimed only after the last one ended)
    seen: dict[str, int] = defaultdict(int)
    for sim in sims:
        for number, count in sim.originates_by_number().items():
            seen[number] += count
    recorded: dict[str, int] = defaultdict(int)
    for a in rows:
        if a.originated_at is not None and a.result != "refused":
            recorded[a.phone.lstrip("+")] += 1
    assert dict(seen) == dict(recorded)
    by_phone: dict[str, list[CallAttempt]] = defaultdict(list)
    for a in rows:
        by_phone[a.phone].append(a)
    for phone, mine in by_phone.items():
        for before, after in zip(mine, mine[1:], strict=False):
            assert before.ended_at is not None and after.created_at >= before.ended_at, phone
    # the line limit held at every moment
    for sim in sims:
        assert sim.max_live <= line_limit, (sim.max_live, line_limit)
    # nobody stays locked
    with db.sessions() as session:
        locked = list(session.scalars(select(Account.id).where(Account.dial_lock_owner.is_not(None))))
        assert locked == []
        assert session.scalar(select(DebtCase.id).limit(1)) is not None
        assert session.scalar(select(PhoneNumber.id).limit(1)) is not None
    return rows
