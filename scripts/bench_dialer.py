#!/usr/bin/env python3
"""Benchmark of the dialer.

Part a: picking the next batch. Builds N accounts with debt cases (random time zones from UTC-12
to UTC+14, one or two phones, attempt histories, some locks and opt-outs) with bulk Core inserts
into a SQLite file (or, with --pg URL, a fresh schema of that PostgreSQL database), then times
`select_candidates(limit=100)` repeatedly on a warm database and prints p50/p95 in ms. Each pass
rolls back, so every pass does the same work (the worst case: the queue-head bumps are redone).
Goal: <= 100 ms at 1,000,000 accounts on both databases.

Part b (a campaign on the Asterisk simulator) is not written yet.

    .venv/bin/python scripts/bench_dialer.py                        # part a, 1,000,000 accounts, SQLite
    .venv/bin/python scripts/bench_dialer.py --accounts 100000      # quick
    .venv/bin/python scripts/bench_dialer.py --pg postgresql+psycopg://ivr@127.0.0.1:55432/ivr_test
    .venv/bin/python scripts/bench_dialer.py --db /tmp/dialer.sqlite3   # build once, reuse later
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, func, insert, select, text  # noqa: E402

from ivr.db.base import make_engine, make_session_factory  # noqa: E402
from ivr.db.migrate import upgrade  # noqa: E402
from ivr.db.models import Account, CallAttempt, DebtCase, OptOut, PhoneNumber  # noqa: E402
from ivr.db.seed import seed  # noqa: E402
from ivr.dialer.policy import load_rules  # noqa: E402
from ivr.dialer.selector import SelectionStats, select_candidates  # noqa: E402

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
    schema = None
    admin = None
    if args.pg:
        schema = f"bench_dialer_{uuid.uuid4().hex[:8]}"
        admin = make_engine(args.pg)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = make_engine(args.pg, connect_args={"options": f"-csearch_path={schema}"})
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
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        if tmp is not None:
            for p in sorted(tmp.iterdir(), reverse=True):
                p.unlink()
            tmp.rmdir()


def part_b(args: argparse.Namespace) -> int:
    print("part b (a campaign on the Asterisk simulator) is not implemented yet", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("a", "b"), default="a", help="a = batch selection (default), b = campaign")
    parser.add_argument("--accounts", type=int, default=1_000_000, help="accounts to build (default 1,000,000)")
    parser.add_argument("--pg", metavar="URL", help="PostgreSQL URL (a fresh schema is made and dropped)")
    parser.add_argument("--db", metavar="PATH", help="SQLite file to build once and reuse (default: temporary)")
    parser.add_argument("--repeat", type=int, default=30, help="timed passes (default 30)")
    parser.add_argument("--limit", type=int, default=100, help="batch size (default 100)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # "no usable phone" warnings would drown the numbers
    return part_a(args) if args.part == "a" else part_b(args)


if __name__ == "__main__":
    raise SystemExit(main())
