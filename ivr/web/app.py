"""The web application: login, language switch, and the operator, admin, reports and API areas.

`create_app` takes its collaborators (settings, session factory, clock, click-to-call, audio cache,
prompt store) and builds a Starlette app; `ivr web` and `ivr run` serve it with uvicorn.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ivr.clock import Clock, SystemClock
from ivr.config import Settings
from ivr.db.models import User
from ivr.dialer.windows import zone as _zone
from ivr.web import (
    account_page,
    admin,
    admin_data,
    admin_import,
    admin_outbox,
    admin_prompts,
    admin_settings,
    api,
    i18n,
    live,
    me,
    media,
    operator,
    reports,
)
from ivr.web.auth import (
    LoginLimiter,
    authenticate,
    home_path,
    load_or_create_secret,
    revoke_sessions,
)
from ivr.web.common import (
    STATIC_DIR,
    TEMPLATES_DIR,
    LoginRequired,
    WebContext,
    checked_form,
    client_address,
    ctx,
    current_user,
    form_str,
    in_db,
    lang_of,
    password_fingerprint,
    redirect,
    render,
    t,
    trusted_networks,
)
from ivr.web.deps import ClickToCall
from ivr.web.limits import BodyLimit

log = logging.getLogger(__name__)

SESSION_COOKIE = "ivr_session"
SESSION_MAX_AGE = 12 * 3600  # one working day; then log in again
LANG_COOKIE = "ivr_lang"

_CSP = (
    "default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


class SecurityHeaders:
    """Plain ASGI middleware (no BaseHTTPMiddleware: it would buffer audio responses)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers.extend([
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"content-security-policy", _CSP.encode()),
                ])
            await send(message)

        await self.app(scope, receive, send_with_headers)


def secure_cookie(settings: Settings) -> bool:
    """IVR_WEB_COOKIE_SECURE=1 when the UI is served over HTTPS (behind a TLS proxy): the session
    cookie is then never sent over plain HTTP."""
    return str(settings.extra.get("IVR_WEB_COOKIE_SECURE", "")).strip().lower() in {"1", "true", "yes", "on"}


def _safe_next(raw: str) -> str:
    """Only same-site paths: a login form must not become an open redirect."""
    parts = urlsplit(raw)
    if not raw.startswith("/") or raw.startswith("//") or parts.scheme or parts.netloc:
        return ""
    return raw


async def home(request: Request) -> Response:
    user = await current_user(request)
    return redirect(home_path(user.role) if user else "/login")


async def login_page(request: Request) -> Response:
    if await current_user(request) is not None:
        return await home(request)
    return render(request, "login.html", {"next": _safe_next(request.query_params.get("next", ""))})


async def login_submit(request: Request) -> Response:
    form = await checked_form(request)
    web = ctx(request)
    username = form_str(form, "username")
    password = form.get("password", "")
    password = password if isinstance(password, str) else ""
    next_path = _safe_next(form_str(form, "next"))
    address = client_address(request)
    now = web.now()
    wait = web.limiter.blocked_for(username, address, now)
    if wait is not None:
        minutes = max(1, int(wait.total_seconds() // 60) + 1)
        log.warning("login for %r from %s refused: too many failures", username, address)
        return render(request, "login.html", {"error": t(request, "err_login_rate", minutes=minutes),
                                              "username": username, "next": next_path}, status_code=429)

    def check(session: Session) -> tuple[int, str, str, int] | None:
        user: User | None = authenticate(session, username, password)
        if user is None:
            return None
        return user.id, user.role, password_fingerprint(user.password_hash), user.session_epoch or 0

    found = await in_db(request, check) if username and password else None
    if found is None:
        web.limiter.failed(username, address, now)
        log.info("failed login for %r from %s", username, address)
        return render(request, "login.html", {"error": t(request, "err_login"), "username": username,
                                              "next": next_path}, status_code=401)
    web.limiter.succeeded(username, address)
    uid, role, fingerprint, epoch = found
    lang = lang_of(request)
    # a fresh session on login: no session fixation, new CSRF token
    request.session.clear()
    request.session.update({"uid": uid, "pwv": fingerprint, "sev": epoch, "lang": lang})
    log.info("user %r logged in from %s", username, address)
    return redirect(next_path or home_path(role))


async def logout(request: Request) -> Response:
    await checked_form(request)
    user = await current_user(request)
    if user is not None:
        # The cookie is signed, not stored: clearing it in this browser would leave a copy of it
        # (stolen, or on another machine) valid until it expires. Bumping the epoch ends them all.
        def revoke(session: Session) -> None:
            row = session.get(User, user.id)
            if row is not None:
                revoke_sessions(row)

        await in_db(request, revoke)
        log.info("user %r logged out; their sessions are revoked", user.username)
    lang = lang_of(request)
    request.session.clear()
    request.session["lang"] = lang
    return redirect("/login")


async def switch_language(request: Request) -> Response:
    form = await checked_form(request)
    lang = form_str(form, "lang")
    if lang not in i18n.LANGUAGES:
        raise HTTPException(400, t(request, "err_bad_language"))
    request.session["lang"] = lang
    back = _safe_next(form_str(form, "next")) or "/"
    response = redirect(back)
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="lax")
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    return render(request, "error.html", {"status": exc.status_code, "message": exc.detail},
                  status_code=exc.status_code)


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    target = "/login"
    if exc.next_path and exc.next_path != "/":
        from urllib.parse import quote

        target += "?next=" + quote(exc.next_path, safe="/")
    return redirect(target)


@jinja2.pass_context
def _money(context: Any, value: Any) -> str:
    """1 800,50 in Russian, 1,800.50 in English."""
    if value is None:
        return ""
    text = f"{value:,.2f}"
    if context.get("lang") == "ru":
        text = text.replace(",", "\u00a0").replace(".", ",")
    return text


@jinja2.pass_context
def _local_dt(context: Any, value: Any) -> str:
    """A stored instant (naive = UTC, as the database keeps them) in the page's user's zone
    (issue 14); a page rendered without one (no `user_tz`) says UTC rather than guess."""
    if value is None:
        return ""
    if isinstance(value, str):  # an ISO instant from JSON-shaped data (the live page)
        if ":" not in value:
            return value  # a date or plain text, not an instant: nothing to convert
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if not isinstance(value, dt.datetime):
        return str(value)
    aware = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
    zone_name = context.get("user_tz")
    zone = _zone(zone_name) if isinstance(zone_name, str) else None
    if zone is None:
        return f"{aware.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
    return f"{aware.astimezone(zone):%Y-%m-%d %H:%M}"


def _dt_in(value: Any, zone_name: str) -> str:
    """A stored instant in a named zone (the subscriber's), "" when there is none or the zone is
    unknown: the page then shows only the user's-zone time beside it."""
    zone = _zone(zone_name) if zone_name else None
    if not isinstance(value, dt.datetime) or zone is None:
        return ""
    aware = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
    return f"{aware.astimezone(zone):%d.%m %H:%M}"


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["dt"] = _local_dt
    env.filters["dt_in"] = _dt_in
    env.filters["money"] = _money
    return Jinja2Templates(env=env)


def create_app(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    clock: Clock | None = None,
    click_to_call: ClickToCall | None = None,
    audio_cache: Any = None,
    prompt_store: Any = None,
    secret_file: Path | None = None,
    login_limiter: LoginLimiter | None = None,
    upload_dir: Path | None = None,
) -> Starlette:
    """Build the web app. `audio_cache` / `prompt_store` default to ones built from `settings`
    on first use; `secret_file` (default var/web_secret) keeps a generated session secret when
    Settings.web_secret is empty."""
    secret = load_or_create_secret(settings.web_secret, secret_file or Path("var") / "web_secret")
    web = WebContext(
        settings=settings, sessions=sessions, clock=clock or SystemClock(), templates=_templates(),
        limiter=login_limiter or LoginLimiter(), click_to_call=click_to_call, audio_cache=audio_cache,
        prompt_store=prompt_store, upload_dir=upload_dir or Path("var") / "uploads",
        trusted_proxies=trusted_networks(settings.web_trusted_proxies),
    )
    routes: list[BaseRoute] = [
        Route("/", home, methods=["GET"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/lang", switch_language, methods=["POST"]),
        *operator.routes(),
        *account_page.routes(),
        *admin.routes(),
        *admin_data.routes(),
        *admin_import.routes(),  # issue 14: the import wizard
        *admin_outbox.routes(),
        *admin_prompts.routes(),
        *admin_settings.routes(),  # issue 14: runtime settings and the legal-hours limits
        *me.routes(),  # issue 14: the user's own time zone
        *reports.routes(),
        *live.routes(),  # issue 13: the live page and pauses
        *media.routes(),  # issue 15: call audio for Asterisk's HTTP media cache
        Mount("/api/v1", routes=api.routes()),
        Mount("/static", app=StaticFiles(directory=str(STATIC_DIR)), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        # outermost after the headers: a body over its path's limit is refused while it streams
        Middleware(BodyLimit),
        Middleware(SessionMiddleware, secret_key=secret, session_cookie=SESSION_COOKIE,
                   max_age=SESSION_MAX_AGE, same_site="lax", https_only=secure_cookie(settings)),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_error, LoginRequired: _login_required},
    )
    app.state.web = web
    return app
