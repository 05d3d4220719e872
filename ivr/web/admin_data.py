"""Admin pages for data and people: the opt-out list, users and API tokens (billing import by
upload: ivr.web.admin_import)."""

from __future__ import annotations

import logging
from typing import Any

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ivr.db.models import Account, ApiToken, OptOut, User, utcnow
from ivr.logsetup import mask_phone
from ivr.outbox import facts as outbox
from ivr.web import auth
from ivr.web.common import (
    checked_form,
    ctx,
    flash,
    form_str,
    in_db,
    redirect,
    render,
    require,
    t,
)
from ivr.web.labels import known_queues
from ivr.web.me import clean_timezone, zone_names

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
IMPORT_KINDS = ("accounts", "payments")


# --- billing import -----------------------------------------------------------------------------

# The upload form, the preview, confirm and the history: ivr.web.admin_import (the import wizard).


# --- opt-outs -----------------------------------------------------------------------------------

def normalize_phone(raw: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


async def optouts_page(request: Request, error: str = "", status_code: int = 200) -> Response:
    await require(request, "admin")

    def load(session: Session) -> list[dict[str, Any]]:
        rows = session.execute(
            select(OptOut, Account.external_id).outerjoin(Account, Account.id == OptOut.account_id)
            .order_by(OptOut.created_at.desc())
        ).all()
        return [{"id": o.id, "phone": mask_phone(o.phone) if o.phone else "", "account": ext or "",
                 "source": o.source, "note": o.note, "created_at": o.created_at} for o, ext in rows]

    return render(request, "admin/optouts.html", {"optouts": await in_db(request, load), "error": error},
                  status_code=status_code)


async def optout_add(request: Request) -> Response:
    user = await require(request, "admin")
    form = await checked_form(request)
    web = ctx(request)
    raw_phone, external_id, note = form_str(form, "phone"), form_str(form, "external_id"), form_str(form, "note")[:200]
    phone = None
    if raw_phone:
        phone = normalize_phone(raw_phone, web.settings.default_region)
        if phone is None:
            return await optouts_page(request, t(request, "err_phone_invalid", value=raw_phone), 400)
    if not phone and not external_id:
        return await optouts_page(request, t(request, "err_optout_empty"), 400)

    def save(session: Session) -> bool:
        account_id = None
        if external_id:
            account_id = session.scalar(select(Account.id).where(Account.external_id == external_id))
            if account_id is None:
                return False
        session.add(OptOut(account_id=account_id, phone=phone, source="admin", note=note or f"by {user.username}"))
        outbox.opt_out_added(session, account_id, phone, utcnow())
        return True

    if not await in_db(request, save):
        return await optouts_page(request, t(request, "err_account_unknown", value=external_id), 400)
    log.info("opt-out added by %s (account %s)", user.username, external_id or "-")
    flash(request, t(request, "msg_saved"), "ok")
    return redirect("/admin/optouts")


async def optout_delete(request: Request) -> Response:
    user = await require(request, "admin")
    await checked_form(request)
    optout_id = int(request.path_params["optout_id"])

    def remove(session: Session) -> None:
        row = session.get(OptOut, optout_id)
        if row is not None:
            session.delete(row)

    await in_db(request, remove)
    log.info("opt-out %s removed by %s", optout_id, user.username)
    flash(request, t(request, "msg_deleted"), "ok")
    return redirect("/admin/optouts")


# --- users --------------------------------------------------------------------------------------

def _chosen_queues(form: Any) -> str:
    """The queues ticked in the form (one checkbox per queue), as the comma list auth takes."""
    return ",".join(str(q) for q in form.getlist("queues"))


def _check_queues(session: Session, queues: str) -> None:
    """Queues are ticked from the list; one that is not on it (a forged form) is refused."""
    known = set(known_queues(session))
    for queue in auth.normalize_queues(queues):
        if queue not in known:
            raise auth.AuthError("err_queue_unknown", f"queue {queue!r} is not in the list", queue=queue)


async def users_page(request: Request, error: str = "", status_code: int = 200, values: dict[str, str] | None = None) -> Response:
    await require(request, "admin")
    def load(session: Session) -> tuple[list[User], list[str]]:
        return list(session.scalars(select(User).order_by(User.active.desc(), User.username))), known_queues(session)

    users, queues = await in_db(request, load)
    return render(request, "admin/users.html", {"users": users, "roles": auth.ROLES, "error": error,
                                                "queue_choices": queues,
                                                "values": values or {"role": "operator"}, "zones": zone_names(),
                                                "company_tz": ctx(request).settings.default_timezone},
                  status_code=status_code)


async def user_add(request: Request) -> Response:
    admin_user = await require(request, "admin")
    form = await checked_form(request)
    values = {k: form_str(form, k) for k in ("username", "role", "phone")}
    values["queues"] = _chosen_queues(form)
    password = str(form.get("password", ""))

    def save(session: Session) -> None:
        _check_queues(session, values["queues"])
        auth.create_user(session, username=values["username"], role=values["role"], password=password,
                         phone=values["phone"], queues=auth.normalize_queues(values["queues"]))

    try:
        await in_db(request, save)
    except auth.AuthError as exc:
        return await users_page(request, t(request, exc.key, **exc.params), 400, values)
    log.info("user %s added by %s", values["username"], admin_user.username)
    flash(request, t(request, "msg_saved"), "ok")
    return redirect("/admin/users")


async def user_update(request: Request) -> Response:
    admin_user = await require(request, "admin")
    form = await checked_form(request)
    user_id = int(request.path_params["user_id"])
    role, phone, queues = form_str(form, "role"), form_str(form, "phone"), _chosen_queues(form)
    active = form_str(form, "active") in {"on", "1", "true"}
    # issue 14: the zone this user's pages show times in; a form without the field keeps it
    typed_tz = form_str(form, "timezone") if "timezone" in form else None
    timezone = clean_timezone(typed_tz) if typed_tz is not None else None
    if typed_tz is not None and timezone is None:
        return await users_page(request, t(request, "err_timezone", value=typed_tz), 400)

    def save(session: Session) -> None:
        row = session.get(User, user_id)
        if row is None:
            raise HTTPException(404, t(request, "err_not_found"))
        auth.validate_role(role)
        _check_queues(session, queues)
        if row.id == admin_user.id and (not active or role != auth.ROLE_ADMIN):
            # locking yourself out of the admin pages is never what was meant
            raise auth.AuthError("err_self_lockout", "you cannot remove your own admin access")
        row.role, row.phone, row.queues, row.active = role, phone or None, auth.normalize_queues(queues), active
        if timezone is not None:
            row.timezone = timezone or None

    try:
        await in_db(request, save)
    except auth.AuthError as exc:
        return await users_page(request, t(request, exc.key, **exc.params), 400)
    log.info("user %s updated by %s (role %s, active %s)", user_id, admin_user.username, role, active)
    flash(request, t(request, "msg_saved"), "ok")
    return redirect("/admin/users")


async def user_password(request: Request) -> Response:
    admin_user = await require(request, "admin")
    form = await checked_form(request)
    user_id = int(request.path_params["user_id"])
    password = str(form.get("password", ""))

    def save(session: Session) -> None:
        row = session.get(User, user_id)
        if row is None:
            raise HTTPException(404, t(request, "err_not_found"))
        auth.set_password(row, password)

    try:
        await in_db(request, save)
    except auth.AuthError as exc:
        return await users_page(request, t(request, exc.key, **exc.params), 400)
    log.info("password of user %s reset by %s", user_id, admin_user.username)
    flash(request, t(request, "msg_password_reset"), "ok")
    return redirect("/admin/users")


# --- API tokens ---------------------------------------------------------------------------------

async def tokens_page(request: Request, new_token: str = "", error: str = "", status_code: int = 200) -> Response:
    await require(request, "admin")
    tokens = await in_db(request, lambda s: list(s.scalars(select(ApiToken).order_by(ApiToken.revoked_at.is_not(None), ApiToken.name))))
    return render(request, "admin/tokens.html", {"tokens": tokens, "new_token": new_token, "error": error},
                  status_code=status_code)


async def token_add(request: Request) -> Response:
    admin_user = await require(request, "admin")
    form = await checked_form(request)
    name = form_str(form, "name")
    scopes = [v for v in form.getlist("scope") if isinstance(v, str)]
    try:
        token = await in_db(request, lambda s: auth.create_api_token(s, name, scopes)[1])
    except auth.AuthError as exc:
        return await tokens_page(request, error=t(request, exc.key, **exc.params), status_code=400)
    log.info("API token %r (%s) created by %s", name, ",".join(scopes), admin_user.username)
    # shown once, on this response only; only its hash is stored
    return await tokens_page(request, new_token=token)


async def token_revoke(request: Request) -> Response:
    admin_user = await require(request, "admin")
    await checked_form(request)
    token_id = int(request.path_params["token_id"])

    def revoke(session: Session) -> None:
        row = session.get(ApiToken, token_id)
        if row is not None and row.revoked_at is None:
            row.revoked_at = utcnow()

    await in_db(request, revoke)
    log.info("API token %s revoked by %s", token_id, admin_user.username)
    flash(request, t(request, "msg_revoked"), "ok")
    return redirect("/admin/tokens")


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/optouts", optouts_page, methods=["GET"]),
        Route("/admin/optouts", optout_add, methods=["POST"]),
        Route("/admin/optouts/{optout_id:int}/delete", optout_delete, methods=["POST"]),
        Route("/admin/users", users_page, methods=["GET"]),
        Route("/admin/users", user_add, methods=["POST"]),
        Route("/admin/users/{user_id:int}", user_update, methods=["POST"]),
        Route("/admin/users/{user_id:int}/password", user_password, methods=["POST"]),
        Route("/admin/tokens", tokens_page, methods=["GET"]),
        Route("/admin/tokens", token_add, methods=["POST"]),
        Route("/admin/tokens/{token_id:int}/revoke", token_revoke, methods=["POST"]),
    ]
