#!/usr/bin/env python3
"""Benchmark of the billing account import: N rows, first import and re-import.

Generates N account rows as billing exports them (Windows-1251, ';', decimal commas, DD.MM.YYYY,
one or two phones each in mixed formats) into a temporary file, imports it into a fresh SQLite
file database (or, with --pg URL, a fresh schema of that PostgreSQL database), then imports the
same file again, which must change nothing. Prints rows/second for both.

    .venv/bin/python scripts/bench_import.py                  # 1,000,000 rows, SQLite
    .venv/bin/python scripts/bench_import.py --rows 100000    # quick
    .venv/bin/python scripts/bench_import.py --rows 100000 --pg postgresql+psycopg://ivr@127.0.0.1:55432/ivr_test
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select  # noqa: E402

from ivr.billing.importer import ACCOUNT_BATCH, SQLITE_ACCOUNT_BATCH, import_accounts  # noqa: E402
from ivr.config import Settings  # noqa: E402
from ivr.db.base import make_engine, make_session_factory  # noqa: E402
from ivr.db.migrate import upgrade  # noqa: E402
from ivr.db.models import Account, DebtCase, PhoneNumber  # noqa: E402
from ivr.db.scratch import scratch_schema

TODAY = dt.date(2026, 11, 16)
SURNAMES = ("Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
            "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров")
NAMES = ("Александр", "Сергей", "Дмитрий", "Андрей", "Алексей", "Максим", "Иван", "Михаил")
FATHERS = ("Александрович", "Сергеевич", "Дмитриевич", "Андреевич", "Иванович", "Петрович")
SERVICES = ("Охрана квартиры", "Пультовая охрана", "Видеонаблюдение", "Охрана дома")
TARIFFS = ("Эконом", "Базовый", "Стандарт", "Премиум")
PREFIXES = ("916", "903", "926", "985", "912", "913", "495", "499", "812", "383", "343")


def _phone(rnd: random.Random) -> str:
    code = rnd.choice(PREFIXES)
    local = f"{rnd.randrange(2000000, 9999999)}"
    form = rnd.randrange(5)
    if form == 0:
        return f"8 ({code}) {local[:3]}-{local[3:5]}-{local[5:]}"
    if form == 1:
        return f"+7 {code} {local}"
    if form == 2:
        return f"7{code}{local}"
    if form == 3:
        return f"8{code}{local}"
    return f"{code}{local}"


def generate(path: Path, rows: int, seed: int = 1) -> None:
    rnd = random.Random(seed)
    dates = [(TODAY - dt.timedelta(days=d)) for d in range(3, 60)]
    with path.open("w", encoding="cp1251", newline="") as fh:
        fh.write("Лицевой счёт;ФИО;Телефон;Сумма долга;Валюта;Дата платежа;Дата блокировки;Услуга;Тариф\r\n")
        for i in range(rows):
            phones = _phone(rnd) if rnd.random() < 0.6 else f"{_phone(rnd)}, {_phone(rnd)}"
            rub = rnd.randrange(0, 5000)
            kop = rnd.choice((0, 0, 0, 50))
            whole = f"{rub:,}".replace(",", " ")
            due = rnd.choice(dates)
            block = due + dt.timedelta(days=21)
            fh.write(
                f"{10_000_000 + i};{rnd.choice(SURNAMES)} {rnd.choice(NAMES)} {rnd.choice(FATHERS)};"
                f"\"{phones}\";{whole},{kop:02d};RUB;{due:%d.%m.%Y};{block:%d.%m.%Y};"
                f"{rnd.choice(SERVICES)};{rnd.choice(TARIFFS)}\r\n"
            )


def _cpu() -> tuple[float, float]:
    """CPU seconds of this process and of its finished children (the parser process)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to generate (default 1,000,000)")
    parser.add_argument("--pg", metavar="URL", help="PostgreSQL URL instead of a SQLite file")
    parser.add_argument("--batch", type=int, default=None,
                        help=f"rows per transaction (default: the importer's, {SQLITE_ACCOUNT_BATCH:,} on SQLite, "
                             f"{ACCOUNT_BATCH:,} on PostgreSQL)")
    parser.add_argument("--parallel", choices=("auto", "yes", "no"), default="auto",
                        help="parse in a second process (default: auto, by file size)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="ivr-bench-import-"))
    csv_path = tmp / "accounts.csv"
    t0 = time.perf_counter()
    generate(csv_path, args.rows)
    print(f"generated {args.rows:,} rows ({csv_path.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - t0:.1f} s")

    scratch = contextlib.ExitStack()
    if args.pg:
        engine, schema = scratch.enter_context(scratch_schema(args.pg, "bench"))
        where = f"PostgreSQL schema {schema}"
    else:
        engine = make_engine(f"sqlite:///{tmp / 'bench.sqlite3'}")
        where = f"SQLite {tmp / 'bench.sqlite3'}"
    try:
        upgrade(engine)
        sessions = make_session_factory(engine)
        settings = Settings()
        print(f"database: {where}")
        print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
        for label in ("first import", "re-import"):
            cpu0 = _cpu()
            t0 = time.perf_counter()
            report = import_accounts(sessions, csv_path, settings=settings, today=TODAY, batch_size=args.batch,
                                     parallel=None if args.parallel == "auto" else args.parallel == "yes")
            took = time.perf_counter() - t0
            cpu1 = _cpu()
            print(f"{label}: {report.rows_total:,} rows in {took:.1f} s = {report.rows_total / took:,.0f} rows/s "
                  f"(new {report.created:,}, updated {report.updated:,}, unchanged {report.unchanged:,}, "
                  f"problems {len(report.errors):,}, cases opened {report.cases_opened:,}); "
                  f"CPU: importer {cpu1[0] - cpu0[0]:.1f} s, parser process {cpu1[1] - cpu0[1]:.1f} s; "
                  f"load average {os.getloadavg()[0]:.2f}")
            if label == "re-import" and (report.created or report.updated):
                print("ERROR: the re-import changed rows", file=sys.stderr)
                return 1
        with sessions() as session:
            counts = [session.scalar(select(func.count()).select_from(m)) for m in (Account, PhoneNumber, DebtCase)]
        print(f"stored: {counts[0]:,} accounts, {counts[1]:,} phones, {counts[2]:,} debt cases")
    finally:
        engine.dispose()
        scratch.close()
        if not args.keep:
            for p in sorted(tmp.iterdir(), reverse=True):
                p.unlink()
            tmp.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
