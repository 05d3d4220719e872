"""Click-to-call from the account card: the subscriber's call hours, the override, the call's state.

Outside the subscriber's hours (ivr.web.call_hours) the call is refused unless the operator ticks
the override and gives a reason; the reason is kept on the attempt and shown on the card. The
card polls `/tasks/{id}/call-status` (JSON) for the state and duration of the latest operator
call on the account; the attempt itself is closed by the AMI events like any other attempt
(ivr.dialer.attempts), which also store its duration.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ivr.db.models import (
    Account,
    AttemptState,
    CallAttempt,
    CallbackTask,
    DebtCase,
    TaskState,
    User,
)
from ivr.dialer.windows import naive_utc
from ivr.web import tasks as task_logic
from ivr.web.call_hours import CallHours, call_hours, clean_reason
from ivr.web.card import phone_for_call
from ivr.web.common import checked_form, ctx, flash, form_int, form_str, in_db, redirect, require, t
from ivr.web.deps import ClickToCallError

log = logging.getLogger(__name__)

RINGING, TALKING, ENDED = "ringing", "talking", "ended"
_CALL_STATE = {AttemptState.CLAIMED.value: RINGING, AttemptState.DIALING.value: RINGING,
               AttemptState.ANSWERED.value: TALKING}


@dataclass(frozen=True)
class _Target:
    account_id: int
    number: str
    hours: CallHours


def hours_for_task(session: Session, task: CallbackTask, phone: str | None, now: dt.datetime,
                   default_tz: str) -> CallHours:
    account = session.get(Account, task.account_id)
    assert account is not None
    case = session.get(DebtCase, task.debt_case_id) if task.debt_case_id else session.scalar(
        select(DebtCase).where(DebtCase.account_id == account.id).order_by(DebtCase.id.desc()).limit(1)
    )
    if phone is None and account.phones:
        phone = account.phones[0].number
    return call_hours(session, account, case, phone, now, default_tz)


def _outside_hours_message(request: Request, hours: CallHours) -> str:
    if hours.next_open_local is None:
        return t(request, "err_outside_hours_unknown")
    return t(request, "err_outside_hours", opens=hours.next_open_local.strftime("%d.%m %H:%M"), zone=hours.zone)


async def call(request: Request) -> Response:
    user = await require(request, "operator")
    form = await checked_form(request)
    web = ctx(request)
    task_id = int(request.path_params["task_id"])
    back = redirect(f"/tasks/{task_id}")
    if web.click_to_call is None:
        flash(request, t(request, "err_no_asterisk"), "error")
        return back
    if not user.phone:
        flash(request, t(request, "err_no_operator_phone"), "error")
        return back
    phone_id = form_int(form, "phone_id")
    override = form_str(form, "override") == "1"
    reason = clean_reason(form_str(form, "override_reason"))
    now = web.now()

    def find(session: Session) -> _Target:
        task = session.get(CallbackTask, task_id)
        if task is None:
            raise task_logic.TaskError("err_task_not_found", "no such task")
        if task.state != TaskState.CLAIMED.value or task.claimed_by != user.id:
            raise task_logic.TaskError("err_claim_lost", "not your task")
        phone = phone_for_call(session, task.account_id, phone_id) if phone_id is not None else None
        if phone is None:
            raise task_logic.TaskError("err_phone_missing", "choose a number")
        task_logic.touch(session, task, now)
        hours = hours_for_task(session, task, phone.number, now, web.settings.default_timezone)
        return _Target(task.account_id, phone.number, hours)

    try:
        target = await in_db(request, find)
    except task_logic.TaskError as exc:
        flash(request, t(request, exc.key, **exc.params), "error")
        return back
    override_reason = None
    if not target.hours.allowed:
        if not override:
            flash(request, _outside_hours_message(request, target.hours), "error")
            return back
        if not reason:
            flash(request, t(request, "err_override_reason"), "error")
            return back
        override_reason = reason
        log.warning("operator %s calls account %s outside its hours (override): %s", user.username,
                    target.account_id, reason)
    try:
        await web.click_to_call.call(operator_phone=user.phone, subscriber_phone=target.number, task_id=task_id,
                                     account_id=target.account_id, operator_id=user.id,
                                     override_reason=override_reason)
    except ClickToCallError as exc:
        flash(request, t(request, "err_call_failed", reason=str(exc)), "error")
        return back
    flash(request, t(request, "msg_calling", phone=user.phone), "ok")
    return back


def call_state(attempt: CallAttempt, now: dt.datetime) -> dict[str, Any]:
    """The card's view of one operator call: ringing, talking or ended, and its duration in
    seconds (the stored one once ended; counted from the answer while talking)."""
    state = _CALL_STATE.get(attempt.state, ENDED)
    duration: float | None
    if state == ENDED:
        duration = float(attempt.duration_s) if attempt.duration_s is not None else None
    elif state == TALKING and attempt.answered_at is not None:
        duration = max(0.0, (naive_utc(now) - attempt.answered_at).total_seconds())
    else:
        duration = None
    return {"id": attempt.id, "state": state, "result": attempt.result or "",
            "duration_s": round(duration) if duration is not None else None,
            "override_reason": attempt.override_reason or ""}


async def call_status(request: Request) -> Response:
    user = await require(request, "operator")
    web = ctx(request)
    task_id = int(request.path_params["task_id"])
    now = web.now()

    def load(session: Session) -> dict[str, Any] | None:
        task = session.get(CallbackTask, task_id)
        if task is None:
            return None
        row = session.get(User, user.id)
        assert row is not None
        if not task_logic.may_work(row, task):
            raise HTTPException(403, t(request, "err_queue_not_yours", queue=task.queue))
        attempt = session.scalar(
            select(CallAttempt)
            .where(CallAttempt.account_id == task.account_id, CallAttempt.purpose == "operator")
            .order_by(CallAttempt.created_at.desc(), CallAttempt.id.desc()).limit(1)
        )
        if attempt is None:
            return {"call": None}
        view = call_state(attempt, now)
        view["label"] = t(request, "call_state_" + view["state"])
        return {"call": view}

    data = await in_db(request, load)
    if data is None:
        raise HTTPException(404, t(request, "err_task_not_found"))
    return JSONResponse(data, headers={"Cache-Control": "no-store"})
