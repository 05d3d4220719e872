"""Admin page of the push to billing: the event log (filter by state) and a resend button per
event. Sending itself is the job of `ivr run` (ivr/outbox/sender.py); a resent event is due at
once and goes out with its next round, with the same idempotency key."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ivr.db.models import OutboxEvent, utcnow
from ivr.outbox.events import STATES
from ivr.web.common import checked_form, ctx, flash, in_db, redirect, render, require, t

log = logging.getLogger(__name__)

PAGE_SIZE = 200


async def outbox_page(request: Request) -> Response:
    await require(request, "admin")
    state = request.query_params.get("state", "")
    if state and state not in STATES:
        raise HTTPException(400, t(request, "err_choice"))

    def load(session: Session) -> dict[str, Any]:
        stmt = select(OutboxEvent).order_by(OutboxEvent.id.desc()).limit(PAGE_SIZE)
        if state:
            stmt = stmt.where(OutboxEvent.state == state)
        counts = {str(k): int(v) for k, v in session.execute(
            select(OutboxEvent.state, func.count()).group_by(OutboxEvent.state))}
        return {"events": list(session.scalars(stmt)), "counts": counts}

    data = await in_db(request, load)
    return render(request, "admin/outbox.html", {
        **data, "states": STATES, "state": state, "page_size": PAGE_SIZE,
        "push_url": ctx(request).settings.billing_push_url,
    })


async def outbox_resend(request: Request) -> Response:
    from ivr.outbox.sender import resend

    user = await require(request, "admin")
    form = await checked_form(request)
    event_id = int(request.path_params["event_id"])
    if not await in_db(request, lambda session: session.get(OutboxEvent, event_id) is not None):
        raise HTTPException(404, t(request, "err_not_found"))
    resend(ctx(request).sessions, event_id, utcnow())
    log.info("outbox event %s resent by %s", event_id, user.username)
    flash(request, t(request, "msg_outbox_resent", id=event_id), "ok")
    back = str(form.get("state") or "")
    return redirect(f"/admin/outbox?state={back}" if back in STATES else "/admin/outbox")


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/outbox", outbox_page, methods=["GET"]),
        Route("/admin/outbox/{event_id:int}/resend", outbox_resend, methods=["POST"]),
    ]
