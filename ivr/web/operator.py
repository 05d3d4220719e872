"""Operator pages: queues, take next, the account card, click-to-call and recording the result."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ivr.db.models import Account, CallbackTask, TaskState, User
from ivr.web import click_call, queue_list
from ivr.web import tasks as task_logic
from ivr.web.card import Card, account_zone, load_card
from ivr.web.common import (
    CurrentUser,
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

log = logging.getLogger(__name__)


def _user_row(session: Session, user: CurrentUser) -> User:
    row = session.get(User, user.id)
    assert row is not None
    return row


def _task_error(request: Request, exc: task_logic.TaskError) -> str:
    return t(request, exc.key, **exc.params)


async def queues_page(request: Request) -> Response:
    user = await require(request, "operator")
    web = ctx(request)
    now = web.now()
    scope = list(user.queues) or None
    lang = lang_of(request)
    wanted = queue_list.parse_filter(request.query_params)

    def load(session: Session) -> dict[str, Any]:
        task_logic.release_idle_claims(session, now, web.settings.claim_idle_minutes)
        names = {u.id: u.username for u in session.scalars(select(User))}
        claimed = task_logic.list_tasks(session, queues=scope, states=[TaskState.CLAIMED.value], limit=50)
        holders = {task.account_id: task.account.holder_name for task in claimed}
        return {
            "counts": task_logic.queue_counts(session, now, scope),
            "open_page": queue_list.list_open_tasks(session, wanted, scope, now, lang, web.settings.default_timezone),
            "claimed_tasks": claimed, "names": names, "holders": holders,
            "now_naive": task_logic.naive_utc(now), "choices": queue_list.filter_choices(session, lang),
        }

    data = await in_db(request, load)
    return render(request, "operator/queues.html", {
        **data, "idle_minutes": web.settings.claim_idle_minutes, "filter": wanted,
        "filter_query": queue_list.filter_query, "ages": list(queue_list.AGES), "sorts": queue_list.SORTS,
    })


async def take_next(request: Request) -> Response:
    user = await require(request, "operator")
    form = await checked_form(request)
    web = ctx(request)
    queue = form_str(form, "queue") or None

    def work(session: Session) -> int | None:
        task = task_logic.take_next(session, _user_row(session, user), web.now(), web.settings.claim_idle_minutes, queue)
        return task.id if task else None

    try:
        task_id = await in_db(request, work)
    except task_logic.TaskError as exc:
        flash(request, _task_error(request, exc), "error")
        return redirect("/queues")
    if task_id is None:
        flash(request, t(request, "msg_no_tasks"), "info")
        return redirect("/queues")
    return redirect(f"/tasks/{task_id}")


async def claim(request: Request) -> Response:
    user = await require(request, "operator")
    await checked_form(request)
    web = ctx(request)
    task_id = int(request.path_params["task_id"])

    def work(session: Session) -> None:
        task_logic.claim_specific(session, task_id, _user_row(session, user), web.now(), web.settings.claim_idle_minutes)

    try:
        await in_db(request, work)
    except task_logic.TaskError as exc:
        flash(request, _task_error(request, exc), "error")
        return redirect("/queues")
    return redirect(f"/tasks/{task_id}")


async def release(request: Request) -> Response:
    user = await require(request, "operator")
    await checked_form(request)
    web = ctx(request)
    task_id = int(request.path_params["task_id"])
    try:
        await in_db(request, lambda s: task_logic.release_task(s, task_id, _user_row(s, user), web.now()))
    except task_logic.TaskError as exc:
        flash(request, _task_error(request, exc), "error")
        return redirect(f"/tasks/{task_id}")
    flash(request, t(request, "msg_released"), "ok")
    return redirect("/queues")


async def _load_card_for(request: Request, user: CurrentUser, task_id: int) -> Card:
    web = ctx(request)
    now = web.now()
    lang = lang_of(request)

    def load(session: Session) -> Card | None:
        task = session.get(CallbackTask, task_id)
        if task is None:
            return None
        if not task_logic.may_work(_user_row(session, user), task):
            raise HTTPException(403, t(request, "err_queue_not_yours", queue=task.queue))
        # looking at your own task is activity: it keeps the claim from idling out
        if task.state == TaskState.CLAIMED.value and task.claimed_by == user.id:
            task_logic.touch(session, task, now)
        return load_card(session, task_id, now, lang, web.settings.default_timezone)

    card = await in_db(request, load)
    if card is None:
        raise HTTPException(404, t(request, "err_task_not_found"))
    return card


def _render_card(request: Request, user: CurrentUser, card: Card, *, error: str = "",
                 values: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    web = ctx(request)
    return render(request, "operator/task.html", {
        "card": card, "mine": card.task.state == TaskState.CLAIMED.value and card.task_claimed_by_id == user.id,
        "result_kinds": [k.value for k in task_logic.ResultKind], "retry_choices": task_logic.RETRY_CHOICES,
        "default_retry": task_logic.UNREACHABLE_RETRY_MINUTES, "error": error, "values": values or {},
        "call_enabled": web.click_to_call is not None, "operator_phone": user.phone or "",
        "local_today": card.local_now.date().isoformat(),
    }, status_code=status_code)


async def task_page(request: Request) -> Response:
    user = await require(request, "operator")
    card = await _load_card_for(request, user, int(request.path_params["task_id"]))
    return _render_card(request, user, card)


def _form_values(form: FormData) -> dict[str, Any]:
    return {k: form_str(form, k) for k in ("kind", "note", "next_action", "promise_date", "phone_id", "retry_minutes")}


def _result_input(form: FormData, values: dict[str, Any]) -> task_logic.ResultInput:
    raw_date = values["promise_date"]
    promise_date = task_logic.parse_promise_date(raw_date) if values["kind"] == "promise" and raw_date else None
    return task_logic.ResultInput(
        kind=values["kind"], note=values["note"], next_action=values["next_action"], promise_date=promise_date,
        phone_id=form_int(form, "phone_id"),
        retry_minutes=form_int(form, "retry_minutes") or task_logic.UNREACHABLE_RETRY_MINUTES,
    )


async def record(request: Request) -> Response:
    user = await require(request, "operator")
    form = await checked_form(request)
    web = ctx(request)
    task_id = int(request.path_params["task_id"])
    now = web.now()
    values = _form_values(form)
    try:
        data = _result_input(form, values)

        def work(session: Session) -> str:
            task = session.get(CallbackTask, task_id)
            account = session.get(Account, task.account_id) if task else None
            today = now.astimezone(account_zone(account, web.settings.default_timezone)).date() if account else now.date()
            return task_logic.record_result(session, task_id, _user_row(session, user), data, now, today).result or ""

        kind = await in_db(request, work)
    except task_logic.TaskError as exc:
        card = await _load_card_for(request, user, task_id)
        return _render_card(request, user, card, error=_task_error(request, exc), values=values, status_code=400)
    flash(request, t(request, "msg_result_saved", result=t(request, "result_" + kind)), "ok")
    return redirect("/queues")


def routes() -> list[BaseRoute]:
    return [
        Route("/queues", queues_page, methods=["GET"]),
        Route("/queues/next", take_next, methods=["POST"]),
        Route("/tasks/{task_id:int}", task_page, methods=["GET"]),
        Route("/tasks/{task_id:int}/claim", claim, methods=["POST"]),
        Route("/tasks/{task_id:int}/release", release, methods=["POST"]),
        Route("/tasks/{task_id:int}/call", click_call.call, methods=["POST"]),
        Route("/tasks/{task_id:int}/call-status", click_call.call_status, methods=["GET"]),
        Route("/tasks/{task_id:int}/result", record, methods=["POST"]),
    ]
