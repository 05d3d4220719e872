"""`ivr db upgrade` (Alembic migrations to the latest schema) and `ivr db init [--seed FILE]`
(migrate, then load the seed file's classifier, ladder, windows, limits and settings; rows that
already exist are never overwritten)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ivr.config import load_settings
from ivr.db.migrate import current, upgrade
from ivr.db.seed import load_seed, seed
from ivr.wiring import open_database, open_engine


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("db", help="database schema and seed data")
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    up = actions.add_parser("upgrade", help="apply database migrations (safe to run again)")
    up.set_defaults(func=run_upgrade)
    init = actions.add_parser("init", help="migrate and load the default (or given) seed data")
    init.add_argument("--seed", type=Path, metavar="FILE",
                      help="seed file in the format of ivr/data/defaults.toml (default: the built-in one)")
    init.set_defaults(func=run_init)


def run_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    engine = open_engine(settings.database_url)
    try:
        before = current(engine)
        upgrade(engine)
        after = current(engine)
    finally:
        engine.dispose()
    print(f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))
    return 0


def run_init(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    if args.seed is not None and not args.seed.is_file():
        print(f"ivr db init: seed file {args.seed} not found", file=sys.stderr)
        return 2
    try:
        data = load_seed(args.seed)
    except (OSError, ValueError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        print(f"ivr db init: cannot read seed file {args.seed}: {exc}", file=sys.stderr)
        return 2
    database = open_database(settings, migrate=True, seed_defaults=False)
    try:
        with database.sessions.begin() as session:
            created = seed(session, data)
    finally:
        database.engine.dispose()
    made = ", ".join(f"{n} {k}" for k, n in created.items() if n) or "nothing new (all rows existed)"
    print(f"database ready; seeded: {made}")
    return 0
