"""`ivr export outcomes|blocklist|callbacks`: write what the robot learned back for billing.

CSV (default; UTF-8 unless --encoding cp1251) or JSON, to --output FILE or stdout. --since
selects what changed since a moment: a date (DD.MM.YYYY or YYYY-MM-DD, midnight in
IVR_DEFAULT_TIMEZONE) or an ISO date-time (with an offset, else in IVR_DEFAULT_TIMEZONE).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from ivr.billing.csvread import ValueProblem, parse_date
from ivr.billing.exporter import EXPORTS, write_csv, write_json
from ivr.config import load_settings
from ivr.wiring import open_database


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("export", help="export outcomes, the block list or callbacks (CSV/JSON)")
    parser.add_argument("what", choices=sorted(EXPORTS), help="what to export")
    parser.add_argument("--since", metavar="DATE", help="only what changed since DATE (or ISO date-time)")
    parser.add_argument("--format", choices=("csv", "json"), default="csv", help="output format (default csv)")
    parser.add_argument("--output", "-o", type=Path, metavar="FILE", help="output file (default: stdout)")
    parser.add_argument("--delimiter", default=",", choices=(",", ";", "tab"), help="CSV delimiter (default ',')")
    parser.add_argument("--encoding", default="utf-8", choices=("utf-8", "utf-8-sig", "cp1251"),
                        help="CSV file encoding (default utf-8)")
    parser.set_defaults(func=run)


def parse_since(text: str, zone: str) -> dt.datetime:
    """--since value -> naive UTC (how times are stored)."""
    text = text.strip()
    tz = ZoneInfo(zone)
    try:
        day = parse_date(text) if len(text) == 10 else None
    except ValueProblem:
        day = None
    if day is not None:
        moment = dt.datetime.combine(day, dt.time(0), tz)
    else:
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"--since: expected DD.MM.YYYY, YYYY-MM-DD or an ISO date-time, got {text!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    try:
        since = parse_since(args.since, settings.default_timezone) if args.since else None
    except ValueError as exc:
        print(f"ivr export: {exc}", file=sys.stderr)
        return 2
    fn, fields = EXPORTS[args.what]
    database = open_database(settings)
    try:
        with database.sessions() as session:
            rows = fn(session, since)
    finally:
        database.engine.dispose()
    buffer = io.StringIO(newline="")
    if args.format == "json":
        count = write_json(rows, buffer)
    else:
        delimiter = "\t" if args.delimiter == "tab" else args.delimiter
        count = write_csv(rows, buffer, fields=fields, delimiter=delimiter)
    text = buffer.getvalue()
    if args.output:
        encoding = args.encoding if args.format == "csv" else "utf-8"
        try:
            args.output.write_bytes(text.encode(encoding, errors="replace"))
        except OSError as exc:
            print(f"ivr export: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        print(f"wrote {count} {args.what} rows to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return 0
