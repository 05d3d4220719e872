"""Request body limits, enforced while the body streams in.

Starlette reads a form or a body in full when a handler asks for it, and a chunked request has no
Content-Length to check first, so a size check after `await request.body()` comes after the
memory (or temp disk) is spent. `BodyLimit` wraps the ASGI `receive`: a declared Content-Length
over the path's limit is refused at the first read, before any byte of the body is taken, and a
body that streams past the limit is refused at the chunk that crosses it. Either way the
handler's read raises `BodyTooLarge` (an HTTPException 413), answered like any other HTTP error
(JSON on the API, the error page elsewhere).

Handlers still decide *when* to read: the API and every page but the login check the token or
the session before they touch the body, so an anonymous sender is refused before any of it is read.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ivr.web.admin_data import MAX_UPLOAD_BYTES
from ivr.web.admin_prompts import MAX_RECORDING_BYTES
from ivr.web.api import MAX_BODY_BYTES

log = logging.getLogger(__name__)

KIB = 1024
# multipart framing around an uploaded file: boundaries, part headers, the CSRF field
_FORM_OVERHEAD = 64 * KIB
LOGIN_LIMIT = 16 * KIB  # username, password, CSRF token and `next`: nobody needs more
DEFAULT_LIMIT = 1024 * KIB  # every other form (rules, prompts text, notes)
# path prefix -> limit; the first match wins
PATH_LIMITS: tuple[tuple[str, int], ...] = (
    ("/login", LOGIN_LIMIT),
    ("/api/", MAX_BODY_BYTES),
    ("/admin/import", MAX_UPLOAD_BYTES + _FORM_OVERHEAD),
    ("/admin/prompts/recording", MAX_RECORDING_BYTES + _FORM_OVERHEAD),
)


def limit_for(path: str) -> int:
    for prefix, limit in PATH_LIMITS:
        if path == prefix or path.startswith(prefix if prefix.endswith("/") else prefix + "/"):
            return limit
    return DEFAULT_LIMIT


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")
        self.limit = limit


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """Plain ASGI middleware (BaseHTTPMiddleware would buffer); see the module doc."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # GET and HEAD handlers never read a body; a streaming response's disconnect listener
        # must not trip over a declared length nobody is going to read
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = limit_for(path)
        declared = _declared_length(scope)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared is not None and declared > limit:
                log.warning("refused a %d-byte body on %s (limit %d)", declared, path, limit)
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    log.warning("refused a streamed body on %s past %d bytes", path, limit)
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)
