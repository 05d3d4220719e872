"""Classic AGI entry point: ``python -m ivr.agi.classic ROUTE [ARG...]`` (also ``ivr-agi-classic``).

Asterisk's ``AGI(/path/to/script,arg1,...)`` spawns one process per call and talks AGI over its
stdin/stdout. This module only decides how the call runs, and imports nothing else until then,
because every millisecond of a per-call process's start-up is silence on the line:

* by default the process relays the call to the robot's FastAGI server (`ivr run` or
  `ivr agi-server`, which a site runs anyway for the dialer), which runs it warm: ivr.agi.relay,
  standard library only. The server is the one ``IVR_CLASSIC_RELAY=agi://host:port`` (or
  ``--relay agi://host:port`` before ROUTE) names, else the one the robot's settings name
  (ivr.agi.relay_target: ``.env`` from ``$IVR_ENV_FILE`` and the environment);
* with ``IVR_CLASSIC_RELAY=off`` (or ``--in-process``) the call runs in this process
  (ivr.agi.classic_local: pyst2 reads the environment, the same call script as FastAGI through
  the same AGIChannel, the audio from the dialer's manifest): for sites without a FastAGI server;
* when the relay finds no server to take the call (refused, timed out, reset at accept, a bad
  URL) nothing has reached Asterisk yet, so the call runs in this process after all, with the
  environment block the relay already read, and one warning line on stderr: a call that starts
  late (the in-process start costs about a second) is better than a call lost. This holds for an
  explicitly configured relay too.

A wrapper script for the dialplan is one line (with the settings' server it needs no variable)::

    #!/bin/sh
    exec /opt/ivr/.venv/bin/python -m ivr.agi.classic debt-call "$@"
"""

from __future__ import annotations

import os
import sys
from typing import Any

USAGE = ("usage: python -m ivr.agi.classic [--relay agi://HOST:PORT | --in-process] ROUTE [ARG...]  "
         "(spawned by Asterisk's AGI(); relays to the FastAGI server of the settings by default, "
         "IVR_CLASSIC_RELAY=agi://HOST:PORT or off overrides)")
RELAY_ENV = "IVR_CLASSIC_RELAY"
IN_PROCESS = "off"  # IVR_CLASSIC_RELAY value (any case) that runs every call in process
# names of the in-process implementation, kept importable from here (tests, embedding)
_LOCAL = frozenset({"serve_classic", "_FdLineReader", "_Sink", "_PipeReader", "_fd_writer", "_lookup"})


def __getattr__(name: str) -> Any:
    if name in _LOCAL:
        from ivr.agi import classic_local

        return getattr(classic_local, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    relay_url = os.environ.get(RELAY_ENV, "").strip()
    if argv[:1] == ["--relay"]:
        if len(argv) < 2:
            print(USAGE, file=sys.stderr)
            return 2
        relay_url, argv = argv[1].strip(), argv[2:]
    elif argv[:1] == ["--in-process"]:
        relay_url, argv = IN_PROCESS, argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 2
    if relay_url.lower() == IN_PROCESS:
        return _run_here(argv)
    if not relay_url:
        from ivr.agi.relay_target import TargetError, default_url

        try:
            relay_url = default_url()
        except TargetError as exc:  # nothing read from stdin yet
            _warn(f"no FastAGI server to relay to ({exc})")
            return _run_here(argv)
    from ivr.agi.relay import NotRelayed, relay

    try:
        return relay(relay_url, argv)
    except NotRelayed as exc:
        _warn(f"FastAGI server at {exc.where} not reachable ({exc.why})")
        return _run_here(argv, exc.consumed)


def _warn(why: str) -> None:
    # one line, before the in-process path sets up logging; names no caller (only addresses)
    print(f"ivr classic AGI: {why}: running this call in process (slow start)", file=sys.stderr, flush=True)


def _run_here(argv: list[str], preread: bytes = b"") -> int:
    from ivr.agi.classic_local import main as run_here

    return run_here(argv, preread)


if __name__ == "__main__":
    raise SystemExit(main())
