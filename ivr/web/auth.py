"""Who may do what in the web UI: password hashing, API tokens, the session secret, CSRF, login
rate limiting and role checks.

Passwords use scrypt with a per-user salt; comparisons are constant-time; new passwords must pass
ivr.passwords (length, not a common password). API tokens are random (256 bits), so a plain
SHA-256 of the token is enough to store them: it cannot be brute-forced and lets the API find the
row with one indexed lookup. Each token has scopes (import, export) checked per API endpoint.
Sessions are revocable: the user's session epoch is in the signed cookie and bumped at logout
and at a password change.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
from collections import deque
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.config import ConfigError
from ivr.db.models import ApiToken, User
from ivr.passwords import (
    MIN_PASSWORD_LENGTH,
    MIN_WEB_SECRET_LENGTH,
    password_problem,
    secret_problem,
)

log = logging.getLogger(__name__)

ROLE_ADMIN = "admin"
ROLE_OPERATOR = "operator"
ROLE_MANAGER = "manager"
ROLES = (ROLE_ADMIN, ROLE_OPERATOR, ROLE_MANAGER)

# scrypt cost: 2**14 * 8 * 128 bytes = 16 MiB per hash, ~50 ms; parameters are stored with the hash
# so they can be raised later without invalidating existing passwords.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_LEN = 32
CSRF_FIELD = "csrf"
_SESSION_CSRF = "csrf"


class AuthError(ValueError):
    """Bad input for a user or token operation; the message says what is wrong (in English, for
    the CLI); `key` and `params` name the same message in ivr.web.i18n."""

    def __init__(self, key: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.key = key
        self.params = params


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None, cost: int | None = None) -> str:
    salt = salt if salt is not None else os.urandom(16)
    n = cost or _SCRYPT_N
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=_SCRYPT_R, p=_SCRYPT_P,
                            dklen=_SCRYPT_LEN, maxmem=64 * 1024 * 1024)
    return f"scrypt${n}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=int(n), r=int(r), p=int(p),
                                dklen=len(expected), maxmem=64 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# A hash of a random password: checking an unknown username costs the same as a real one, so the
# response time does not tell which usernames exist.
_DUMMY_HASH = hash_password(secrets.token_hex(16))


def check_password_strength(password: str, username: str = "") -> None:
    problem = password_problem(password, username)
    if problem is not None:
        key, message = problem
        raise AuthError(key, message, n=MIN_PASSWORD_LENGTH)


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(func.lower(User.username) == username.strip().lower()))
    if user is None:
        verify_password(password, _DUMMY_HASH)
        return None
    if not verify_password(password, user.password_hash) or not user.active:
        return None
    return user


def normalize_queues(raw: str | Iterable[str]) -> list[str]:
    items = raw.replace(";", ",").split(",") if isinstance(raw, str) else list(raw)
    seen: list[str] = []
    for item in items:
        item = item.strip()
        if item and item not in seen:
            seen.append(item)
    return seen


def validate_username(username: str) -> str:
    username = username.strip()
    if not username or len(username) > 64:
        raise AuthError("err_username", "username must be 1-64 characters")
    if not all(c.isalnum() or c in "._-@" for c in username):
        raise AuthError("err_username", "username may contain letters, digits and . _ - @ only")
    return username


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise AuthError("err_role", f"role must be one of {', '.join(ROLES)}")
    return role


def create_user(session: Session, *, username: str, role: str, password: str, phone: str | None = None,
                queues: Iterable[str] = ()) -> User:
    username = validate_username(username)
    validate_role(role)
    check_password_strength(password, username)
    if session.scalar(select(User.id).where(func.lower(User.username) == username.lower())) is not None:
        raise AuthError("err_user_exists", f"user {username!r} already exists", name=username)
    user = User(username=username, role=role, password_hash=hash_password(password),
                phone=(phone or "").strip() or None, queues=normalize_queues(queues), active=True)
    session.add(user)
    session.flush()
    log.info("user %s created with role %s", username, role)
    return user


def set_password(user: User, password: str) -> None:
    check_password_strength(password, user.username)
    user.password_hash = hash_password(password)
    revoke_sessions(user)


def revoke_sessions(user: User) -> None:
    """End every session of `user` (all browsers): their cookies carry the old epoch."""
    user.session_epoch = (user.session_epoch or 0) + 1


# --- API tokens -------------------------------------------------------------------------------

TOKEN_PREFIX = "ivr_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# What an API token may do. import: POST /api/v1/accounts and /payments; export: GET
# /api/v1/outcomes, /blocklist, /callbacks (read-only).
SCOPE_IMPORT = "import"
SCOPE_EXPORT = "export"
SCOPES = (SCOPE_IMPORT, SCOPE_EXPORT)


def parse_scopes(raw: str | Iterable[str]) -> tuple[str, ...]:
    """Scopes from "import,export" or a list, in canonical order; unknown or none is an error."""
    items = raw.replace(";", ",").split(",") if isinstance(raw, str) else list(raw)
    wanted = {item.strip().lower() for item in items if item.strip()}
    unknown = sorted(wanted - set(SCOPES))
    if unknown or not wanted:
        raise AuthError("err_token_scopes", f"token scopes must be some of {', '.join(SCOPES)}"
                        + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    return tuple(s for s in SCOPES if s in wanted)


def token_scopes(row: ApiToken) -> tuple[str, ...]:
    return tuple(s for s in SCOPES if s in {p.strip() for p in (row.scopes or "").split(",")})


def create_api_token(session: Session, name: str,
                     scopes: str | Iterable[str] = SCOPES) -> tuple[ApiToken, str]:
    """Store a new token (hashed) with `scopes`; returns the row and the token, which is shown
    only once."""
    name = name.strip()
    if not name or len(name) > 64:
        raise AuthError("err_token_name", "token name must be 1-64 characters")
    granted = parse_scopes(scopes)
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise AuthError("err_token_exists", f"a token named {name!r} already exists", name=name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(name=name, token_hash=hash_token(token), scopes=",".join(granted))
    session.add(row)
    session.flush()
    return row, token


def find_api_token(session: Session, token: str) -> ApiToken | None:
    if not token:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
    if row is None or row.revoked_at is not None:
        return None
    # the lookup was by hash; compare again in constant time so the check itself leaks nothing
    return row if hmac.compare_digest(row.token_hash, hash_token(token)) else None


def bearer_token(headers: Mapping[str, str]) -> str:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


# --- session secret -----------------------------------------------------------------------------

def load_or_create_secret(configured: str, path: Path) -> str:
    """The configured secret, else the one persisted in `path` (created 0600 at first start) so
    sessions survive a restart."""
    if configured:
        return configured
    if path.is_file():
        secret = path.read_text(encoding="ascii").strip()
        if secret:
            problem = secret_problem(secret, MIN_WEB_SECRET_LENGTH)
            if problem is not None:  # someone wrote their own into the file
                raise ConfigError(f"{path}: weak session secret refused: {problem}; "
                                  "delete the file to have a random one generated")
            return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # O_EXCL: two processes starting at once must not overwrite each other's secret
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secret + "\n")
    log.info("generated a web session secret in %s", path)
    return secret


# --- CSRF ---------------------------------------------------------------------------------------

def csrf_token(session: MutableMapping[str, Any]) -> str:
    token = session.get(_SESSION_CSRF)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[_SESSION_CSRF] = token
    return token


def csrf_ok(session: Mapping[str, Any], submitted: object) -> bool:
    expected = session.get(_SESSION_CSRF)
    if not isinstance(expected, str) or not expected or not isinstance(submitted, str):
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


# --- roles --------------------------------------------------------------------------------------

# Which roles reach which area of the UI. Admins do everything; managers read reports only.
AREA_ROLES: dict[str, frozenset[str]] = {
    "operator": frozenset({ROLE_ADMIN, ROLE_OPERATOR}),
    "admin": frozenset({ROLE_ADMIN}),
    "reports": frozenset({ROLE_ADMIN, ROLE_MANAGER}),
}


def allowed(role: str, area: str) -> bool:
    return role in AREA_ROLES[area]


def home_path(role: str) -> str:
    return {ROLE_ADMIN: "/admin", ROLE_OPERATOR: "/queues", ROLE_MANAGER: "/reports"}.get(role, "/login")


# --- login rate limiting ------------------------------------------------------------------------

@dataclass
class LoginLimiter:
    """Failed logins are counted within `window` under two keys, and a try is refused while either
    is full, until its oldest failure leaves the window:
    - (username, client address): `max_failures`, someone mistyping or guessing one account;
    - username from any address: `max_account_failures`, guessing spread over many addresses
      (a botnet, or forged X-Forwarded-For).
    There is deliberately no limit per address across accounts: behind a proxy that is not in
    IVR_WEB_TRUSTED_PROXIES, or an office NAT, every user shares one address, and one attacker
    could lock everyone out. Trying common passwords across accounts is answered by the password
    policy instead (ivr.passwords). Memory is bounded: old keys are dropped when the table grows
    past `max_keys`."""

    max_failures: int = 5
    max_account_failures: int = 20
    window: dt.timedelta = dt.timedelta(minutes=15)
    max_keys: int = 10_000

    def __post_init__(self) -> None:
        self._failures: dict[tuple[str, str, str], deque[dt.datetime]] = {}

    def _keys(self, username: str, address: str) -> list[tuple[tuple[str, str, str], int]]:
        name = username.strip().lower()
        return [(("pair", name, address), self.max_failures),
                (("account", name, ""), self.max_account_failures)]

    def _prune(self, key: tuple[str, str, str], now: dt.datetime) -> deque[dt.datetime]:
        times = self._failures.get(key, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        return times

    def blocked_for(self, username: str, address: str, now: dt.datetime) -> dt.timedelta | None:
        """How long this try must still wait, or None when it is allowed."""
        waits = []
        for key, limit in self._keys(username, address):
            times = self._prune(key, now)
            if len(times) >= limit:
                waits.append(self.window - (now - times[-limit]))
        return max(waits) if waits else None

    def failed(self, username: str, address: str, now: dt.datetime) -> None:
        for key, limit in self._keys(username, address):
            times = self._prune(key, now)
            times.append(now)
            while len(times) > limit:  # only the newest `limit` matter for the wait
                times.popleft()
            self._failures[key] = times
        if len(self._failures) > self.max_keys:
            for stale in [k for k, v in self._failures.items() if not v or now - v[-1] >= self.window]:
                del self._failures[stale]

    def succeeded(self, username: str, address: str) -> None:
        """The right password from this address clears its own count only: a success must not
        reset what an attacker elsewhere has run up against the account."""
        self._failures.pop(self._keys(username, address)[0][0], None)
