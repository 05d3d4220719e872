"""The logged-in user's own settings (issue 14): the time zone the pages show times in.

Any role may set their own zone; empty means the company's (IVR_DEFAULT_TIMEZONE). Times are
stored in UTC whatever is chosen here: this changes only how the pages show them."""

from __future__ import annotations

import logging
from functools import lru_cache
from zoneinfo import available_timezones

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ivr.db.models import User
from ivr.web.common import (
    CurrentUser,
    LoginRequired,
    checked_form,
    ctx,
    current_user,
    flash,
    form_str,
    in_db,
    redirect,
    render,
    t,
)

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """Every IANA zone a user may choose (the legacy aliases without a "/" are left out)."""
    return tuple(sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/"))))


def clean_timezone(raw: str) -> str | None:
    """The zone name as stored ("" = the company's), or None when it is not a known zone."""
    name = raw.strip()
    if not name:
        return ""
    return name if name in zone_names() else None


async def _me(request: Request) -> CurrentUser:
    user = await current_user(request)
    if user is None:
        raise LoginRequired(request.url.path)
    return user


def _page(request: Request, value: str, error: str = "", status_code: int = 200) -> Response:
    return render(request, "me.html", {"tz_value": value, "zones": zone_names(), "error": error,
                                       "company_tz": ctx(request).settings.default_timezone},
                  status_code=status_code)


async def me_page(request: Request) -> Response:
    user = await _me(request)
    return _page(request, user.timezone or "")


async def me_save(request: Request) -> Response:
    user = await _me(request)
    form = await checked_form(request)
    typed = form_str(form, "timezone")
    name = clean_timezone(typed)
    if name is None:
        return _page(request, typed, t(request, "err_timezone", value=typed), 400)

    def save(session: Session) -> None:
        row = session.get(User, user.id)
        if row is not None:
            row.timezone = name or None

    await in_db(request, save)
    log.info("user %s shows times in %s", user.username, name or "the company's zone")
    flash(request, t(request, "msg_saved"), "ok")
    return redirect("/me")


def routes() -> list[BaseRoute]:
    return [
        Route("/me", me_page, methods=["GET"]),
        Route("/me", me_save, methods=["POST"]),
    ]
