"""CPU per call of the call script's storage side alone (ivr.call.recorder and what it calls):
the facts of one answered call on the promise path (load, answered, 7 steps, identity, message,
promise with its outbox event, finish with the call.outcome event), many calls at once, with a
pause between facts as the subscriber's think time would leave.

It measures the recorder of whatever `ivr` is importable, so the same file compares two
checkouts (run it from each checkout's root):

    python scripts/measure_call_writes.py --calls 2000 --concurrency 500 --think 0.05

Prints CPU seconds of the whole process (all threads: the loop, the writer or to_thread's
workers) per call, and the wall time. Not the whole call path: no FastAGI, no audio (see
scripts/bench_fastagi.py for that)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path.cwd()))

from ivr.call.recorder import CallRecorder  # noqa: E402
from ivr.clock import FixedClock  # noqa: E402
from ivr.db.base import make_engine, make_session_factory  # noqa: E402
from ivr.db.migrate import upgrade  # noqa: E402
from ivr.db.models import Account, CallAttempt, DebtCase, PhoneNumber  # noqa: E402
from ivr.db.seed import seed  # noqa: E402

NOW = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)


def make_attempts(sessions, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    ids = []
    with sessions.begin() as s:
        for i in range(n):
            acc = Account(external_id=f"M{i:07d}", holder_name=f"Holder {i}", balance=Decimal("1500.00"),
                          timezone="Europe/Moscow", language="ru", block_date=dt.date(2026, 3, 20))
            acc.phones.append(PhoneNumber(number=f"+7916{i:07d}", priority=1))
            case = DebtCase(account=acc, opened_on=dt.date(2026, 3, 1), amount_initial=Decimal("1500.00"),
                            amount_owed=Decimal("1500.00"), stage_code="reminder")
            s.add(case)
            s.flush()
            attempt = CallAttempt(debt_case_id=case.id, account_id=acc.id, phone_number_id=acc.phones[0].id,
                                  phone=acc.phones[0].number, stage_code="reminder", action_id=f"m-{i}",
                                  state="dialing")
            s.add(attempt)
            ids.append(attempt.action_id)
    return ids


async def one_call(rec: CallRecorder, call_id: str, think: float) -> None:
    info = await rec.load(call_id)
    assert info is not None
    await rec.answered(info, "HUMAN")
    for name, fact in (("greet", None), ("identity", "identity"), ("debt_message", "message"), ("menu", None),
                       ("promise_date", None), ("promise_confirm", "promise"), ("close", None)):
        await asyncio.sleep(think)
        await rec.step(info, name)
        if fact == "identity":
            await rec.identity(info, True)
        elif fact == "message":
            await rec.message_delivered(info)
        elif fact == "promise":
            await rec.promise(info, dt.date(2026, 3, 15))
    await rec.finish(info, "message_only")


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'measure.sqlite3'}"
        engine = make_engine(url)
        upgrade(engine)
        sessions = make_session_factory(engine)
        with sessions.begin() as s:
            seed(s)
        ids = make_attempts(sessions, args.calls)
        rec = CallRecorder(sessions, FixedClock(NOW))
        gate = asyncio.Semaphore(args.concurrency)

        async def run(call_id: str) -> None:
            async with gate:
                await one_call(rec, call_id, args.think)

        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(run(i) for i in ids))
        close = getattr(rec, "close", None)
        if close is not None:
            close()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        ru = resource.getrusage(resource.RUSAGE_SELF)
        print(f"{args.calls} calls, {args.concurrency} at once, think {args.think}s: "
              f"CPU {cpu:.2f}s = {1000 * cpu / args.calls:.2f} ms/call; wall {wall:.1f}s; "
              f"{args.calls / wall:.0f} calls/s; max RSS {ru.ru_maxrss / 1024:.0f} MiB")
        writer = getattr(rec, "writer", None)
        if writer is not None:
            st = writer.stats
            delays = sorted(st.delays)
            p99 = delays[int(len(delays) * 0.99)] if delays else 0.0
            print(f"writer: {st.facts} facts in {st.commits} commits (largest group {st.largest_group}), "
                  f"{st.failed} lost; submit-to-commit of a group's oldest fact: p99 {1000 * p99:.0f} ms, "
                  f"max {1000 * st.max_delay:.0f} ms")
        engine.dispose()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=500)
    p.add_argument("--think", type=float, default=0.05, help="seconds between facts of one call")
    p.add_argument("--db", help="database URL (default: a temporary SQLite file)")
    asyncio.run(main(p.parse_args()))
