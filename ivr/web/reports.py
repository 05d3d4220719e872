"""The report pages for managers (and admins): an overview of every report for a period, and one
page per report with its filters, charts and tables, downloadable as CSV (or JSON for programs).

The reports (ivr.reports) compute; ivr.web.report_view dresses them for the page; this module reads
and checks the query, runs the report off the event loop and picks the response format.

Query parameters (all optional): from, to (ISO dates; `to` is the first day NOT reported, as in
`ivr report`), stage (ladder stage code), route (callback queue; reasons and work), days (money:
recovery window), granularity (money: auto | day | week), format (html | csv | json), table
(with csv: only that table), sep (with csv: a spreadsheet file, see below).

Two kinds of CSV: without `sep`, the report's data for programs (column keys, every table in one
file, as `ivr report --format csv`). With `sep`, one table for a spreadsheet (the page's links):
headings and codes in the reader's language, money headings with the currency, and
`sep=semicolon` writes ";" and decimal commas (dates DD.MM.YYYY), which a Russian-locale Excel
opens in columns as numbers; `sep=comma` writes "," and decimal points. Both start with a UTF-8 BOM.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ivr import csvsafe
from ivr.db.models import CallbackTask, DebtCase, LadderStage, Reason
from ivr.db.options import get_option
from ivr.reports.money import GRANULARITIES
from ivr.reports.output import Report, to_csv, to_jsonable
from ivr.reports.period import Period, PeriodError, parse_date
from ivr.web.common import ctx, in_db, lang_of, render, require, t
from ivr.web.i18n import translator
from ivr.web.report_view import (
    REPORT_KEYS,
    ReportView,
    css_digest,
    period_text,
    report_view,
    sheet_table,
)

log = logging.getLogger(__name__)

DEFAULT_DAYS = 30  # the period when none is given: the last 30 days, today included
MAX_PERIOD_DAYS = 3660  # ten years: longer is surely a typo, and the daily work grows with it
MAX_WINDOW_DAYS = 365
FORMATS = ("html", "csv", "json")
SEPARATORS = {"comma": ",", "semicolon": ";"}
# Which filters each report takes (stage is taken by all).
ROUTE_REPORTS = frozenset({"reasons", "work"})
CSS_CACHE_SIZE = 64


class QueryError(Exception):
    """A query parameter that cannot be used: `key` names its text in the UI catalogue."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class ReportQuery:
    period: Period
    stage: str | None = None
    route: str | None = None
    days: int = 7
    granularity: str = "auto"
    fmt: str = "html"
    table: str | None = None
    sep: str | None = None  # with csv: a spreadsheet file (comma | semicolon)

    def link(self, report: str, **override: Any) -> str:
        """The URL of `report` for this query (filters the report does not take are left out);
        report "" is the overview, which takes the period only."""
        q = replace(self, **override)
        params: dict[str, Any] = {"from": q.period.start.isoformat(), "to": q.period.end.isoformat()}
        if q.stage and report:
            params["stage"] = q.stage
        if q.route and report in ROUTE_REPORTS:
            params["route"] = q.route
        if report == "money":
            params["days"] = q.days
            if q.granularity != "auto":
                params["granularity"] = q.granularity
        if q.fmt != "html":
            params["format"] = q.fmt
        if q.table and q.fmt == "csv":
            params["table"] = q.table
        if q.sep and q.fmt == "csv":
            params["sep"] = q.sep
        return f"/reports/{report}?{urlencode(params)}" if report else f"/reports?{urlencode(params)}"


def parse_query(params: Mapping[str, str], today: dt.date) -> ReportQuery:
    """The checked query; QueryError names the first problem. Stage and route are checked against
    the database separately (`check_filters`)."""

    def text(name: str) -> str:
        return (params.get(name) or "").strip()

    try:
        end = parse_date(text("to"), "to") if text("to") else today + dt.timedelta(days=1)
    except PeriodError:
        raise QueryError("err_report_date", field="period_to", value=text("to")) from None
    try:
        start = parse_date(text("from"), "from") if text("from") else end - dt.timedelta(days=DEFAULT_DAYS)
    except PeriodError:
        raise QueryError("err_report_date", field="period_from", value=text("from")) from None
    if end <= start:
        raise QueryError("err_report_range", start=start.isoformat(), end=end.isoformat())
    if (end - start).days > MAX_PERIOD_DAYS:
        raise QueryError("err_report_too_long", days=MAX_PERIOD_DAYS)
    days_text = text("days") or "7"
    if not days_text.isdigit() or int(days_text) > MAX_WINDOW_DAYS:
        raise QueryError("err_report_days", value=days_text, max=MAX_WINDOW_DAYS)
    granularity = text("granularity") or "auto"
    if granularity not in GRANULARITIES:
        raise QueryError("err_report_granularity", value=granularity, known=", ".join(GRANULARITIES))
    fmt = text("format") or "html"
    if fmt not in FORMATS:
        raise QueryError("err_report_format", value=fmt, known=", ".join(FORMATS))
    sep = text("sep") or None
    if sep is not None and sep not in SEPARATORS:
        raise QueryError("err_report_sep", value=sep, known=", ".join(SEPARATORS))
    return ReportQuery(period=Period(start, end), stage=text("stage") or None, route=text("route") or None,
                       days=int(days_text), granularity=granularity, fmt=fmt, table=text("table") or None, sep=sep)


@dataclass(frozen=True)
class Choices:
    stages: list[tuple[str, str]]  # (code, name) in ladder order
    routes: list[str]
    currency: str = ""  # of the debt cases (several joined by "/"; none: the site's default)


def filter_choices(session: Session) -> Choices:
    """The stages and routes a filter may name: the same sets `ivr report` accepts."""
    stages = [(code, name) for code, name in session.execute(
        select(LadderStage.code, LadderStage.name).order_by(LadderStage.position))]
    routes = {r for r in session.scalars(select(Reason.route).where(Reason.route.is_not(None))) if r}
    routes |= {q for q in session.scalars(select(CallbackTask.queue).distinct()) if q}
    human_queue = get_option(session, "human_request_queue")
    if human_queue:
        routes.add(human_queue)
    return Choices(stages, sorted(routes), currency_of(session))


def currency_of(session: Session, default: str = "") -> str:
    """The currency the money figures are in: the debt cases' (the money report sums amounts as
    they are, so a site with several shows them all, joined by "/")."""
    found = sorted({c for c in session.scalars(select(DebtCase.currency).distinct()) if c})
    return "/".join(found) or default


def check_filters(query: ReportQuery, choices: Choices) -> None:
    """A typo in a filter would give an empty report that looks real: refuse it."""
    codes = [code for code, _ in choices.stages]
    if query.stage is not None and query.stage not in codes:
        raise QueryError("err_report_stage", value=query.stage, known=", ".join(codes))
    if query.route is not None and query.route not in choices.routes:
        raise QueryError("err_report_route", value=query.route, known=", ".join(choices.routes))


def build(session: Session, key: str, query: ReportQuery, settings: Any, lang: str) -> Report:
    from ivr.reports.funnel import funnel_report
    from ivr.reports.money import money_report
    from ivr.reports.promises import promises_report
    from ivr.reports.reasons import reasons_report
    from ivr.reports.work import work_report

    period, stage = query.period, query.stage
    if key == "reasons":
        return reasons_report(session, period, stage=stage, route=query.route, language=lang)
    if key == "funnel":
        return funnel_report(session, period, stage=stage)
    if key == "promises":
        return promises_report(session, period, stage=stage)
    if key == "money":
        return money_report(session, period, stage=stage, window_days=query.days, granularity=query.granularity)
    if key == "work":
        return work_report(session, period, minutes_per_call=settings.operator_minutes_per_call, stage=stage,
                           route=query.route)
    raise ValueError(f"unknown report {key!r}")


# --- responses ----------------------------------------------------------------------------------

def _message(request: Request, exc: QueryError) -> str:
    params = dict(exc.params)
    if "field" in params:  # the name of the form field, as the reader sees it
        params["field"] = t(request, params["field"])
    return t(request, exc.key, **params)


def _form_values(request: Request) -> dict[str, str]:
    """What the reader typed, to show back in the form after an error."""
    names = ("from", "to", "stage", "route", "days", "granularity")
    return {n: request.query_params.get(n, "") for n in names}


def _page_context(request: Request, key: str, query: ReportQuery | None, choices: Choices | None) -> dict[str, Any]:
    lang = lang_of(request)
    values = _form_values(request)
    if query is not None:
        values.update({"from": query.period.start.isoformat(), "to": query.period.end.isoformat(),
                       "stage": query.stage or "", "route": query.route or "", "days": str(query.days),
                       "granularity": query.granularity})
    today = ctx(request).today()
    first = today.replace(day=1)
    previous = (first - dt.timedelta(days=1)).replace(day=1)
    tomorrow = today + dt.timedelta(days=1)
    shortcuts = [
        ("rep_today", today, tomorrow),  # every preset but "last month" includes today
        ("rep_last_7", tomorrow - dt.timedelta(days=7), tomorrow),
        ("rep_last_30", today + dt.timedelta(days=1) - dt.timedelta(days=DEFAULT_DAYS), today + dt.timedelta(days=1)),
        ("rep_this_month", first, today + dt.timedelta(days=1)),
        ("rep_last_month", previous, first),
    ]
    base = query or ReportQuery(Period(previous, first))
    return {
        "report_key": key, "report_keys": REPORT_KEYS, "form": values, "query": query,
        "stages": choices.stages if choices else [], "routes": choices.routes if choices else [],
        "takes_route": key in ROUTE_REPORTS, "granularities": GRANULARITIES,
        "shortcuts": [(label, base.link(key, period=Period(s, e), fmt="html")) for label, s, e in shortcuts],
        "period_label": period_text(query.period.start, query.period.last_day, lang) if query else "",
        "error": "",
    }


def _css_store(request: Request) -> OrderedDict[str, str]:
    store: OrderedDict[str, str] | None = getattr(request.app.state, "report_chart_css", None)
    if store is None:
        store = OrderedDict()
        request.app.state.report_chart_css = store
    return store


def _remember_css(request: Request, view: ReportView) -> list[str]:
    """Keep each chart's stylesheet for /reports/chart-<digest>.css; content-addressed, so the same
    chart always gets the same address and the store stays small (oldest dropped past its size)."""
    store = _css_store(request)
    digests = []
    for chart in view.charts:
        digest = css_digest(chart.css)
        store[digest] = chart.css
        store.move_to_end(digest)
        digests.append(digest)
    while len(store) > CSS_CACHE_SIZE:
        store.popitem(last=False)
    return digests


def _error_response(request: Request, key: str, fmt: str, message: str, context: dict[str, Any]) -> Response:
    if fmt in ("csv", "json"):
        return JSONResponse({"error": message}, status_code=400)
    context["error"] = message
    template = "reports/report.html" if key else "reports.html"
    return render(request, template, {**context, "view": None, "views": [], "chart_css": []}, status_code=400)


async def report_page(request: Request) -> Response:
    await require(request, "reports")
    key = request.url.path.rsplit("/", 1)[-1]
    web = ctx(request)
    lang = lang_of(request)
    try:
        query = parse_query(request.query_params, web.today())
    except QueryError as exc:
        choices = await in_db(request, filter_choices)
        return _error_response(request, key, request.query_params.get("format", "html"), _message(request, exc),
                               _page_context(request, key, None, choices))

    def load(session: Session) -> tuple[Choices, Report | QueryError]:
        choices = filter_choices(session)
        try:
            check_filters(replace(query, route=query.route if key in ROUTE_REPORTS else None), choices)
        except QueryError as exc:
            return choices, exc
        return choices, build(session, key, query, web.settings, lang)

    choices, report = await in_db(request, load)
    if isinstance(report, QueryError):
        return _error_response(request, key, query.fmt, _message(request, report),
                               _page_context(request, key, query, choices))
    if query.fmt == "json":
        return JSONResponse(to_jsonable(report))
    currency = choices.currency or web.settings.default_currency
    if query.fmt == "csv" and query.sep:
        return _sheet_response(request, key, query, report, currency)
    if query.fmt == "csv":
        return _csv_response(request, key, query, report)
    # charts take CPU: off the event loop
    view = await run_in_threadpool(lambda: report_view(report, lang, currency=currency))
    context = _page_context(request, key, query, choices)
    context.update({"view": view, "chart_css": _remember_css(request, view),
                    "csv_link": query.link(key, fmt="csv"), "json_link": query.link(key, fmt="json"),
                    "sheet_links": {tb.key: (query.link(key, fmt="csv", table=tb.key, sep="comma"),
                                             query.link(key, fmt="csv", table=tb.key, sep="semicolon"))
                                    for tb in view.tables},
                    "title": t(request, f"rep_name_{key}")})
    return render(request, "reports/report.html", context)


def _csv_response(request: Request, key: str, query: ReportQuery, report: Report) -> Response:
    out = io.StringIO()
    try:
        to_csv(report, out, table=query.table)
    except ValueError:
        known = ", ".join(tb.key for tb in report.tables())
        return JSONResponse({"error": t(request, "err_report_table", value=query.table or "", known=known)},
                            status_code=400)
    last = query.period.last_day.isoformat()
    name = f"{key}{'-' + query.table if query.table else ''}_{query.period.start.isoformat()}_{last}.csv"
    # The BOM makes Excel read the UTF-8 (Cyrillic reason labels) instead of guessing Windows-1251.
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _sheet_response(request: Request, key: str, query: ReportQuery, report: Report, currency: str) -> Response:
    """One table of the report as a spreadsheet opens it (see the module doc)."""
    tables = report.tables()
    chosen = [tb for tb in tables if tb.key == (query.table or tables[0].key)]
    if not chosen:
        known = ", ".join(tb.key for tb in tables)
        return JSONResponse({"error": t(request, "err_report_table", value=query.table or "", known=known)},
                            status_code=400)
    table = chosen[0]
    semicolon = query.sep == "semicolon"
    headers, rows = sheet_table(key, table, translator(lang_of(request)), decimal_comma=semicolon, currency=currency)
    out = io.StringIO()
    writer = csvsafe.writer(out, delimiter=SEPARATORS[query.sep or "comma"], lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(rows)
    last = query.period.last_day.isoformat()
    name = f"{key}-{table.key}_{query.period.start.isoformat()}_{last}{'_excel' if semicolon else ''}.csv"
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


async def overview_page(request: Request) -> Response:
    """Every report's headline figures for the period, each linking to its own page."""
    await require(request, "reports")
    web = ctx(request)
    lang = lang_of(request)
    try:
        query = parse_query(request.query_params, web.today())
    except QueryError as exc:
        return _error_response(request, "", "html", _message(request, exc), _page_context(request, "", None, None))

    def load(session: Session) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        currency = currency_of(session, web.settings.default_currency)
        for key in REPORT_KEYS:
            try:
                view = report_view(build(session, key, replace(query, stage=None, route=None), web.settings, lang),
                                   lang, with_charts=False, currency=currency)
                out.append({"key": key, "view": view, "error": ""})
            except Exception as exc:  # one broken report must not hide the others
                log.exception("report %s failed", key)
                out.append({"key": key, "view": None, "error": str(exc)})
        return out

    views = await in_db(request, load)
    context = _page_context(request, "", query, None)
    context.update({"views": views, "links": {k: query.link(k) for k in REPORT_KEYS},
                    "title": t(request, "nav_reports")})
    return render(request, "reports.html", context)


async def chart_css(request: Request) -> Response:
    await require(request, "reports")
    css = _css_store(request).get(request.path_params["digest"])
    if css is None:  # an old page after a restart: reloading the page brings it back
        raise HTTPException(404, t(request, "err_not_found"))
    return Response(css, media_type="text/css; charset=utf-8",
                    headers={"Cache-Control": "private, max-age=86400, immutable"})


def routes() -> list[BaseRoute]:
    return [
        Route("/reports", overview_page, methods=["GET"]),
        *(Route(f"/reports/{key}", report_page, methods=["GET"]) for key in REPORT_KEYS),
        Route("/reports/chart-{digest:str}.css", chart_css, methods=["GET"]),
    ]
