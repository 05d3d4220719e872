"""What every page handler needs: the app's collaborators, the logged-in user, running database
work off the event loop, CSRF-checked forms, flash messages and template rendering."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from ivr.clock import Clock
from ivr.config import Settings
from ivr.db.models import User
from ivr.web import i18n
from ivr.web.auth import CSRF_FIELD, LoginLimiter, allowed, csrf_ok, csrf_token
from ivr.web.deps import ClickToCall
from ivr.web.labels import labeller

log = logging.getLogger(__name__)
T = TypeVar("T")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


@dataclass
class WebContext:
    settings: Settings
    sessions: sessionmaker[Session]
    clock: Clock
    templates: Jinja2Templates
    limiter: LoginLimiter
    click_to_call: ClickToCall | None = None
    audio_cache: Any = None
    prompt_store: Any = None
    upload_dir: Path = field(default_factory=lambda: Path("var/uploads"))
    # IVR_WEB_TRUSTED_PROXIES, parsed: peers whose X-Forwarded-For is believed
    trusted_proxies: tuple[IPNetwork, ...] = ()
    # digest -> (text, language) of recent prompt previews (see admin_prompts)
    previews: OrderedDict[str, tuple[str, str]] = field(default_factory=OrderedDict)
    # issue 16: digest -> voice-pack spans of that preview; the PhraseVoice (built on first use)
    preview_spans: dict[str, Any] = field(default_factory=dict)
    phrase_voice: Any = None

    def now(self) -> dt.datetime:
        return self.clock.now()

    def today(self) -> dt.date:
        return self.clock.now().date()


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    role: str
    phone: str | None
    queues: tuple[str, ...]
    timezone: str | None = None  # issue 14: the zone pages show times in; None = the company's


class LoginRequired(Exception):
    """Raised by `require`; the app answers with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def ctx(request: Request) -> WebContext:
    context: WebContext = request.app.state.web
    return context


async def in_db(request: Request, fn: Callable[[Session], T]) -> T:
    """Run `fn` in one transaction on a worker thread: the web UI shares the event loop with the
    FastAGI server and the dialer in `ivr run`, and database calls block."""
    sessions = ctx(request).sessions

    def work() -> T:
        with sessions.begin() as session:
            return fn(session)

    return await run_in_threadpool(work)


def password_fingerprint(password_hash: str) -> str:
    # A password reset changes the hash, which logs out every session of that user.
    return password_hash[-16:]


def session_user(session: Session, data: dict[str, Any]) -> CurrentUser | None:
    """The user a session cookie names, if the cookie is still valid: the account is active, its
    password unchanged and its session epoch the one written at login (logout bumps it, so a
    copied cookie dies with the logout)."""
    uid = data.get("uid")
    if not isinstance(uid, int):
        return None
    user = session.get(User, uid)
    if user is None or not user.active or data.get("pwv") != password_fingerprint(user.password_hash):
        return None
    if data.get("sev") != (user.session_epoch or 0):
        return None
    return CurrentUser(user.id, user.username, user.role, user.phone, tuple(user.queues or ()), user.timezone)


async def current_user(request: Request) -> CurrentUser | None:
    cached = request.scope.get("ivr.user")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    data = dict(request.session)
    user = await in_db(request, lambda s: session_user(s, data)) if "uid" in data else None
    if user is None and "uid" in request.session:
        request.session.pop("uid", None)
    request.scope["ivr.user"] = user
    return user


async def require(request: Request, area: str) -> CurrentUser:
    """The logged-in user if their role may use `area` (operator | admin | reports); otherwise a
    redirect to the login page (not logged in) or 403 (wrong role)."""
    user = await current_user(request)
    if user is None:
        raise LoginRequired(request.url.path)
    if not allowed(user.role, area):
        log.warning("user %s (%s) refused access to %s", user.username, user.role, request.url.path)
        raise HTTPException(403, t(request, "err_forbidden"))
    return user


async def checked_form(request: Request) -> FormData:
    """The POSTed form, after checking its CSRF token against the session's. Every form handler
    reads its form through here; a missing or wrong token is a 403 and nothing is changed."""
    form = await request.form()
    if not csrf_ok(request.session, form.get(CSRF_FIELD)):
        log.warning("CSRF check failed on %s", request.url.path)
        raise HTTPException(403, t(request, "err_csrf"))
    return form


def lang_of(request: Request) -> str:
    lang = request.session.get("lang") or request.cookies.get("ivr_lang")
    return lang if lang in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE


def t(request: Request, key: str, /, **params: Any) -> str:
    return i18n.translate(lang_of(request), key, **params)


def flash(request: Request, message: str, kind: str = "ok") -> None:
    messages = list(request.session.get("flash", []))
    messages.append([kind, message])
    request.session["flash"] = messages[-5:]


def redirect(path: str) -> RedirectResponse:
    # 303: the browser follows a POST's redirect with GET (post/redirect/get)
    return RedirectResponse(path, status_code=303)


def user_timezone(request: Request) -> str:
    """The zone the pages show times in for the logged-in user: their own setting, else the
    company's (IVR_DEFAULT_TIMEZONE); a zone that no longer exists falls back to the company's."""
    user = request.scope.get("ivr.user")
    name = getattr(user, "timezone", None) or ctx(request).settings.default_timezone
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r of user %s; showing %s", name, getattr(user, "username", "-"),
                    ctx(request).settings.default_timezone)
        name = ctx(request).settings.default_timezone
    return name


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    lang = lang_of(request)
    values: dict[str, Any] = {
        # the `dt` filter shows stored (UTC) instants in this zone; never a bare UTC time
        "user_tz": user_timezone(request),
        "t": i18n.translator(lang),
        "lang": lang,
        "languages": i18n.LANGUAGES,
        "has_key": i18n.has_key,
        "label": labeller(lang),  # label(prefix, code): a code by its catalogue label (ivr.web.labels)
        "user": request.scope.get("ivr.user"),
        "csrf": csrf_token(request.session),
        "flashes": request.session.pop("flash", []) if "flash" in request.session else [],
        "can": lambda area: bool(request.scope.get("ivr.user")) and allowed(request.scope["ivr.user"].role, area),
        "path": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "section": _section(request.url.path),
    }
    clash = set(values) & set(context or {})
    if clash:  # a page variable shadowing the layout's would silently break the header
        raise ValueError(f"template context of {name} redefines {sorted(clash)}")
    values.update(context or {})
    return ctx(request).templates.TemplateResponse(request, name, values, status_code=status_code)


def _section(path: str) -> str:
    if path.startswith(("/queues", "/tasks", "/accounts")):
        return "operator"
    if path.startswith("/admin"):
        return "admin"
    if path.startswith("/reports"):
        return "reports"
    return ""


def form_str(form: FormData, key: str, default: str = "") -> str:
    value = form.get(key, default)
    return value.strip() if isinstance(value, str) else default


def form_int(form: FormData, key: str) -> int | None:
    raw = form_str(form, key)
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def client_address(request: Request) -> str:
    """The client's IP address for logs and login limiting. X-Forwarded-For is believed only when
    the direct peer is one of IVR_WEB_TRUSTED_PROXIES, and then only as far as the chain of trusted
    proxies goes: the rightmost address that is not a trusted proxy is the client (everything left
    of it was written by the client and may be forged)."""
    peer = request.client.host if request.client else "unknown"
    proxies = ctx(request).trusted_proxies
    if not proxies or not _is_trusted(peer, proxies):
        return peer
    hops = [h.strip() for value in request.headers.getlist("x-forwarded-for") for h in value.split(",")]
    client = peer
    for hop in reversed([h for h in hops if h]):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a trusted proxy always appends a valid address; garbage means no answer
        client = str(address)
        if not any(address in net for net in proxies):
            break
    # the first untrusted hop from the right; when every hop is trusted, the leftmost one
    return client


def _is_trusted(host: str, proxies: tuple[IPNetwork, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in net for net in proxies)


def trusted_networks(items: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)
