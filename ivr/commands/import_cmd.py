"""`ivr import accounts FILE` / `ivr import payments FILE`: load billing CSV exports.

Prints a summary and every bad row ("line 17: bad phone '12345' (too short)"). Exits 0 when at
least one row was good (bad rows are reported, the good ones are stored), 1 when nothing could be
read (unreadable file, missing columns, no good row), 2 for a bad --columns file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.billing.columns import ColumnMap, ColumnMapError
from ivr.billing.importer import ImportFileError, import_accounts, import_payments
from ivr.config import load_settings
from ivr.wiring import open_database

_EPILOG = """\
Files: UTF-8 (with or without BOM) or Windows-1251, ';' or ',' separated, amounts with a decimal
comma or point ("1 800,50"), dates DD.MM.YYYY or YYYY-MM-DD. Columns are found by their header
(Russian or English names, see ivr/billing/columns.py); --columns FILE (TOML or JSON) names
yours. Accounts are matched by their id: importing the same file again changes nothing. An
account with a bad phone among good ones keeps the good ones (the bad one is reported); premium-
rate and shared-cost numbers are bad ones (the robot never calls them). Dates outside the years
of IVR_IMPORT_YEARS (default 2000-2100) reject their row. A broken record (a stray quote, a
field over 128 KB) is reported on its line and the rows after it are imported; a file that
mixes UTF-8 and Windows-1251 lines is refused, naming the lines to fix. Accounts
with a balance above zero get an open debt case; a balance of zero or less closes it as paid.
Payments are matched by payment id and reduce (or pay off) the account's debt at once.
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("import", help="import billing CSV exports (accounts, payments)",
                                   epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    kinds = parser.add_subparsers(dest="import_kind", metavar="KIND", required=True)
    for kind, text in (("accounts", "subscriber accounts with their debt"), ("payments", "payments received")):
        p = kinds.add_parser(kind, help=text, epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("file", type=Path, metavar="FILE", help="CSV file")
        p.add_argument("--columns", type=Path, metavar="FILE", help="column names map (TOML or JSON)")
        p.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
        p.add_argument("--no-progress", action="store_true", help="no progress bar")
        p.set_defaults(func=run, kind=kind)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    try:
        columns = ColumnMap.from_file(args.columns) if args.columns else None
    except ColumnMapError as exc:
        print(f"ivr import: {exc}", file=sys.stderr)
        return 2
    if not args.file.is_file():
        print(f"ivr import: {args.file}: no such file", file=sys.stderr)
        return 1
    database = open_database(settings)
    today = dt.datetime.now(ZoneInfo(settings.default_timezone)).date()
    progress = not args.no_progress
    try:
        if args.kind == "accounts":
            report = import_accounts(database.sessions, args.file, settings=settings, today=today,
                                     columns=columns, progress=progress, dry_run=args.dry_run)
        else:
            report = import_payments(database.sessions, args.file, settings=settings, today=today,
                                     columns=columns, progress=progress, dry_run=args.dry_run)
    except ImportFileError as exc:
        print(f"ivr import: {args.file}: nothing imported: {exc}", file=sys.stderr)
        return 1
    finally:
        database.engine.dispose()
    print(report.summary())
    if report.nothing_read:
        print(f"ivr import: {args.file}: no good row, nothing imported", file=sys.stderr)
        return 1
    return 0
