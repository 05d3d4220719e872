"""How strong a password or a configured secret must be.

Web users' passwords: at least MIN_PASSWORD_LENGTH characters, not one of the common passwords
shipped in ivr/data/common-passwords.txt (also not one of them with digits or symbols tacked on,
"password2024!"), not mostly one repeated character, and not containing the username. Secrets in
settings (the web session key, AMI secrets) are machine-to-machine: they must be long, not a
placeholder such as "change-me", and not a common password.

Each check returns the reason (None = acceptable), so the web UI, the CLI and the settings loader
can each say it in their own way.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

MIN_PASSWORD_LENGTH = 12
MIN_WEB_SECRET_LENGTH = 32
MIN_AMI_SECRET_LENGTH = 16
# fewer distinct characters than this is a pattern ("aaaaaaaaaaaa", "abcabcabcabc"), not a password
_MIN_DISTINCT = 5
_PLACEHOLDERS = ("changeme", "change-me", "change_me", "secret", "password", "example", "xxxxxx")
COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common-passwords.txt"
# what people tack onto a common password to get past a length rule
_AFFIXES = "0123456789 !@#$%^&*()-_=+.,;:?/\\|'\"`~[]{}<>"


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    text = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def _is_common(value: str) -> bool:
    lowered = value.strip().lower()
    common = common_passwords()
    if lowered in common:
        return True
    core = lowered.strip(_AFFIXES)
    # "password123456" and "!!qwerty2024": a common word padded with digits/symbols; a core of
    # one or two characters says nothing (every short string is "common")
    return len(core) >= 3 and core in common


def _repeats(value: str) -> bool:
    """Few distinct characters, or a short unit repeated ("abcabcabcabc", "0123456789012345")."""
    if len(set(value.lower())) < _MIN_DISTINCT:
        return True
    return any(value[p:] == value[:-p] for p in range(1, len(value) // 2 + 1))


def password_problem(password: str, username: str = "") -> tuple[str, str] | None:
    """Why `password` is refused for a web user, as (message key in ivr.web.i18n, English
    message), or None. The key err_password_short takes the parameter n."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return "err_password_short", f"password must be at least {MIN_PASSWORD_LENGTH} characters"
    if _repeats(password):
        return "err_password_pattern", "password is a repeated pattern"
    if _is_common(password):
        return "err_password_common", "password is too common (on the list of passwords attackers try first)"
    name = username.strip().lower()
    if len(name) >= 3 and name in password.lower():
        return "err_password_username", "password must not contain the username"
    return None


def secret_problem(secret: str, minimum: int) -> str | None:
    """Why `secret` is refused as a configured machine secret, or None."""
    if len(secret) < minimum:
        return f"at least {minimum} characters are needed (a random string, e.g. `openssl rand -base64 32`)"
    lowered = secret.lower()
    if any(p in lowered for p in _PLACEHOLDERS):
        return "looks like a placeholder; use a random string (e.g. `openssl rand -base64 32`)"
    if _repeats(secret) or _is_common(secret):
        return "too easy to guess; use a random string (e.g. `openssl rand -base64 32`)"
    return None
