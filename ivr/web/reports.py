"""The reports page for managers (and admins): every report of ivr.reports for a period, shown as
its tables. The reports compute; this page only picks the period and lays the tables out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ivr.web.common import ctx, in_db, lang_of, render, require, t

log = logging.getLogger(__name__)


def _builders(settings: Any, language: str) -> list[tuple[str, Callable[[Session, Any], Any]]]:
    from ivr.reports.funnel import funnel_report
    from ivr.reports.money import money_report
    from ivr.reports.promises import promises_report
    from ivr.reports.reasons import reasons_report
    from ivr.reports.work import work_report

    return [
        ("reasons", lambda s, p: reasons_report(s, p, language=language)),
        ("promises", lambda s, p: promises_report(s, p)),
        ("money", lambda s, p: money_report(s, p)),
        ("funnel", lambda s, p: funnel_report(s, p)),
        ("work", lambda s, p: work_report(s, p, minutes_per_call=settings.operator_minutes_per_call)),
    ]


async def reports_page(request: Request) -> Response:
    await require(request, "reports")
    from ivr.reports.output import cell
    from ivr.reports.period import PeriodError, parse_period

    web = ctx(request)
    start, end = request.query_params.get("from", ""), request.query_params.get("to", "")
    try:
        period = parse_period(start or None, end or None, web.today())
    except PeriodError as exc:
        return render(request, "reports.html", {"error": str(exc), "reports": [], "start": start, "end": end},
                      status_code=400)
    builders = _builders(web.settings, lang_of(request))

    def load(session: Session) -> list[dict[str, Any]]:
        out = []
        for key, build in builders:
            try:
                report = build(session, period)
                tables = [{"title": tb.title, "headers": [c.header for c in tb.columns],
                           "numeric": [c.numeric for c in tb.columns],
                           "rows": [[cell(v) for v in row] for row in tb.rows]} for tb in report.tables()]
                out.append({"key": key, "title": report.title, "tables": tables, "error": ""})
            except Exception as exc:  # one broken report must not hide the others
                log.exception("report %s failed", key)
                out.append({"key": key, "title": key, "tables": [], "error": str(exc)})
        return out

    reports = await in_db(request, load)
    return render(request, "reports.html", {"reports": reports, "error": "", "start": period.start.isoformat(),
                                            "end": period.end.isoformat(), "period_label": period.label(),
                                            "title": t(request, "nav_reports")})


def routes() -> list[BaseRoute]:
    return [Route("/reports", reports_page, methods=["GET"])]
