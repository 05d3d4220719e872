"""Classic AGI entry point: ``python -m ivr.agi.classic ROUTE [ARG...]`` (also ``ivr-agi-classic``).

Asterisk's ``AGI(/path/to/script,arg1,...)`` spawns one process per call and talks AGI over its
stdin/stdout. This module only decides how the call runs, and imports nothing else until then,
because every millisecond of a per-call process's start-up is silence on the line:

* with ``IVR_CLASSIC_RELAY=agi://host:port`` in the environment (or ``--relay agi://host:port``
  before ROUTE), the process relays the call to the robot's FastAGI server (`ivr run` or
  `ivr agi-server`), which runs it warm: ivr.agi.relay, standard library only;
* otherwise the call runs in this process (ivr.agi.classic_local: pyst2 reads the environment,
  the same call script as FastAGI through the same AGIChannel, the audio from the dialer's
  manifest).

A wrapper script for the dialplan is one line::

    #!/bin/sh
    IVR_CLASSIC_RELAY=agi://127.0.0.1:4573 exec /opt/ivr/.venv/bin/python -m ivr.agi.classic debt-call "$@"
"""

from __future__ import annotations

import os
import sys
from typing import Any

USAGE = ("usage: python -m ivr.agi.classic [--relay agi://HOST:PORT] ROUTE [ARG...]  "
         "(spawned by Asterisk's AGI(); IVR_CLASSIC_RELAY sets the relay too)")
RELAY_ENV = "IVR_CLASSIC_RELAY"
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
        relay_url, argv = argv[1], argv[2:]
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 2
    if relay_url:
        from ivr.agi.relay import relay

        return relay(relay_url, argv)
    from ivr.agi.classic_local import main as run_here

    return run_here(argv)


if __name__ == "__main__":
    raise SystemExit(main())
