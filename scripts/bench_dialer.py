#!/usr/bin/env python3
"""Benchmark of the dialer.

Part a: picking the next batch. Builds N accounts with debt cases (random time zones from UTC-12
to UTC+14, one or two phones, attempt histories, some locks and opt-outs) with bulk Core inserts
into a SQLite file (or, with --pg URL, a fresh schema of that PostgreSQL database), then times
`select_candidates(limit=100)` repeatedly on a warm database and prints p50/p95 in ms. Each pass
rolls back, so every pass does the same work (the worst case: the queue-head bumps are redone).
Goal: <= 100 ms at 1,000,000 accounts on both databases.

Part b: line use in a campaign. M accounts (default 600, one phone each, Moscow) are called over
N simulated lines (default 30) by the real product, wired as `ivr run` wires it: Dialer.run (the
production loop, refilling on every freed line), AMI client, FastAGI server and call script,
against SimulatedAsterisk with the default population mix (answer 55 %, no answer 20 %, busy
10 %, machine 10 %, congestion 3 %, failed 2 %; ring 2-15 s, no answer rings to the 30 s
originate timeout, machines talk 15-40 s, prompts last as long as their rendered WAV files).
The compliance rules are opened wide in the bench database (window 00:00-24:00 every day and
holiday, contact limits 1000, retries a day later), so it measures line use, not the rules, and
every account gets exactly one attempt. Audio is rendered for every account before timing, as a
real campaign does before it starts. The campaign ends when every number was dialled and every
call hung up. From the simulator's CallRecords: bound = sum over calls of the time each held a
line (originate to hang-up) / N; efficiency = bound / actual elapsed, for the whole campaign and
for the fill phase (first to last originate: without the final drain, when fewer calls than
lines remain). Goal: fill-phase efficiency >= 0.95.

The clock and the simulator run `--speed` times faster than real time (default 15). Every real
millisecond the software needs to react (event handling, database commits, audio preparation)
becomes `speed` simulated milliseconds, and the simulator, FastAGI, AMI and the dialer share one
interpreter (~45 ms CPU per call): on 2 cores, 20 and more put it above ~65 % of a core and the
measurement turns into one of CPU saturation. The output prints the CPU share, the event-loop lag
and a timing check of scripted call lengths, so a run can be judged.

    .venv/bin/python scripts/bench_dialer.py                        # part a, 1,000,000 accounts, SQLite
    .venv/bin/python scripts/bench_dialer.py --accounts 100000      # quick
    .venv/bin/python scripts/bench_dialer.py --pg postgresql+psycopg://ivr@127.0.0.1:55432/ivr_test
    .venv/bin/python scripts/bench_dialer.py --db /tmp/dialer.sqlite3   # build once, reuse later
    .venv/bin/python scripts/bench_dialer.py --part b               # campaign: 600 accounts, 30 lines, x15
    .venv/bin/python scripts/bench_dialer.py --part b --lines 30 --campaign-accounts 600 --speed 20
    .venv/bin/python scripts/bench_dialer.py --part all --accounts 100000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, delete, func, insert, select, text, update  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from ivr.call.audio_source import CallAudioSource  # noqa: E402
from ivr.clock import FastClock  # noqa: E402
from ivr.config import Settings  # noqa: E402
from ivr.db.base import make_engine, make_session_factory  # noqa: E402
from ivr.db.migrate import upgrade  # noqa: E402
from ivr.db.models import (  # noqa: E402
    Account,
    CallAttempt,
    CallWindow,
    ContactLimit,
    DebtCase,
    LadderStage,
    OptOut,
    PhoneNumber,
)
from ivr.db.options import set_option  # noqa: E402
from ivr.db.scratch import scratch_schema
from ivr.db.seed import seed  # noqa: E402
from ivr.dialer.policy import load_rules  # noqa: E402
from ivr.dialer.scheduler import ladder_tick  # noqa: E402
from ivr.dialer.selector import SelectionStats, select_candidates  # noqa: E402
from ivr.runtime import (  # noqa: E402
    SIM_SECRET,
    SIM_USER,
    in_flight,
    rules_loader_for,
    simulator_server,
    start_services,
    stop_services,
)
from ivr.sim import Callee, SimulatedAsterisk, book_from_mapping, random_population  # noqa: E402
from ivr.wiring import Database  # noqa: E402

# Monday 2 March 2026, 09:00 UTC: 12:00 in Moscow, evening in the Far East, night in America.
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
NAIVE_NOW = NOW.replace(tzinfo=None)
ZONES = (
    [None] * 20 + ["Europe/Moscow"] * 30
    + ["Europe/Kaliningrad", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk", "Asia/Novosibirsk",
       "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok", "Asia/Magadan",
       "Asia/Kamchatka", "Europe/Kyiv", "America/New_York", "Pacific/Kiritimati", "Etc/GMT+12"] * 2
)
PREFIXES = ("916", "903", "926", "985", "912", "495", "812", "383", "343", "423")
STAGES = ("reminder", "reminder", "reminder", "firm", "firm", "final_warning", "blocked")
RESULTS = ("answered", "busy", "no_answer", "no_answer", "machine", "congestion")
CHUNK = 20_000


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def build(engine: Engine, n: int, seed_value: int = 7) -> None:
    """N accounts, their phones, one debt case each, ~0.6 attempts each, 0.5 % opt-outs."""
    rnd = random.Random(seed_value)
    opened = dt.date(2026, 2, 10)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        for batch in _chunks(
            {"id": i, "external_id": f"B{i:08d}", "holder_name": f"Holder {i}", "service_name": "Охрана",
             "tariff": "Базовый", "balance": 1800, "currency": "RUB", "due_date": opened,
             "block_date": opened + dt.timedelta(days=21), "timezone": rnd.choice(ZONES), "language": "ru",
             "country": "RU", "created_at": NAIVE_NOW, "updated_at": NAIVE_NOW,
             # 1 % have a call in flight
             "dial_lock_owner": "bench" if i % 100 == 0 else None,
             "dial_lock_until": NAIVE_NOW + dt.timedelta(minutes=20) if i % 100 == 0 else None}
            for i in range(1, n + 1)
        ):
            conn.execute(insert(Account), batch)
        print(f"  accounts: {time.perf_counter() - t0:.1f} s", flush=True)

        def phones() -> Iterator[dict[str, Any]]:
            for i in range(1, n + 1):
                for priority in range(1, 2 + (rnd.random() < 0.3)):
                    yield {"account_id": i, "number": f"+7{rnd.choice(PREFIXES)}{rnd.randrange(10**7):07d}",
                           "priority": priority, "status": "ok" if rnd.random() < 0.97 else "invalid"}

        for batch in _chunks(phones()):
            conn.execute(insert(PhoneNumber), batch)
        print(f"  phones: {time.perf_counter() - t0:.1f} s", flush=True)

        def cases() -> Iterator[dict[str, Any]]:
            for i in range(1, n + 1):
                r = rnd.random()
                if r < 0.3:
                    next_at = None
                elif r < 0.8:
                    next_at = NAIVE_NOW - dt.timedelta(minutes=rnd.randrange(1, 3 * 24 * 60))
                else:
                    next_at = NAIVE_NOW + dt.timedelta(minutes=rnd.randrange(1, 7 * 24 * 60))
                state = "active" if rnd.random() < 0.85 else rnd.choice(("promised", "paid", "retention", "blocked"))
                yield {"id": i, "account_id": i, "opened_on": opened, "amount_initial": 1800,
                       "amount_owed": 0 if state == "paid" else 1800, "currency": "RUB", "state": state,
                       "stage_code": rnd.choice(STAGES), "attempts_in_stage": rnd.randrange(0, 3),
                       "next_attempt_at": next_at, "next_phone_priority": 1, "promise_broken": False,
                       "created_at": NAIVE_NOW, "updated_at": NAIVE_NOW}

        for batch in _chunks(cases()):
            conn.execute(insert(DebtCase), batch)
        print(f"  cases: {time.perf_counter() - t0:.1f} s", flush=True)

        def attempts() -> Iterator[dict[str, Any]]:
            for i in range(1, n + 1):
                for _ in range(rnd.choice((0, 0, 0, 1, 1, 2))):
                    at = NAIVE_NOW - dt.timedelta(minutes=rnd.randrange(30, 30 * 24 * 60))
                    yield {"debt_case_id": i, "account_id": i, "phone": "+79160000000", "stage_code": "reminder",
                           "language": "ru", "purpose": "robot", "server": "ast1", "dialer_id": "bench",
                           "action_id": uuid.UUID(int=rnd.getrandbits(128)).hex, "state": "done",
                           "result": rnd.choice(RESULTS), "created_at": at, "originated_at": at, "ended_at": at}
                if i % 100 == 0:  # the in-flight call behind the lock
                    yield {"debt_case_id": i, "account_id": i, "phone": "+79160000000", "stage_code": "reminder",
                           "language": "ru", "purpose": "robot", "server": "ast1", "dialer_id": "bench",
                           "action_id": uuid.UUID(int=rnd.getrandbits(128)).hex, "state": "dialing",
                           "result": None, "created_at": NAIVE_NOW, "originated_at": NAIVE_NOW, "ended_at": None}

        for batch in _chunks(attempts()):
            conn.execute(insert(CallAttempt), batch)
        print(f"  attempts: {time.perf_counter() - t0:.1f} s", flush=True)
        conn.execute(insert(OptOut), [{"account_id": i, "source": "admin", "created_at": NAIVE_NOW}
                                      for i in range(7, n + 1, 200)])
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    print(f"built {n:,} accounts in {time.perf_counter() - t0:.1f} s", flush=True)


def selection_bench(engine: Engine, repeat: int, limit: int) -> int:
    sessions = make_session_factory(engine)
    with sessions() as session:
        rules = load_rules(session)
    timings = []
    stats = SelectionStats()
    for i in range(repeat + 3):
        with sessions() as session:
            stats = SelectionStats()
            t0 = time.perf_counter()
            found = select_candidates(session, rules, NOW, limit, stats=stats)
            took = (time.perf_counter() - t0) * 1000
            session.rollback()  # keep the data identical for every pass
        if i >= 3:  # the first passes warm caches (pages, holiday calendars, zone data)
            timings.append(took)
    timings.sort()
    p50 = statistics.median(timings)
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    print(f"select_candidates(limit={limit}): {len(found)} selected of {stats.fetched} fetched "
          f"(outside window {stats.outside_window}, over limit {stats.over_limit}, no phone {stats.no_phone}, "
          f"bumped {stats.bumped})")
    print(f"  {repeat} warm passes: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {timings[-1]:.1f} ms "
          f"(goal <= 100 ms)")
    return 0


def part_a(args: argparse.Namespace) -> int:
    tmp: Path | None = None
    scratch = contextlib.ExitStack()
    if args.pg:
        engine, schema = scratch.enter_context(scratch_schema(args.pg, "bench_dialer"))
        where = f"PostgreSQL schema {schema}"
    else:
        if args.db:
            path = Path(args.db)
        else:
            tmp = Path(tempfile.mkdtemp(prefix="ivr-bench-dialer-"))
            path = tmp / "bench.sqlite3"
        engine = make_engine(f"sqlite:///{path}")
        where = f"SQLite {path}"
    try:
        print(f"database: {where}")
        upgrade(engine)
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            seed(session)
            have = session.scalar(select(func.count()).select_from(Account)) or 0
        if have == 0:
            build(engine, args.accounts)
        elif have != args.accounts:
            print(f"ERROR: {where} already holds {have:,} accounts (asked for {args.accounts:,})", file=sys.stderr)
            return 1
        else:
            print(f"reusing {have:,} accounts")
        return selection_bench(engine, args.repeat, args.limit)
    finally:
        engine.dispose()
        scratch.close()
        if tmp is not None:
            for p in sorted(tmp.iterdir(), reverse=True):
                p.unlink()
            tmp.rmdir()


# -- part b: a campaign on the Asterisk simulator -----------------------------------------------

TARIFFS = ((Decimal("590.00"), "Базовый"), (Decimal("890.00"), "Стандарт"), (Decimal("1290.00"), "Комфорт"),
           (Decimal("1800.00"), "Премиум"), (Decimal("2450.50"), "Бизнес"), (Decimal("3100.00"), "Бизнес+"))
SERVICES = ("Охрана квартиры", "Охрана дома", "Видеонаблюдение")
FIRST_NAMES = ("Иван", "Пётр", "Анна", "Мария", "Сергей", "Ольга", "Алексей", "Елена", "Дмитрий", "Наталья")
LAST_NAMES = ("Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Соколов", "Михайлов", "Новиков")
RETRY_OPTIONS = ("retry_busy_minutes", "retry_no_answer_minutes", "retry_congestion_minutes", "retry_failed_minutes",
                 "retry_machine_minutes", "retry_hangup_minutes")
REFUSALS = ("channel_limit", "unknown_tech")  # the simulator refused the Originate: no line was held
DAY_MINUTES = 24 * 60


def open_rules_wide(session: Session) -> None:
    """The compliance rules opened wide, so that the campaign measures line use and not the rules:
    every weekday and holiday 00:00-24:00 local, contact limits of 1000, and every retry a day
    later, so each account gets exactly one attempt inside the campaign."""
    session.execute(delete(CallWindow))
    for weekday in range(8):  # 0 = Monday .. 6 = Sunday, 7 = public holiday; end 00:00 = midnight
        session.add(CallWindow(profile="default", weekday=weekday, start_time=dt.time(0, 0), end_time=dt.time(0, 0)))
    session.execute(update(ContactLimit).values(max_calls=1000))
    session.execute(update(LadderStage).values(window_profile="default", retry_minutes=DAY_MINUTES))
    for key in RETRY_OPTIONS:
        set_option(session, key, DAY_MINUTES)


def build_campaign(sessions: sessionmaker[Session], n: int, today: dt.date, rnd: random.Random) -> list[str]:
    """N accounts in Moscow, one phone each, one debt case each (3 days overdue: the first
    rung of the ladder). Returns the dialled numbers (digits only, as the simulator sees them)."""
    numbers = []
    with sessions.begin() as session:
        for i in range(1, n + 1):
            amount, tariff = rnd.choice(TARIFFS)
            number = f"+7916{i:07d}"
            account = Account(
                external_id=f"C{i:06d}", holder_name=f"{rnd.choice(FIRST_NAMES)} {rnd.choice(LAST_NAMES)}",
                service_name=rnd.choice(SERVICES), tariff=tariff, balance=amount, currency="RUB",
                due_date=today - dt.timedelta(days=3), block_date=today + dt.timedelta(days=18),
                timezone="Europe/Moscow", language="ru", country="RU",
            )
            account.phones.append(PhoneNumber(number=number, priority=1))
            session.add(account)
            session.add(DebtCase(account=account, opened_on=today - dt.timedelta(days=3), amount_initial=amount,
                                 amount_owed=amount, currency="RUB", state="active"))
            numbers.append(number.lstrip("+"))
    return numbers


def prewarm_audio(audio: CallAudioSource, sessions: sessionmaker[Session], workers: int = 2) -> int:
    """Render every phrase of every account's call into the audio cache, as a real campaign does
    before it starts (the dialer's per-call preparation then only renders text and finds files).
    Goes through the same code as the dialer's prepare hook, with an unsaved attempt."""
    with sessions() as session:
        cases = session.execute(
            select(DebtCase.id, DebtCase.account_id, DebtCase.stage_code, Account.language)
            .join(Account, Account.id == DebtCase.account_id).where(DebtCase.stage_code.is_not(None))
        ).all()

    def one(row: Any) -> None:
        with sessions() as session:
            attempt = CallAttempt(account_id=row.account_id, debt_case_id=row.id, stage_code=row.stage_code,
                                  language=row.language, phone="", action_id=f"prewarm-{row.id}")
            audio._prepare_sync(session, attempt)  # the body of CallAudioSource.prepare_attempt

    with ThreadPoolExecutor(max_workers=workers) as pool:  # espeak-ng runs as a subprocess: 2 cores
        list(pool.map(one, cases))
    return len(cases)


def _wav_count(root: Path) -> int:
    return sum(1 for _ in root.rglob("*.wav")) if root.exists() else 0


async def _probe_lag(stop: asyncio.Event, samples: list[float], period: float = 0.01) -> None:
    """How late the event loop wakes up (real seconds): each late ms is `speed` simulated ms."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        t0 = loop.time()
        await asyncio.sleep(period)
        samples.append(max(0.0, loop.time() - t0 - period))


async def _watch(db: Database, sim: Any, numbers: set[str], deadline: float, stall: float) -> str:
    """Until every number was dialled and every call has hung up (and reached the database), the
    real-time deadline passes, or nothing happens for `stall` real seconds."""
    loop = asyncio.get_running_loop()
    t0 = last_change = loop.time()
    seen = 0
    while True:
        await asyncio.sleep(0.2)
        now = loop.time()
        if len(sim.calls) != seen or sim.active_calls:
            seen, last_change = len(sim.calls), now
        dialled = {r.number for r in sim.calls if r.outcome not in REFUSALS}
        if numbers <= dialled and sim.active_calls == 0 and await asyncio.to_thread(in_flight, db) == 0:
            return "complete"
        if now - t0 > deadline:
            return f"stopped at the {deadline:.0f} s real-time limit"
        if now - last_change > stall:
            return f"stalled (nothing dialled for {stall:.0f} s real)"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def campaign_report(sim: Any, lines: int, population: dict[str, Callee], timeout_s: float) -> list[str]:
    """Line use from the simulator's CallRecords (loop time in real seconds, x speed = simulated)."""
    speed = sim.speed
    done = [r for r in sim.calls if r.ended_at is not None and r.outcome not in REFUSALS]
    refused = sum(1 for r in sim.calls if r.outcome in REFUSALS)
    if not done:
        return ["no calls were placed"]
    first = min(r.originated_at for r in done)
    last_orig = max(r.originated_at for r in done)
    last_end = max(r.ended_at for r in done)
    holds = [(r.ended_at - r.originated_at) * speed for r in done]
    bound = sum(holds) / lines
    actual = (last_end - first) * speed
    # the fill phase: until the last originate; after it no account is left and lines only drain
    fill = (last_orig - first) * speed
    fill_held = sum(max(0.0, min(r.ended_at, last_orig) - r.originated_at) for r in done) * speed
    fill_bound = fill_held / lines
    # lines in use over time, a hang-up before an originate at the same instant
    events = sorted([(r.originated_at, 1) for r in done] + [(r.ended_at, -1) for r in done], key=lambda e: (e[0], e[1]))
    in_use = peak = 0
    for _t, step in events:
        in_use += step
        peak = max(peak, in_use)
    # refill latency: the k-th hang-up frees the line the (lines + k)-th originate uses
    ends = sorted(r.ended_at for r in done)
    starts = sorted(r.originated_at for r in done)
    gaps = [(starts[lines + k] - ends[k]) * speed for k in range(len(starts) - lines)]
    # timing faithfulness: calls whose length the scenario fixes (ring to the originate timeout,
    # busy/congestion after the ring time) against what the simulator measured
    excess = []
    for r in done:
        callee = population.get(r.number)
        if callee is None:
            continue
        if callee.outcome == "no_answer":
            excess.append((r.ended_at - r.originated_at) * speed - timeout_s)
        elif callee.outcome in ("busy", "congestion", "failed"):
            excess.append((r.ended_at - r.originated_at) * speed - callee.answer_after)
    outcomes = Counter(r.outcome for r in done)
    out = [
        f"calls: {len(done)} ({', '.join(f'{k} {v}' for k, v in outcomes.most_common())}); "
        f"refused by the simulator: {refused}",
        f"lines: {lines}; line time held (originate to hang-up, simulated): total {sum(holds):.0f} s, "
        f"mean {statistics.mean(holds):.1f} s per call",
        f"peak lines in use: {peak} of {lines}",
        "whole campaign (first originate .. last hang-up, final drain included):",
        f"  bound {bound:.1f} s, actual {actual:.1f} s, efficiency {bound / actual:.3f}, "
        f"mean lines in use {sum(holds) / actual:.1f}",
        "fill phase (first .. last originate; excludes the final drain, when fewer calls than lines remain):",
    ]
    if fill > 0:
        efficiency = fill_bound / fill
        out.append(f"  bound {fill_bound:.1f} s, actual {fill:.1f} s, efficiency {efficiency:.3f}, mean lines in use "
                   f"{fill_held / fill:.1f}   (goal >= 0.95: {'met' if efficiency >= 0.95 else 'NOT met'})")
    out.append(f"  drain after the last originate: {(last_end - last_orig) * speed:.1f} s")
    if fill > 0:
        # Every real millisecond the software takes to react is `speed` simulated ms here; if all
        # idle line time is such reaction time, at real time it would be `speed` times smaller.
        idle = lines * fill - fill_held
        projected = fill_held / (fill_held + idle / speed)
        out.append(f"  idle line time in the fill phase {idle:.0f} line-s; projected efficiency at real time (x1) "
                   f"if all of it is software reaction time: {projected:.3f} (a projection, not a measurement)")
    if len(starts) >= lines:
        ramp = starts[lines - 1] - starts[0]
        out.append(f"ramp-up: all {lines} lines dialled {ramp * speed:.2f} s simulated ({ramp * 1000:.0f} ms real) "
                   f"after the first originate")
    if gaps:
        out.append(f"refill latency (a hang-up to the originate that reuses its line, simulated s): "
                   f"p50 {_pct(gaps, 0.5):.2f}, p95 {_pct(gaps, 0.95):.2f}, max {max(gaps):.2f} "
                   f"(= {_pct(gaps, 0.5) / speed * 1000:.0f} / {_pct(gaps, 0.95) / speed * 1000:.0f} ms real)")
    if excess:
        out.append(f"timing check: {len(excess)} calls of scripted length (no answer = {timeout_s:g} s timeout, "
                   f"busy/congestion/failed = ring time) lasted {statistics.mean(excess):+.2f} s on average "
                   f"(max {max(excess):+.2f} s) simulated over the script")
    return out


async def run_campaign(args: argparse.Namespace) -> int:
    lines, speed, n = args.lines, args.speed, args.campaign_accounts
    cps = args.cps if args.cps is not None else float(lines)
    root = Path(__file__).resolve().parent.parent
    audio_dir = Path(args.audio_dir).resolve()
    tmp: Path | None = None
    scratch = contextlib.ExitStack()
    if args.pg:
        engine, schema = scratch.enter_context(scratch_schema(args.pg, "bench_campaign"))
        where = f"PostgreSQL schema {schema}"
        url = args.pg
    else:
        tmp = Path(tempfile.mkdtemp(prefix="ivr-bench-campaign-"))
        url = f"sqlite:///{tmp / 'campaign.sqlite3'}"
        engine = make_engine(url)
        where = f"SQLite {tmp / 'campaign.sqlite3'}"
    settings = Settings(
        database_url=url, agi_host="127.0.0.1", agi_port=0, calls_per_second=cps,
        prompts_dir=root / "prompts", audio_cache_dir=audio_dir, recordings_dir=root / "var" / "recordings",
        dialer_id="bench",
    )
    sim = services = None
    try:
        upgrade(engine)
        db = Database(engine, make_session_factory(engine))
        with db.sessions.begin() as session:
            seed(session)
            open_rules_wide(session)
        today = dt.datetime.now(dt.UTC).date()
        numbers = build_campaign(db.sessions, n, today, random.Random(args.seed))
        population = random_population(numbers, random.Random(args.seed), today=today)
        print(f"database: {where}; {n} accounts, {lines} lines, clock and simulator x{speed:g}")
        print("rules opened wide for the bench (window 00:00-24:00 every day and holiday, contact limits 1000, "
              "retries after 24 h): this measures line use, not compliance rules")
        print(f"calls_per_second = {cps:g} (IVR default 5; set to the line count so a whole pool can refill in 1 s)")

        # noon in Moscow; the clock runs from here at `speed`, the simulator at the same speed
        clock = FastClock(dt.datetime.combine(today, dt.time(9, 0), tzinfo=dt.UTC), speed)
        sim = SimulatedAsterisk(book_from_mapping(population), users={SIM_USER: SIM_SECRET}, speed=speed,
                                channel_limit=lines)
        await sim.start()
        services = await start_services(settings, db, clock, servers=(simulator_server(sim.ami_port, lines),),
                                        with_web=False, run_dialer_loop=False)
        dialer = services.dialer
        assert dialer is not None
        if not await services.ami["sim"].wait_connected(10):
            print("could not log in to the simulator's AMI", file=sys.stderr)
            return 1
        report = await asyncio.to_thread(ladder_tick, db.sessions, rules_loader_for(services.settings), clock)
        print(f"ladder tick: {report.changed} of {report.examined} cases put on their first stage")

        before = _wav_count(audio_dir)
        t0 = time.perf_counter()
        warmed = await asyncio.to_thread(prewarm_audio, services.audio, db.sessions)
        print(f"audio pre-warmed before timing (as a real campaign renders before it starts): {warmed} calls in "
              f"{time.perf_counter() - t0:.1f} s, {_wav_count(audio_dir) - before} new files in {audio_dir}")
        before = _wav_count(audio_dir)

        stop = asyncio.Event()
        lag: list[float] = []
        probe = asyncio.create_task(_probe_lag(stop, lag))
        # the production loop (`ivr run`): a fill pass on every freed line and every tick
        dialer_task = asyncio.create_task(dialer.run(stop))
        wall0, cpu0 = time.perf_counter(), time.process_time()
        estimate = n * 60.0 / lines / speed  # real seconds, with calls of a minute on average
        status = await _watch(db, sim, set(numbers), args.max_real or 3 * estimate + 60, 20.0)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        stop.set()
        await asyncio.wait([dialer_task, probe], timeout=10)
        print(f"campaign = every account's first attempt dialled and hung up: {status} in {wall:.1f} s real "
              f"(Dialer.run loop, AMI client, FastAGI server and call script; {dialer.sent} originates)")
        for line in campaign_report(sim, lines, population, settings.originate_timeout_ms / 1000):
            print(line)
        print(f"CPU of this process during the campaign: {cpu:.1f} s in {wall:.1f} s real ({cpu / wall:.0%} of one core; "
              f"the simulator, FastAGI, AMI and dialer share one interpreter)")
        if lag:
            print(f"event-loop lag (real): p50 {_pct(lag, 0.5) * 1000:.1f} ms, p99 {_pct(lag, 0.99) * 1000:.1f} ms, "
                  f"max {max(lag) * 1000:.1f} ms  (x{speed:g} in simulated time)")
        new_files = _wav_count(audio_dir) - before
        if new_files:
            print(f"WARNING: {new_files} audio files were synthesised during the campaign (pre-warm missed them)")
        with db.sessions() as session:
            results = session.execute(select(CallAttempt.result, func.count()).group_by(CallAttempt.result)).all()
        print("attempt results: " + ", ".join(f"{r or 'none'} {c}" for r, c in sorted(results, key=lambda rc: -rc[1])))
        return 0 if status == "complete" else 1
    finally:
        if services is not None:
            await stop_services(services, grace=5)
        if sim is not None:
            await sim.stop()
        engine.dispose()
        scratch.close()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def part_b(args: argparse.Namespace) -> int:
    return asyncio.run(run_campaign(args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("a", "b", "all"), default="a",
                        help="a = batch selection (default), b = campaign on the simulator, all = both")
    parser.add_argument("--accounts", type=int, default=1_000_000, help="part a: accounts to build (default 1,000,000)")
    parser.add_argument("--pg", metavar="URL", help="PostgreSQL URL (a fresh schema is made and dropped)")
    parser.add_argument("--db", metavar="PATH", help="SQLite file to build once and reuse (default: temporary)")
    parser.add_argument("--repeat", type=int, default=30, help="timed passes (default 30)")
    parser.add_argument("--limit", type=int, default=100, help="batch size (default 100)")
    parser.add_argument("--lines", type=int, default=30, help="part b: simulated lines (default 30)")
    parser.add_argument("--campaign-accounts", type=int, default=600, help="part b: accounts to call (default 600)")
    parser.add_argument("--speed", type=float, default=15.0,
                        help="part b: clock and simulator speed, simulated seconds per real second (default 15)")
    parser.add_argument("--cps", type=float, default=None, help="part b: calls per second cap (default: --lines)")
    parser.add_argument("--seed", type=int, default=2026, help="part b: seed of the accounts and the population")
    parser.add_argument("--audio-dir", default="var/bench-audio",
                        help="part b: audio cache, kept between runs (default var/bench-audio)")
    parser.add_argument("--max-real", type=float, default=0.0,
                        help="part b: real-time limit in seconds (default: 3x the expected length + 60 s)")
    args = parser.parse_args(argv)
    for name in ("lines", "campaign_accounts", "speed"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    logging.basicConfig(level=logging.ERROR)  # "no usable phone" warnings would drown the numbers
    if args.part == "a":
        return part_a(args)
    if args.part == "b":
        return part_b(args)
    print("== part a: picking the next batch", flush=True)
    code_a = part_a(args)
    print("== part b: a campaign on the Asterisk simulator", flush=True)
    return max(code_a, part_b(args))


if __name__ == "__main__":
    raise SystemExit(main())
