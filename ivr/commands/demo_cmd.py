"""`ivr demo`: a whole campaign on the built-in Asterisk simulator, on a fast clock.

It writes a fresh sample billing export for today (Windows-1251, semicolons, some broken rows),
imports it, starts the simulator as the telephone network with a realistic population (answer,
busy, no-answer and machine rates; subscribers who promise, claim payment, name each kind of
reason, ask for a person, hang up early), and runs the real dialer, AMI client, FastAGI server and
call script against it. Nights and other idle stretches are skipped by moving the fast clock to the
next moment a call is allowed. Then it prints a summary."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import fcntl
import logging
import random
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ivr.config import load_settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("demo", help="run a simulated campaign end to end and print a summary")
    parser.add_argument("--days", type=int, default=2, help="campaign days to run (default 2)")
    parser.add_argument("--lines", type=int, default=20, help="simulated channel limit (default 20)")
    parser.add_argument("--speed", type=float, default=60.0,
                        help="clock speed: simulated seconds per real second (default 60); idle time is skipped")
    parser.add_argument("--accounts", type=int, default=0, help="call only the first N accounts (0 = all)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed of the simulated population")
    parser.add_argument("--dir", default="var/demo", help="working directory (database, sample files)")
    parser.add_argument("--keep", action="store_true", help="keep the previous demo database")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    if not args.verbose:
        # the summary is the demo's output; per-call logs are there with -v
        logging.getLogger().setLevel(logging.WARNING)
    return asyncio.run(_demo(settings, args))


class RetryingBook:
    """The subscriber's behaviour per call: someone busy or away on the first call may answer on
    a later one, so each call number draws from its own population."""

    def __init__(self, numbers: list[str], seed: int, today: dt.date) -> None:
        from ivr.sim import random_population

        self.rounds = [random_population(numbers, random.Random(seed + i), today=today) for i in range(3)]
        self.calls: Counter[str] = Counter()

    def __call__(self, number: str) -> Any:
        from ivr.sim import Callee

        n = self.calls[number]
        self.calls[number] += 1
        book = self.rounds[min(n, len(self.rounds) - 1)]
        return book.get(number, Callee(outcome="no_answer"))


async def _demo(settings: Any, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from ivr.billing.importer import import_accounts, import_payments
    from ivr.clock import FastClock
    from ivr.db.models import Account, PhoneNumber
    from ivr.runtime import (
        SIM_SECRET,
        SIM_USER,
        in_flight,
        simulator_server,
        start_services,
        stop_services,
    )
    from ivr.sample.generate import write_sample
    from ivr.sim import SimulatedAsterisk
    from ivr.wiring import open_database

    started = time.monotonic()
    work = Path(args.dir)
    # a second demo on the same directory would delete the database under the first one
    work.parent.mkdir(parents=True, exist_ok=True)
    lock = open(work.parent / f".{work.name}.lock", "w")  # noqa: SIM115 - held for the whole run
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"demo: another demo is running in {work}; wait for it or use --dir")
        return 1
    if work.exists() and not args.keep:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    today = dt.date.today()
    settings = dataclasses.replace(
        settings, database_url=f"sqlite:///{work / 'demo.sqlite3'}", agi_port=0, agi_host="127.0.0.1",
        calls_per_second=max(settings.calls_per_second, 5.0), dialer_tick_seconds=60.0,
    )
    db = open_database(settings)

    accounts_csv, payments_csv = write_sample(work, today)
    print(f"== import {accounts_csv} (Windows-1251, ';')")
    report = import_accounts(db.sessions, accounts_csv, settings=settings, today=today)
    print(report.summary())
    print(f"== import {payments_csv}")
    print(import_payments(db.sessions, payments_csv, settings=settings).summary())

    with db.sessions() as session:
        numbers = [n.lstrip("+") for n in session.scalars(select(PhoneNumber.number))]
        if args.accounts:
            keep = set(session.scalars(select(Account.id).order_by(Account.id).limit(args.accounts)))
            _park_others(db, keep)

    # 09:00 in Moscow on the first campaign day; zones east of Moscow are already in their day
    start = dt.datetime.combine(today, dt.time(6, 0), tzinfo=dt.UTC)
    clock = FastClock(start, args.speed)
    book = RetryingBook(numbers, args.seed, today)
    sim = SimulatedAsterisk(book, users={SIM_USER: SIM_SECRET}, speed=args.speed, channel_limit=args.lines)
    await sim.start()
    services = await start_services(settings, db, clock, servers=(simulator_server(sim.ami_port, args.lines),),
                                    with_web=False, run_dialer_loop=False)
    dialer = services.dialer
    assert dialer is not None
    ami = services.ami["sim"]
    if not await ami.wait_connected(10):
        print("demo: could not log in to the simulator's AMI")
        return 1
    end = start + dt.timedelta(days=args.days)
    print(f"== campaign: {args.days} day(s) from {start:%Y-%m-%d %H:%M} UTC, {args.lines} lines, clock x{args.speed:g}")
    try:
        # No ladder pass by hand: the dial pass stages every case it may call, and the service's
        # own scheduler sweeps the ladder (lifecycle, block list) as it does in `ivr run`.
        await dialer.reconcile()
        last_progress = time.monotonic()
        while clock.now() < end:
            if time.monotonic() - last_progress >= 15:
                last_progress = time.monotonic()
                print(f"   {clock.now():%a %H:%M} UTC: {dialer.sent} calls placed, {len(sim.calls)} seen by Asterisk",
                      flush=True)
            sent = await dialer.run_once()
            flying = await asyncio.to_thread(in_flight, db)
            if sent == 0 and flying == 0:
                nxt = await asyncio.to_thread(_next_due, db)
                if nxt is None or nxt >= end:
                    break
                # Nothing in flight and nothing sent: skip ahead to the next case that falls due
                # (at least a few minutes, so that a case due but not callable for another
                # reason cannot make this loop spin).
                clock.jump(max(nxt - clock.now(), dt.timedelta(minutes=5)) + dt.timedelta(seconds=1))
                await asyncio.sleep(0)
                continue
            await asyncio.sleep(0.05)
        # let the last calls finish
        for _ in range(600):
            if await asyncio.to_thread(in_flight, db) == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        await stop_services(services, grace=5)
        await sim.stop()
    wall = time.monotonic() - started
    print(_summary(db, sim, wall, clock.now() - start))
    last_day = (clock.now() + dt.timedelta(days=1)).date()
    print(f"database: {work / 'demo.sqlite3'}  (try: IVR_DATABASE_URL=sqlite:///{work / 'demo.sqlite3'} "
          f"ivr report funnel --from {today} --to {last_day})")
    return 0


def _park_others(db: Any, keep: set[int]) -> None:
    from sqlalchemy import update

    from ivr.db.models import DebtCase

    with db.sessions.begin() as session:
        session.execute(update(DebtCase).where(DebtCase.account_id.not_in(keep)).values(state="closed"))


def _next_due(db: Any) -> dt.datetime | None:
    from sqlalchemy import func, select

    from ivr.db.models import CaseState, DebtCase, OptOut

    open_case = (
        DebtCase.state == CaseState.ACTIVE.value,
        DebtCase.account_id.not_in(select(OptOut.account_id).where(OptOut.account_id.is_not(None))),
    )
    with db.sessions() as session:
        # a case the dial pass has not looked at yet (no time written) is due now
        fresh = session.scalar(select(DebtCase.id).where(*open_case, DebtCase.next_attempt_at.is_(None)).limit(1))
        if fresh is not None:
            return dt.datetime.min.replace(tzinfo=dt.UTC)
        value = session.scalar(select(func.min(DebtCase.next_attempt_at)).where(*open_case))
    return value.replace(tzinfo=dt.UTC) if value is not None else None


def _summary(db: Any, sim: Any, wall: float, simulated: dt.timedelta) -> str:
    from sqlalchemy import func, select

    from ivr.db.models import CallAttempt, CallbackTask, Outcome, Promise, Reason

    lines = []
    with db.sessions() as s:
        attempts = s.execute(select(CallAttempt.result, func.count()).group_by(CallAttempt.result)).all()
        total = sum(c for _r, c in attempts)
        lines.append(f"== summary ({wall:.0f} s real, {simulated.total_seconds() / 3600:.1f} h simulated)")
        lines.append(f"attempts: {total}")
        for result, count in sorted(attempts, key=lambda rc: -rc[1]):
            lines.append(f"  {result or 'in flight/unknown':<18} {count:>5}")
        kinds = s.execute(select(Outcome.kind, func.count()).group_by(Outcome.kind)).all()
        lines.append("outcomes of answered calls:")
        for kind, count in sorted(kinds, key=lambda kc: -kc[1]):
            lines.append(f"  {kind or '-':<18} {count:>5}")
        promises = s.execute(select(Promise.status, func.count()).group_by(Promise.status)).all()
        lines.append("promises: " + (", ".join(f"{st} {c}" for st, c in promises) or "none"))
        reasons = s.execute(select(Reason.code, func.count(Outcome.id)).join(Outcome, Outcome.reason_id == Reason.id)
                            .group_by(Reason.code)).all()
        lines.append("reasons named:")
        for code, count in sorted(reasons, key=lambda rc: -rc[1]):
            lines.append(f"  {code:<18} {count:>5}")
        tasks = s.execute(select(CallbackTask.queue, func.count()).group_by(CallbackTask.queue)).all()
        lines.append("callbacks by queue: " + (", ".join(f"{q} {c}" for q, c in sorted(tasks)) or "none"))
    lines.append(f"simulator: {len(sim.calls)} calls, {sum(1 for c in sim.calls if c.answered_at is not None)} answered")
    return "\n".join(lines)
