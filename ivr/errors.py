"""Start-up failures a user can fix: the CLI prints them as one line, never a traceback."""

from __future__ import annotations

import errno


class StartupError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def bind_failure(what: str, host: str, port: int, exc: OSError, setting: str) -> StartupError:
    """A listening socket could not be opened: say which, why, and which setting moves it."""
    if exc.errno == errno.EADDRINUSE:
        why = "the port is in use by another program (another `ivr run`, `ivr agi-server` or `ivr web`?)"
    elif exc.errno == errno.EACCES:
        why = "permission denied (ports below 1024 need root)"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = "this machine has no such address"
    else:
        why = exc.strerror or str(exc)
    return StartupError(f"{what} cannot listen on {host}:{port}: {why}; set {setting} in .env to change it")
