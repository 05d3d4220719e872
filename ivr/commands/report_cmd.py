"""`ivr report reasons|funnel|promises|money|work|reactions`: the managers' reports on the command line.

Prints an aligned table by default; `--format csv|json` writes machine-readable output to stdout;
`--chart FILE.svg` also writes the report's chart (the money report has two: the second goes to
FILE-debt.svg). The period is [--from, --to): --to is the first day NOT reported.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.config import load_settings
from ivr.db.models import CallbackTask, LadderStage, Reason
from ivr.db.options import get_option
from ivr.reports import (
    Period,
    PeriodError,
    funnel_report,
    money_report,
    parse_period,
    promises_report,
    reasons_report,
    render_table,
    to_csv,
    to_json,
    work_report,
)
from ivr.reports.money import GRANULARITIES
from ivr.reports.output import Report
from ivr.wiring import open_database

FORMATS = ("table", "csv", "json")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("report", help="reports: reasons, funnel, promises, money, work")
    kinds = parser.add_subparsers(dest="report", metavar="REPORT", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--from", dest="date_from", metavar="DATE",
                        help="first day reported, YYYY-MM-DD (default: 30 days before --to)")
    common.add_argument("--to", dest="date_to", metavar="DATE",
                        help="first day NOT reported, YYYY-MM-DD (default: tomorrow, so today is included)")
    common.add_argument("--stage", help="only this ladder stage (stage code)")
    common.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    common.add_argument("--table", dest="table_key", metavar="KEY",
                        help="with --format csv: write only this table of the report")
    common.add_argument("--chart", metavar="FILE.svg", help="also write the chart as SVG")
    route = argparse.ArgumentParser(add_help=False)
    route.add_argument("--route", help="only this route (callback queue)")

    p = kinds.add_parser("reasons", parents=[common, route], help="reasons: norm %% vs actual %%")
    p.add_argument("--lang", help="language of the reason labels (default: IVR_DEFAULT_LANGUAGE)")
    kinds.add_parser("funnel", parents=[common], help="cases -> attempted -> answered -> right party -> outcome")
    kinds.add_parser("promises", parents=[common], help="promises made, kept, broken, by stage")
    p = kinds.add_parser("money", parents=[common], help="debt at start, recovered after reach vs not, average debt")
    p.add_argument("--days", type=int, default=7, help="recovery window in days after the anchor day (default 7)")
    p.add_argument("--granularity", choices=GRANULARITIES, default="auto", help="average-debt series step")
    p = kinds.add_parser("work", parents=[common, route], help="callbacks by route, work per operator, operator hours saved")
    p.add_argument("--minutes-per-call", type=float,
                   help="operator minutes one call takes (default: IVR_OPERATOR_MINUTES_PER_CALL)")
    p = kinds.add_parser("reactions", parents=[common],
                         help="before-due reminders and thank-you calls: payments within N days, with vs without")
    p.add_argument("--days", type=int, default=7, help="days after the due date that still count (default 7)")
    parser.set_defaults(func=run)


def _fail(message: str) -> int:
    print(f"ivr report: {message}", file=sys.stderr)
    return 2


def _check_filters(session: Session, args: argparse.Namespace) -> str | None:
    """A typo in --stage or --route would give an empty report that looks real: refuse it."""
    if args.stage is not None:
        stages = list(session.scalars(select(LadderStage.code).order_by(LadderStage.position)))
        if args.stage not in stages:
            return f"unknown stage {args.stage!r} (stages: {', '.join(stages)})"
    route = getattr(args, "route", None)
    if route is not None:
        routes = set(session.scalars(select(Reason.route).where(Reason.route.is_not(None))))
        routes |= set(session.scalars(select(CallbackTask.queue).distinct()))
        human_queue = get_option(session, "human_request_queue")
        if human_queue:
            routes.add(human_queue)
        if route not in routes:
            return f"unknown route {route!r} (routes: {', '.join(sorted(r for r in routes if r))})"
    return None


def build_report(session: Session, args: argparse.Namespace, period: Period, settings: Any) -> Report:
    kind = args.report
    if kind == "reasons":
        return reasons_report(session, period, stage=args.stage, route=args.route,
                              language=args.lang or settings.default_language)
    if kind == "funnel":
        return funnel_report(session, period, stage=args.stage)
    if kind == "promises":
        return promises_report(session, period, stage=args.stage)
    if kind == "money":
        return money_report(session, period, stage=args.stage, window_days=args.days, granularity=args.granularity)
    if kind == "work":
        minutes = settings.operator_minutes_per_call if args.minutes_per_call is None else args.minutes_per_call
        return work_report(session, period, minutes_per_call=minutes, stage=args.stage, route=args.route)
    if kind == "reactions":  # issue 16
        from ivr.reports.reactions import reactions_report

        return reactions_report(session, period, window_days=args.days)
    raise ValueError(f"unknown report {kind!r}")


def chart_paths(path: Path, names: list[str]) -> list[Path]:
    """The main chart at `path`; the others beside it as <stem>-<name><suffix>."""
    suffix = path.suffix or ".svg"
    return [path] + [path.with_name(f"{path.stem}-{name}{suffix}") for name in names[1:]]


def run(args: argparse.Namespace) -> int:
    today = dt.datetime.now(dt.UTC).date()
    try:
        period = parse_period(args.date_from, args.date_to, today)
    except PeriodError as exc:
        return _fail(str(exc))
    if getattr(args, "days", 0) < 0:
        return _fail("--days must be 0 or more")
    if getattr(args, "minutes_per_call", None) is not None and args.minutes_per_call < 0:
        return _fail("--minutes-per-call must be 0 or more")
    if args.chart and args.report == "reactions":
        return _fail("the reactions report has no chart")
    if args.table_key and args.format != "csv":
        return _fail("--table applies to --format csv only")

    settings = load_settings(args.env_file)
    database = open_database(settings)
    try:
        with database.sessions() as session:
            problem = _check_filters(session, args)
            if problem:
                return _fail(problem)
            report = build_report(session, args, period, settings)
    finally:
        database.engine.dispose()

    if args.format == "json":
        sys.stdout.write(to_json(report) + "\n")
    elif args.format == "csv":
        try:
            to_csv(report, sys.stdout, table=args.table_key)
        except ValueError as exc:
            return _fail(str(exc))
    else:
        sys.stdout.write(render_table(report))

    if args.chart:
        from ivr.reports.charts import (  # pygal only when a chart is asked for
            charts_for,
            save_chart,
        )

        charts = charts_for(report)
        for path, svg in zip(chart_paths(Path(args.chart), list(charts)), charts.values(), strict=True):
            save_chart(svg, path)
            print(f"chart written: {path}", file=sys.stderr)
    return 0
