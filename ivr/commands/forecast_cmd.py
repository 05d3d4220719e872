"""`ivr forecast`: when today's plan will finish with the current lines (and with N lines), and how
many callbacks each operator queue should expect tomorrow. The model is described in
ivr.forecast; the figures come from the last weeks' calls (or a stated prior when there are none).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from ivr.config import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("forecast", help="when today's plan finishes, with N lines; callbacks tomorrow")
    parser.add_argument("--lines", type=int, action="append", default=[], metavar="N",
                        help="what if there were N lines (repeatable; default: half, current, double)")
    parser.add_argument("--weeks", type=int, default=4, help="weeks of history to measure (default 4)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def render(data: dict[str, Any]) -> str:
    out = []
    basis = ("PRIOR figures (not enough history yet)" if data["prior"]
             else f"measured over {data['measured_attempts']} attempts")
    out.append(f"Forecast at {data['at']} ({basis}): answer rate {data['answer_rate']:.0%}, "
               f"{data['mean_line_seconds']:.0f} line-seconds per attempt")
    out.append(f"today's plan: {data['cases_today']} cases, first window opens {data['opens'] or '-'}")
    out.append(f"{'lines':>6} {'finish (UTC)':<26} {'hours':>6} {'attempts':>9} {'answered':>9} {'left over':>9}")
    for row in data["by_lines"]:
        mark = " <- current" if row["lines"] == data["lines"] else ""
        hours = f"{row['hours_from_open']:.2f}" if row["hours_from_open"] is not None else "-"
        out.append(f"{row['lines']:>6} {row['finish'] or 'nothing to do':<26} {hours:>6} {row['attempts']:>9} "
                   f"{row['answered']:>9} {row['left_over']:>9}{mark}")
    today = ", ".join(f"{q} {n}" for q, n in data["callbacks_today"].items()) or "none"
    tomorrow = ", ".join(f"{q} {n}" for q, n in data["callbacks_tomorrow"].items()) or "none"
    out.append(f"callbacks expected from today's calls: {today}")
    out.append(f"callbacks expected tomorrow ({data['cases_tomorrow']} callable cases): {tomorrow}")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    from ivr.dialer.policy import load_rules
    from ivr.forecast import default_what_if
    from ivr.forecast_db import SIMULATOR_LINES, forecast_json, lines_of
    from ivr.wiring import open_database

    if any(n < 1 for n in args.lines) or args.weeks < 1:
        print("forecast: --lines and --weeks must be at least 1")
        return 2
    settings = load_settings(args.env_file)
    current = lines_of(settings) or SIMULATOR_LINES
    what_if = sorted(set(args.lines) | {current}) if args.lines else default_what_if(current)
    db = open_database(settings)
    try:
        with db.sessions() as session:
            data = forecast_json(session, load_rules(session, settings.default_timezone),
                                 dt.datetime.now(dt.UTC), current, what_if, args.weeks)
    finally:
        db.engine.dispose()
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else render(data))
    return 0
