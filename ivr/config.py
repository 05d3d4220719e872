"""One typed settings object, read from the environment and an optional `.env` file.

Every key is documented in `.env.example`. A bad value fails at start with a message naming the
key (ConfigError); defaults run with no `.env` at all: SQLite in the working directory and the
built-in Asterisk simulator.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from ivr.passwords import MIN_AMI_SECRET_LENGTH, MIN_WEB_SECRET_LENGTH, secret_problem

# The HMAC key shared with billing: as hard to guess as the web session key.
MIN_PUSH_SECRET_LENGTH = MIN_WEB_SECRET_LENGTH

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is missing or malformed; the message names the key."""


@dataclass(frozen=True)
class AsteriskServer:
    """One Asterisk box the dialer may place calls on."""

    name: str
    ami_host: str
    ami_port: int
    ami_user: str
    ami_secret: str
    channel_limit: int
    # Template of the outbound channel, e.g. "PJSIP/{number}@trunk"; {number} is E.164 without '+'.
    channel_template: str
    # Addresses this Asterisk's FastAGI connections come from (empty: not checked); a connection
    # for one of its calls from elsewhere is refused.
    agi_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///ivr.sqlite3"
    company_name: str = "ООО «Охрана-Сервис»"
    default_region: str = "RU"
    default_language: str = "ru"
    default_currency: str = "RUB"
    default_timezone: str = "Europe/Moscow"
    # FastAGI server
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    agi_allow: tuple[str, ...] = ("127.0.0.1", "::1")
    # URL Asterisk uses to reach our FastAGI server (goes into the dialplan variable IVR_AGI_URL)
    agi_public_url: str = "agi://127.0.0.1:4573"
    # What one FastAGI peer may cost (ivr.agi.server.AGILimits)
    agi_env_timeout: float = 5.0
    agi_env_max_lines: int = 256
    agi_env_max_bytes: int = 16384
    agi_max_connections: int = 4000
    agi_reply_timeout: float = 30.0
    agi_media_timeout: float = 600.0
    agi_session_timeout: float = 3600.0
    # Back-pressure (ivr.dialer.backpressure): calls up on the FastAGI side at most, and the p99
    # of the server's own delay above which the dialer originates fewer calls
    agi_max_calls: int = 2000
    agi_delay_target_ms: float = 100.0
    # AMI / Asterisk servers; empty list means "use the built-in simulator"
    asterisk_servers: tuple[AsteriskServer, ...] = ()
    ami_ping_interval: float = 20.0
    ami_ping_timeout: float = 5.0
    originate_timeout_ms: int = 30000
    dialplan_context: str = "ivr-robot"
    dialplan_exten: str = "s"
    caller_id: str = '"Billing" <74950000000>'
    # dialer
    calls_per_second: float = 5.0
    dialer_tick_seconds: float = 2.0  # idle re-check: a case imported by another process is seen within it
    dialer_id: str = ""
    # web
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    web_secret: str = ""
    # issue 15: play the call's audio by URL from the robot's web app (Asterisk hosts without the
    # robot's disk; ivr.call.media_urls); empty = local file names
    audio_base_url: str = ""
    # reverse proxies (IPs or networks) whose X-Forwarded-For names the real client
    web_trusted_proxies: tuple[str, ...] = ()
    claim_idle_minutes: int = 30
    # voice
    tts_engine: str = "espeak-ng"
    audio_cache_dir: Path = Path("var/audio")
    recordings_dir: Path = Path("var/recordings")
    prompts_dir: Path = Path("prompts")
    # import: dates in billing files outside these years (inclusive) are rejected by line; a
    # year like 0001 or 9999 is a typo in billing and would overflow the ladder's date arithmetic
    import_years: tuple[int, int] = (2000, 2100)
    # reports
    operator_minutes_per_call: float = 3.0
    # push to billing (ivr/outbox/): empty URL = events are recorded but nobody sends them
    billing_push_url: str = ""
    billing_push_secret: str = ""
    log_level: str = "INFO"
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def use_simulator(self) -> bool:
        return not self.asterisk_servers


def _int(key: str, raw: str, minimum: int | None = None, maximum: int | None = None) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{key}: expected an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key}: must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key}: must be <= {maximum}, got {value}")
    return value


def _float(key: str, raw: str, minimum: float = 0.0) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{key}: expected a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{key}: must be >= {minimum}, got {value}")
    return value


def _seconds(key: str, raw: str, minimum: float, maximum: float = 86_400.0) -> float:
    """A deadline: finite and within bounds (NaN or inf would silently mean "never")."""
    value = _float(key, raw, minimum)
    if not math.isfinite(value) or value > maximum:
        raise ConfigError(f"{key}: must be a number of seconds between {minimum} and {maximum:.0f}, got {raw.strip()!r}")
    return value


# Bounds for IVR_IMPORT_YEARS itself: wide enough for any real billing, narrow enough that adding
# a ladder's days to a date can never leave the calendar (dt.date stops at year 9999).
_YEARS_LIMITS = (1900, 2999)


def _years(key: str, raw: str) -> tuple[int, int]:
    """'2000-2100' (or '2000..2100') -> (2000, 2100)."""
    parts = [p.strip() for p in re.split(r"\.\.|-", raw.strip(), maxsplit=1)]
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ConfigError(f"{key}: expected FIRST-LAST years such as 2000-2100, got {raw!r}")
    first, last = int(parts[0]), int(parts[1])
    low, high = _YEARS_LIMITS
    if not low <= first <= last <= high:
        raise ConfigError(f"{key}: expected {low} <= FIRST <= LAST <= {high}, got {raw!r}")
    return first, last


def _tz(key: str, raw: str) -> str:
    try:
        ZoneInfo(raw.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{key}: unknown time zone {raw!r}") from None
    return raw.strip()


def _hosts(key: str, raw: str) -> tuple[str, ...]:
    items = tuple(p.strip() for p in raw.split(",") if p.strip())
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"{key}: {item!r} is not an IP address or network") from None
    return items


def _url(key: str, raw: str) -> str:
    value = raw.strip()
    if value and not value.startswith(("http://", "https://")):
        raise ConfigError(f"{key}: expected an http:// or https:// URL, got {value!r}")
    return value


def _secret(key: str, raw: str, minimum: int) -> str:
    """A secret from .env, refused at start when it is guessable. The built-in simulator's fixed
    loopback credential (ivr.runtime.SIM_SECRET) never passes through here: it is not a setting."""
    value = raw.strip()
    problem = secret_problem(value, minimum)
    if problem is not None:
        raise ConfigError(f"{key}: weak secret refused: {problem}")
    return value


def _servers(env: Mapping[str, str]) -> tuple[AsteriskServer, ...]:
    names = [n.strip() for n in env.get("IVR_ASTERISK_SERVERS", "").split(",") if n.strip()]
    servers = []
    for name in names:
        prefix = f"IVR_AST_{name.upper()}_"

        def need(suffix: str, prefix: str = prefix) -> str:
            value = env.get(prefix + suffix, "").strip()
            if not value:
                raise ConfigError(f"{prefix}{suffix}: required for Asterisk server listed in IVR_ASTERISK_SERVERS")
            return value

        servers.append(
            AsteriskServer(
                name=name,
                ami_host=need("HOST"),
                ami_port=_int(prefix + "PORT", env.get(prefix + "PORT", "5038"), 1, 65535),
                ami_user=need("USER"),
                ami_secret=_secret(prefix + "SECRET", need("SECRET"), MIN_AMI_SECRET_LENGTH),
                channel_limit=_int(prefix + "CHANNELS", env.get(prefix + "CHANNELS", "10"), 1),
                channel_template=env.get(prefix + "CHANNEL", "PJSIP/{number}@debt-trunk"),
                agi_from=_hosts(prefix + "AGI_FROM", env.get(prefix + "AGI_FROM", "")),
            )
        )
        if "{number}" not in servers[-1].channel_template:
            raise ConfigError(f"{prefix}CHANNEL: must contain {{number}}")
    return tuple(servers)


_SIMPLE: dict[str, tuple[str, Callable[[str, str], Any]]] = {
    "IVR_DATABASE_URL": ("database_url", lambda k, v: v.strip()),
    "IVR_COMPANY_NAME": ("company_name", lambda k, v: v.strip()),
    "IVR_DEFAULT_REGION": ("default_region", lambda k, v: v.strip().upper()),
    "IVR_DEFAULT_LANGUAGE": ("default_language", lambda k, v: v.strip().lower()),
    "IVR_DEFAULT_CURRENCY": ("default_currency", lambda k, v: v.strip().upper()),
    "IVR_DEFAULT_TIMEZONE": ("default_timezone", _tz),
    "IVR_AGI_HOST": ("agi_host", lambda k, v: v.strip()),
    "IVR_AGI_PORT": ("agi_port", lambda k, v: _int(k, v, 1, 65535)),
    "IVR_AGI_ALLOW": ("agi_allow", _hosts),
    "IVR_AGI_PUBLIC_URL": ("agi_public_url", lambda k, v: v.strip().rstrip("/")),
    "IVR_AGI_ENV_TIMEOUT": ("agi_env_timeout", lambda k, v: _seconds(k, v, 0.1)),
    "IVR_AGI_ENV_MAX_LINES": ("agi_env_max_lines", lambda k, v: _int(k, v, 32, 100_000)),
    "IVR_AGI_ENV_MAX_BYTES": ("agi_env_max_bytes", lambda k, v: _int(k, v, 1024, 16 * 1024 * 1024)),
    "IVR_AGI_MAX_CONNECTIONS": ("agi_max_connections", lambda k, v: _int(k, v, 1, 1_000_000)),
    "IVR_AGI_REPLY_TIMEOUT": ("agi_reply_timeout", lambda k, v: _seconds(k, v, 0.1)),
    "IVR_AGI_MEDIA_TIMEOUT": ("agi_media_timeout", lambda k, v: _seconds(k, v, 1.0)),
    "IVR_AGI_SESSION_TIMEOUT": ("agi_session_timeout", lambda k, v: _seconds(k, v, 1.0)),
    "IVR_AGI_MAX_CALLS": ("agi_max_calls", lambda k, v: _int(k, v, 1, 1_000_000)),
    "IVR_AGI_DELAY_TARGET_MS": ("agi_delay_target_ms", lambda k, v: _float(k, v, 1.0)),
    "IVR_AMI_PING_INTERVAL": ("ami_ping_interval", lambda k, v: _float(k, v, 0.1)),
    "IVR_AMI_PING_TIMEOUT": ("ami_ping_timeout", lambda k, v: _float(k, v, 0.1)),
    "IVR_ORIGINATE_TIMEOUT_MS": ("originate_timeout_ms", lambda k, v: _int(k, v, 1000)),
    "IVR_DIALPLAN_CONTEXT": ("dialplan_context", lambda k, v: v.strip()),
    "IVR_DIALPLAN_EXTEN": ("dialplan_exten", lambda k, v: v.strip()),
    "IVR_CALLER_ID": ("caller_id", lambda k, v: v.strip()),
    "IVR_CALLS_PER_SECOND": ("calls_per_second", lambda k, v: _float(k, v, 0.01)),
    "IVR_DIALER_TICK_SECONDS": ("dialer_tick_seconds", lambda k, v: _float(k, v, 0.01)),
    "IVR_DIALER_ID": ("dialer_id", lambda k, v: v.strip()),
    "IVR_WEB_HOST": ("web_host", lambda k, v: v.strip()),
    "IVR_WEB_PORT": ("web_port", lambda k, v: _int(k, v, 1, 65535)),
    "IVR_WEB_SECRET": ("web_secret", lambda k, v: _secret(k, v, MIN_WEB_SECRET_LENGTH)),
    "IVR_WEB_TRUSTED_PROXIES": ("web_trusted_proxies", _hosts),
    "IVR_AUDIO_BASE_URL": ("audio_base_url", lambda k, v: v.strip().rstrip("/")),
    "IVR_CLAIM_IDLE_MINUTES": ("claim_idle_minutes", lambda k, v: _int(k, v, 1)),
    "IVR_TTS_ENGINE": ("tts_engine", lambda k, v: v.strip()),
    "IVR_AUDIO_CACHE_DIR": ("audio_cache_dir", lambda k, v: Path(v.strip())),
    "IVR_RECORDINGS_DIR": ("recordings_dir", lambda k, v: Path(v.strip())),
    "IVR_PROMPTS_DIR": ("prompts_dir", lambda k, v: Path(v.strip())),
    "IVR_IMPORT_YEARS": ("import_years", _years),
    "IVR_OPERATOR_MINUTES_PER_CALL": ("operator_minutes_per_call", lambda k, v: _float(k, v, 0.0)),
    "IVR_LOG_LEVEL": ("log_level", lambda k, v: v.strip().upper()),
    "IVR_BILLING_PUSH_URL": ("billing_push_url", lambda k, v: _url(k, v)),
    "IVR_BILLING_PUSH_SECRET": ("billing_push_secret", lambda k, v: _secret(k, v, MIN_PUSH_SECRET_LENGTH) if v.strip() else ""),
}


def load_settings(env_file: str | os.PathLike[str] | None = ".env", environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from `.env` (if present) overlaid by the process environment."""
    merged: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update({k: v or "" for k, v in dotenv_values(env_file).items()})
    merged.update(dict(os.environ if environ is None else environ))
    values: dict[str, Any] = {}
    for key, (attr, parse) in _SIMPLE.items():
        if key in merged and merged[key] != "":
            values[attr] = parse(key, merged[key])
    values["asterisk_servers"] = _servers(merged)
    if "prompts_dir" not in values and not Path("prompts").is_dir():
        # run from elsewhere than the checkout: the templates shipped beside the package
        values["prompts_dir"] = Path(__file__).resolve().parent.parent / "prompts"
    if not Path(values.get("prompts_dir", "prompts")).is_dir():
        raise ConfigError(f"IVR_PROMPTS_DIR: {values.get('prompts_dir', 'prompts')} is not a directory")
    if values.get("log_level", "INFO") not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"IVR_LOG_LEVEL: expected DEBUG, INFO, WARNING or ERROR, got {values['log_level']!r}")
    if values.get("default_language", "ru") not in {"ru", "uk", "en"}:
        raise ConfigError("IVR_DEFAULT_LANGUAGE: expected ru, uk or en")
    if not values.get("database_url", "sqlite:").startswith(("sqlite", "postgresql")):
        raise ConfigError("IVR_DATABASE_URL: expected a sqlite:/// or postgresql+psycopg:// URL")
    if values.get("billing_push_url") and not values.get("billing_push_secret"):
        # fail closed: billing must be able to tell our pushes from anyone else's
        raise ConfigError("IVR_BILLING_PUSH_SECRET: required when IVR_BILLING_PUSH_URL is set")
    values["extra"] = {k: v for k, v in merged.items() if k.startswith("IVR_") and k not in _SIMPLE}
    return Settings(**values)
