"""The forecast checked against the simulator (issue 13): two simulated campaign days make the
history (the second one with repeat calls of the first day's subscribers), a forecast is made for
the third day before it runs, then that day runs and the forecast's finish time (from the window
opening), answered calls and callbacks per queue must come within 15 % of what the day did.

The days run like `ivr demo`: the real dialer, AMI client, FastAGI server and call script on the
simulated Asterisk, a FastClock, idle stretches skipped. Callees come from the simulator's
`QuotaBook`: the demo's mix of answer, busy, no answer and machine, with personas that give
reasons routed to each operator queue, met in exact proportions rather than by independent draws
(see its docstring: with independent draws, counts of a few dozen tasks per queue carry more
Poisson noise than the 15 % being checked, so the check would measure the dice, not the model).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

from sqlalchemy import func, select

from ivr.clock import FastClock
from ivr.db.models import CallAttempt, CallbackTask, CaseState, DebtCase
from ivr.dialer.policy import load_rules
from ivr.forecast_db import make_forecast
from ivr.runtime import (
    SIM_SECRET,
    SIM_USER,
    in_flight,
    simulator_server,
    start_services,
    stop_services,
)
from ivr.sim import SimulatedAsterisk
from ivr.sim.population import QuotaBook
from ivr.wiring import Database
from tests.dialer.conftest import add_case
from tests.faults.harness import make_settings

log = logging.getLogger(__name__)

UTC = dt.UTC
DAY1 = dt.date(2026, 3, 2)  # a Monday: Moscow window 09:00-20:00 (06:00-17:00 UTC)
OPENS = dt.time(6, 0)
SPEED = 50.0
LINES = 5  # few lines: the day is bound by the lines, not by how fast this machine runs the robot
PER_DAY = 150  # new cases entering the ladder each day
# Who answers: enough of them give a reason or ask for a person that each queue gets a few dozen
# tasks on the checked day (a count of n is only known to about 1/n in exact quotas: 15 % needs
# well over ten). Reason key 3 goes to billing, 4 to quality, 6 to retention
# (ivr/data/defaults.toml); "human" (key 9) goes to billing.
PERSONAS = {"reason": 0.60, "human": 0.10, "promise": 0.10, "paid": 0.05, "silent": 0.05,
            "hangup_early": 0.03, "wrong_party": 0.04, "opt_out": 0.03}
MENU = {"reason_keys": "346"}
TOLERANCE = 0.15


DAYS = 3  # the forecast is made before the last one


def _populate(db: Database) -> None:
    """PER_DAY new cases a day: opened the day before, a case enters the first stage that day."""
    with db.sessions.begin() as session:
        for day in range(DAYS):
            for i in range(PER_DAY):
                add_case(session, phones=[f"+7495{day * 5000 + i:07d}"], stage_code=None,
                         opened_on=DAY1 + dt.timedelta(days=day - 1))


def _next_due(db: Database, now: dt.datetime) -> dt.datetime | None:
    """When the next active case falls due; a case the dialer has not looked at yet (no time
    written) is due now. (The demo's loop treats those as nothing to do, and on a slow start it
    stopped the day before its first call.)"""
    active = DebtCase.state == CaseState.ACTIVE.value
    with db.sessions() as session:
        if session.scalar(select(DebtCase.id).where(active, DebtCase.next_attempt_at.is_(None)).limit(1)):
            return now
        value = session.scalar(select(func.min(DebtCase.next_attempt_at)).where(active))
    return value.replace(tzinfo=UTC) if value is not None else None


async def _run_day(db: Database, settings: object, day: dt.date, book: QuotaBook) -> None:
    """One campaign day from just before the window opens to the next morning (idle skipped)."""
    start = dt.datetime.combine(day, dt.time(5, 30), tzinfo=UTC)
    end = start + dt.timedelta(days=1)
    clock = FastClock(start, SPEED)
    book.today = lambda: clock.now().date()
    sim = SimulatedAsterisk(book, users={SIM_USER: SIM_SECRET}, speed=SPEED, channel_limit=LINES)
    await sim.start()
    services = await start_services(settings, db, clock,  # type: ignore[arg-type]
                                    servers=(simulator_server(sim.ami_port, LINES),),
                                    with_web=False, run_dialer_loop=False)
    try:
        dialer = services.dialer
        assert dialer is not None
        assert await services.ami["sim"].wait_connected(30)
        await dialer.reconcile()
        while clock.now() < end:
            sent = await dialer.run_once()
            flying = await asyncio.to_thread(in_flight, db)
            if sent == 0 and flying == 0:
                nxt = await asyncio.to_thread(_next_due, db, clock.now())
                if nxt is None or nxt >= end:
                    break
                clock.jump(max(nxt - clock.now(), dt.timedelta(minutes=5)) + dt.timedelta(seconds=1))
                continue
            await asyncio.sleep(0.05)
        for _ in range(2000):  # the last calls end on their own (bounded only against a hang)
            if await asyncio.to_thread(in_flight, db) == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        await stop_services(services, grace=5)
        await sim.stop()


def _actual(db: Database, day: dt.date) -> tuple[float, int, dict[str, int]]:
    since = dt.datetime.combine(day, dt.time(0, 0))
    until = since + dt.timedelta(days=1)
    with db.sessions() as session:
        last = session.scalar(select(func.max(CallAttempt.ended_at)).where(
            CallAttempt.created_at >= since, CallAttempt.created_at < until))
        answered = session.scalar(select(func.count()).select_from(CallAttempt).where(
            CallAttempt.created_at >= since, CallAttempt.created_at < until, CallAttempt.result == "answered"))
        queues = dict(session.execute(select(CallbackTask.queue, func.count()).where(
            CallbackTask.created_at >= since, CallbackTask.created_at < until, CallbackTask.attempt_id.is_not(None))
            .group_by(CallbackTask.queue)).all())
    assert last is not None
    hours = (last - dt.datetime.combine(day, OPENS)).total_seconds() / 3600
    return hours, int(answered or 0), {q: int(n) for q, n in queues.items()}


def _error(forecast: float, actual: float) -> float:
    return abs(forecast - actual) / actual


def test_forecast_made_before_a_day_comes_within_15_percent(db: Database, tmp_path: Path) -> None:
    _populate(db)
    settings = make_settings(tmp_path, str(db.engine.url), "forecast-sim", calls_per_second=10.0)
    book = QuotaBook(seed=13, personas=PERSONAS, menu=MENU)

    for day in range(DAYS - 1):  # the history
        asyncio.run(_run_day(db, settings, DAY1 + dt.timedelta(days=day), book))

    last = DAY1 + dt.timedelta(days=DAYS - 1)
    before = dt.datetime.combine(last, dt.time(5, 30), tzinfo=UTC)
    with db.sessions() as session:
        fc = make_forecast(session, load_rules(session), before, LINES, weeks=1)
    assert not fc.prior and fc.measured_attempts >= PER_DAY
    assert fc.hours_from_open is not None and fc.opens == dt.datetime.combine(last, OPENS, tzinfo=UTC)

    asyncio.run(_run_day(db, settings, last, book))
    hours, answered, queues = _actual(db, last)

    predicted_queues = fc.callbacks_today
    report = (f"finish {fc.hours_from_open:.2f} h vs {hours:.2f} h; answered {fc.answered} vs {answered}; "
              f"callbacks {predicted_queues} vs {queues}; plan {fc.cases_today} cases")
    log.warning("forecast check: %s", report)
    print("forecast check:", report)
    assert _error(fc.hours_from_open, hours) <= TOLERANCE, report
    assert _error(fc.answered, answered) <= TOLERANCE, report
    # every queue that got tasks, and their total, within the same 15 %
    assert set(queues) == set(predicted_queues), report
    for queue, count in {**queues, "total": sum(queues.values())}.items():
        predicted = sum(predicted_queues.values()) if queue == "total" else predicted_queues[queue]
        assert count >= 15, f"{queue}: too few tasks for a 15 % check; {report}"
        assert _error(predicted, count) <= TOLERANCE, f"{queue}; {report}"
