"""Subscriber search and the account page (operators and admins): results with paging, the
account's whole history, and its edits (phones, notes, holding the robot)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ivr.web import account_view as av
from ivr.web.admin_data import normalize_phone
from ivr.web.common import (
    checked_form,
    ctx,
    flash,
    form_str,
    in_db,
    lang_of,
    redirect,
    render,
    require,
    t,
)
from ivr.web.search import search_accounts

log = logging.getLogger(__name__)


def _page_number(raw: str | None) -> int:
    try:
        return max(1, int(raw or "1"))
    except ValueError:
        return 1


async def search_page(request: Request) -> Response:
    await require(request, "operator")
    query = (request.query_params.get("q") or "").strip()
    page = _page_number(request.query_params.get("page"))
    result = await in_db(request, lambda s: search_accounts(s, query, page))
    return render(request, "operator/search.html", {"result": result, "find_query": query})


async def account_page(request: Request, error: str = "", status_code: int = 200) -> Response:
    await require(request, "operator")
    web = ctx(request)
    account_id = int(request.path_params["account_id"])
    lang = lang_of(request)
    data = await in_db(request, lambda s: av.load_account(s, account_id, web.now(), lang, web.settings.default_timezone))
    if data is None:
        raise HTTPException(404, t(request, "err_account_not_found"))
    return render(request, "operator/account.html", {
        "account": data, "error": error, "local_today": data.local_now.date().isoformat(),
    }, status_code=status_code)


async def _change(request: Request, work: Callable[[Session], Any], done_key: str) -> Response:
    """Run one account change; its refusal is shown on the page with a 400, nothing changed."""
    account_id = int(request.path_params["account_id"])
    try:
        await in_db(request, work)
    except av.AccountError as exc:
        if exc.key == "err_account_not_found":
            raise HTTPException(404, t(request, exc.key)) from None
        return await account_page(request, error=t(request, exc.key, **exc.params), status_code=400)
    flash(request, t(request, done_key), "ok")
    return redirect(f"/accounts/{account_id}")


async def add_phone(request: Request) -> Response:
    await require(request, "operator")
    form = await checked_form(request)
    web = ctx(request)
    account_id = int(request.path_params["account_id"])
    raw = form_str(form, "number")
    number = normalize_phone(raw, web.settings.default_region) if raw else None
    if number is None:
        return await account_page(request, error=t(request, "err_phone_invalid", value=raw), status_code=400)
    return await _change(request, lambda s: av.add_phone(s, account_id, number), "msg_phone_added")


async def change_phone(request: Request) -> Response:
    await require(request, "operator")
    form = await checked_form(request)
    web = ctx(request)
    account_id = int(request.path_params["account_id"])
    phone_id = int(request.path_params["phone_id"])
    action = form_str(form, "action")
    if action in ("up", "down"):
        return await _change(request, lambda s: av.move_phone(s, account_id, phone_id, action == "up"), "msg_phone_moved")
    if action in ("disable", "enable"):
        return await _change(
            request, lambda s: av.set_phone_enabled(s, account_id, phone_id, action == "enable", web.now()),
            "msg_phone_" + action + "d")
    return await account_page(request, error=t(request, "err_bad_action"), status_code=400)


async def add_note(request: Request) -> Response:
    user = await require(request, "operator")
    form = await checked_form(request)
    web = ctx(request)
    account_id = int(request.path_params["account_id"])
    text = form_str(form, "text")
    return await _change(request, lambda s: av.add_note(s, account_id, user.username, text, web.now()), "msg_note_added")


async def hold(request: Request) -> Response:
    user = await require(request, "operator")
    form = await checked_form(request)
    web = ctx(request)
    account_id = int(request.path_params["account_id"])
    raw = form_str(form, "until")
    try:
        until = dt.date.fromisoformat(raw)
    except ValueError:
        return await account_page(request, error=t(request, "err_hold_date", value=raw), status_code=400)
    why = form_str(form, "why")
    return await _change(
        request, lambda s: av.hold_account(s, account_id, until, user.username, why, web.now(),
                                           web.settings.default_timezone), "msg_held")


def routes() -> list[BaseRoute]:
    return [
        Route("/accounts", search_page, methods=["GET"]),
        Route("/accounts/{account_id:int}", account_page, methods=["GET"]),
        Route("/accounts/{account_id:int}/phones", add_phone, methods=["POST"]),
        Route("/accounts/{account_id:int}/phones/{phone_id:int}", change_phone, methods=["POST"]),
        Route("/accounts/{account_id:int}/notes", add_note, methods=["POST"]),
        Route("/accounts/{account_id:int}/hold", hold, methods=["POST"]),
    ]
