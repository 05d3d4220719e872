"""The live page (issue 13): what the robot is doing now, for admins and operators, refreshed
every few seconds by /static/live.js from /live.json (no inline script: the CSP forbids it);
admins pause and resume the robot here (globally, per ladder stage, per Asterisk server).

The data comes from ivr.web.live_data; the case outlook (it reads every open case) is reused
for OUTLOOK_TTL seconds, so many open pages do not each scan the cases every few seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ivr.db.models import LadderStage
from ivr.dialer import pauses
from ivr.dialer.outlook import Outlook, outlook
from ivr.dialer.policy import load_rules
from ivr.web import i18n
from ivr.web.common import (
    checked_form,
    ctx,
    flash,
    form_int,
    form_str,
    in_db,
    lang_of,
    redirect,
    render,
    require,
    t,
)
from ivr.web.labels import label
from ivr.web.live_data import snapshot
from ivr.web.live_forecast import LiveForecast

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5
OUTLOOK_TTL = 10.0  # real seconds
_outlook_lock = threading.Lock()


def _cached_outlook(request: Request, session: Session) -> Outlook:
    state = request.app.state
    web = ctx(request)
    with _outlook_lock:
        cached: tuple[float, Outlook] | None = getattr(state, "live_outlook", None)
        if cached is not None and time.monotonic() - cached[0] < OUTLOOK_TTL:
            return cached[1]
    fresh = outlook(session, load_rules(session, web.settings.default_timezone), web.now())
    with _outlook_lock:
        state.live_outlook = (time.monotonic(), fresh)
    return fresh


def _forget_outlook(request: Request) -> None:
    with _outlook_lock:
        request.app.state.live_outlook = None


def _forecaster(request: Request) -> LiveForecast:
    state = request.app.state
    with _outlook_lock:
        made: LiveForecast | None = getattr(state, "live_forecast", None)
        if made is None:
            web = ctx(request)
            made = state.live_forecast = LiveForecast(web.sessions, web.settings, web.now)
    return made


async def _snapshot(request: Request) -> dict[str, Any]:
    web = ctx(request)
    tr = i18n.translator(lang_of(request))
    data = await in_db(request, lambda s: snapshot(s, web.settings, web.now(), _cached_outlook(request, s),
                                                   tr, i18n.has_key))
    forecaster = _forecaster(request)
    forecast = forecaster.current()  # never computed here: see ivr.web.live_forecast
    data["forecast"] = _forecast_view(forecast, tr) if forecast is not None else None
    data["forecast_error"] = forecaster.error
    return data


def _forecast_view(forecast: dict[str, Any], tr: Any) -> dict[str, Any]:
    """The forecast with what the page needs in the page's language: the basis sentence and the
    callbacks per queue, labelled, today and tomorrow side by side."""
    queues = sorted(set(forecast["callbacks_today"]) | set(forecast["callbacks_tomorrow"]))
    basis = (tr("live_forecast_basis_prior") if forecast["prior"] else
             tr("live_forecast_basis", n=forecast["measured_attempts"], rate=f"{forecast['answer_rate']:.0%}"))
    return {
        **forecast,
        "basis": basis,
        "plan_line": tr("live_forecast_cases", n=forecast["cases_today"], opens=forecast["opens_local"] or "-"),
        "tz_line": tr("live_forecast_tz", tz=forecast["time_zone"]),
        "callbacks": [{"queue": q, "label": tr(f"queue_{q}") if i18n.has_key(f"queue_{q}") else q,
                       "today": forecast["callbacks_today"].get(q, 0.0),
                       "tomorrow": forecast["callbacks_tomorrow"].get(q, 0.0)} for q in queues],
    }


async def live_json(request: Request) -> Response:
    await require(request, "operator")
    return JSONResponse(await _snapshot(request), headers={"cache-control": "no-store"})


async def live_page(request: Request) -> Response:
    await require(request, "operator")
    data = await _snapshot(request)
    stages = await in_db(request, lambda s: list(s.scalars(select(LadderStage.code).order_by(LadderStage.position))))
    servers = sorted({line["server"] for line in data["lines"]})
    return render(request, "live.html", {"live": data, "stages": stages, "servers": servers,
                                         "refresh": REFRESH_SECONDS})


async def pause_submit(request: Request) -> Response:
    user = await require(request, "admin")
    form = await checked_form(request)
    scope = form_str(form, "scope")
    key = form_str(form, "key")
    why = form_str(form, "why")
    now = ctx(request).now()
    try:
        made = await in_db(request, lambda s: pauses.pause(s, scope, key, user.username, why, now))
    except pauses.PauseError as exc:
        log.info("pause refused for %s: %s", user.username, exc)
        raise HTTPException(400, t(request, "live_err_pause")) from exc
    _forget_outlook(request)
    flash(request, t(request, "live_paused_msg", what=_what(request, made.scope, made.key)))
    return redirect("/live")


async def resume_submit(request: Request) -> Response:
    user = await require(request, "admin")
    form = await checked_form(request)
    pause_id = form_int(form, "pause_id")
    if pause_id is None:
        raise HTTPException(400, t(request, "live_err_pause"))
    now = ctx(request).now()
    done = await in_db(request, lambda s: pauses.resume_id(s, pause_id, user.username, now))
    _forget_outlook(request)
    if done is None:
        flash(request, t(request, "live_not_paused"), "warn")
    else:
        flash(request, t(request, "live_resumed_msg", what=_what(request, done.scope, done.key)))
    return redirect("/live")


def _what(request: Request, scope: str, key: str) -> str:
    if scope == pauses.GLOBAL:
        return t(request, "live_scope_global")
    shown = label(lang_of(request), "ladder_stage_", key) if scope == "stage" else key
    return f"{t(request, 'live_scope_' + scope)} {shown}"


def routes() -> list[BaseRoute]:
    return [
        Route("/live", live_page, methods=["GET"]),
        Route("/live.json", live_json, methods=["GET"]),
        Route("/live/pause", pause_submit, methods=["POST"]),
        Route("/live/resume", resume_submit, methods=["POST"]),
    ]
