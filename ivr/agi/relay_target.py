"""Where a classic AGI process relays when nothing says otherwise: the FastAGI server the robot's
own settings name (``.env`` from ``$IVR_ENV_FILE``, default ``.env``, overlaid by the process
environment, as `ivr.config.load_settings` merges them).

* ``IVR_AGI_PUBLIC_URL`` when it is an ``agi://`` URL: the address Asterisk is told to use, and the
  classic process runs beside Asterisk;
* otherwise the address the server binds, ``IVR_AGI_HOST``:``IVR_AGI_PORT`` (127.0.0.1:4573 by
  default, the same as the public URL's default). ``hagi://`` (DNS SRV) needs a resolver the
  standard library does not have, so it also takes this branch;
* a wildcard bind address (0.0.0.0, ::) is where the server listens, not an address to connect
  to: it becomes the loopback address of its family.

Why not ``ivr.config``: this runs in every per-call process before the first word of the call,
and the relay's whole budget is a few tens of milliseconds of CPU. ``import ivr.config`` costs
25-35 ms of CPU on top of the relay's own imports (about 38 ms with the interpreter's start) and
python-dotenv alone 15-25 ms (median of 30 interpreter starts each, CPU from wait4, 2-core machine
at load 0.4-1.6): up to half as much again. The small reader's cost is lost in the noise of those
runs (a few ms either way). So the three keys are read by the small reader below, and python-dotenv (the
parser ``ivr.config`` uses) is imported only when the file has something the small reader does
not handle exactly (quotes spanning lines, escapes, ``${VAR}`` interpolation, comments after the
value, quoted keys): the two must never disagree on where the server is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

KEYS = ("IVR_AGI_PUBLIC_URL", "IVR_AGI_HOST", "IVR_AGI_PORT")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4573
# bind-to-everything addresses -> the loopback address of the same family
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1", "0:0:0:0:0:0:0:0": "::1"}
# characters whose meaning in a value python-dotenv interprets (quotes, escapes, interpolation,
# comments): a value of ours containing one is left to python-dotenv
_SPECIAL = frozenset("'\"\\$#")


class TargetError(Exception):
    """The settings do not name a server this process can connect to."""


class _NeedsDotenv(Exception):
    pass


def _simple_values(text: str) -> dict[str, str]:
    """KEYS as python-dotenv would read them from `text`, for files of plain ``KEY=value`` lines."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if "\r" in text:  # old Mac line ends
        raise _NeedsDotenv
    found: dict[str, str] = {}
    for raw in text.split("\n"):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export"):].lstrip()
        key, eq, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if key.startswith("'"):
            raise _NeedsDotenv  # quoted key
        if value[:1] in ("'", '"') and ("\\" in value or len(value) < 2 or value.find(value[0], 1) < 0):
            raise _NeedsDotenv  # a quoted value that may go on over the next lines (of any key)
        if key not in KEYS:
            continue
        if not eq:
            raise _NeedsDotenv
        if len(value) >= 2 and value[0] in ("'", '"') and value[-1] == value[0]:
            value = value[1:-1]
        if _SPECIAL.intersection(value):
            raise _NeedsDotenv
        found[key] = value
    return found


def read_values(env_file: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    """KEYS from `env_file` (if it is a file) overlaid by `environ`, like load_settings merges them."""
    values: dict[str, str] = {}
    if env_file and os.path.isfile(env_file):
        try:
            with open(env_file, "rb") as f:
                data = f.read()
            try:
                values = _simple_values(data.decode("utf-8"))
            except (_NeedsDotenv, UnicodeDecodeError):
                from dotenv import dotenv_values

                values = {k: v or "" for k, v in dotenv_values(env_file).items() if k in KEYS}
        except (OSError, ValueError) as exc:
            raise TargetError(f"cannot read {env_file}: {exc}") from None
    values.update({k: environ[k] for k in KEYS if k in environ})
    return {k: v.strip() for k, v in values.items() if v.strip()}  # empty = the default, as in ivr.config


def connect_host(host: str) -> str:
    return _WILDCARDS.get(host, host)


def default_url(environ: Mapping[str, str] | None = None) -> str:
    """The agi://host:port this process relays to by default (see the module docstring)."""
    environ = os.environ if environ is None else environ
    values = read_values(environ.get("IVR_ENV_FILE", ".env"), environ)
    public = values.get("IVR_AGI_PUBLIC_URL", "").rstrip("/")
    if public.lower().startswith("agi://"):
        from ivr.agi.relay import RelayError, parse_url

        try:
            host, port = parse_url(public)
        except RelayError as exc:
            raise TargetError(f"IVR_AGI_PUBLIC_URL: {exc}") from None
    else:
        host = values.get("IVR_AGI_HOST", DEFAULT_HOST)
        raw_port = values.get("IVR_AGI_PORT", str(DEFAULT_PORT))
        if not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
            raise TargetError(f"IVR_AGI_PORT: expected a port number, got {raw_port!r}")
        port = int(raw_port)
    host = connect_host(host)
    return f"agi://[{host}]:{port}" if ":" in host else f"agi://{host}:{port}"
