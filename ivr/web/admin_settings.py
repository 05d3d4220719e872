"""The admin's page of runtime settings (issue 14): the legal-hours limits and every option of the
call script and the dialer, validated as a whole before anything is stored.

Values are stored in the `settings` table (ivr.db.options), the same place as the holiday policy;
what is stored overrides defaults.toml, and the call script and the dialer read it for every call
and every tick. A refused form is shown again with everything the admin typed and the reasons."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ivr.db.options import get_options, set_option
from ivr.web import runtime_settings as rs
from ivr.web.admin import problem_texts
from ivr.web.common import checked_form, flash, in_db, redirect, render, require, t
from ivr.web.forms import FormProblems

log = logging.getLogger(__name__)


def _page(request: Request, values: dict[str, str], errors: list[str], bad: set[str], status_code: int = 200) -> Response:
    return render(request, "admin/settings.html", {
        "specs": rs.SPECS, "groups": rs.GROUPS, "values": values, "errors": errors, "bad_fields": bad,
        "menu_keys": ", ".join(rs.MENU_KEYS)}, status_code=status_code)


async def settings_page(request: Request) -> Response:
    await require(request, "admin")
    stored = await in_db(request, get_options)
    return _page(request, rs.form_values(stored), [], set())


async def settings_save(request: Request) -> Response:
    user = await require(request, "admin")
    form = await checked_form(request)
    typed = {spec.key: str(form.get(spec.key, "")) for spec in rs.SPECS}
    try:
        values = rs.parse_settings(typed)
    except FormProblems as exc:
        return _page(request, typed, problem_texts(request, exc.problems), {p.field for p in exc.problems}, 400)

    def save(session: Session) -> list[str]:
        before = get_options(session)
        changed = [k for k, v in values.items() if before.get(k) != v]
        for key in changed:
            set_option(session, key, values[key])
        return changed

    changed: list[Any] = await in_db(request, save)
    # which keys, not their values: the log says who changed what; the page shows the values
    log.info("runtime settings changed by %s: %s", user.username, ", ".join(changed) or "nothing")
    flash(request, t(request, "msg_saved"), "ok")
    return redirect("/admin/settings")


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/settings", settings_page, methods=["GET"]),
        Route("/admin/settings", settings_save, methods=["POST"]),
    ]
