"""Request bodies are limited while they stream in, and the API checks its token (and the token's
scope) before it reads a byte of the body.

The requests are driven straight through the ASGI interface with a body source that counts what
the app has taken, so the tests see how much was read, not only the status code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from ivr.web import auth, limits
from ivr.web.api import MAX_BODY_BYTES
from ivr.wiring import Database

from .conftest import Browser

CHUNK = 64 * 1024


class Sender:
    """An HTTP client's side of one request: the body in chunks, counting what the app read."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._next: bytes | None = next(chunks, None)
        self.read = 0

    async def receive(self) -> dict[str, Any]:
        if self._next is None:
            return {"type": "http.disconnect"}
        chunk, self._next = self._next, next(self._chunks, None)
        self.read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": self._next is not None}


async def call(app: Any, method: str, path: str, headers: dict[str, str], chunks: Iterator[bytes],
               cookies: str = "") -> tuple[int, bytes, Sender]:
    sender = Sender(chunks)
    raw_headers = [(b"host", b"testserver")] + [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if cookies:
        raw_headers.append((b"cookie", cookies.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "headers": raw_headers, "client": ("127.0.0.1", 50000),
             "server": ("testserver", 80), "state": {}}
    status = 0
    body = b""

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")

    await app(scope, sender.receive, send)
    return status, body, sender


def endless(prefix: bytes, total: int) -> Iterator[bytes]:
    """`prefix`, then filler up to `total` bytes, in CHUNK-sized pieces."""
    yield prefix
    sent = len(prefix)
    while sent < total:
        piece = min(CHUNK, total - sent)
        sent += piece
        yield b"x" * piece


def make_token(db: Database, name: str, scopes: str) -> str:
    with db.sessions.begin() as s:
        return auth.create_api_token(s, name, scopes)[1]


async def test_chunked_api_body_is_cut_off_at_the_limit(app: Any, db: Database) -> None:
    token = make_token(db, "billing", "import")
    total = MAX_BODY_BYTES + 10 * 1024 * 1024
    status, body, sender = await call(app, "POST", "/api/v1/accounts",
                                      {"authorization": f"Bearer {token}", "content-type": "application/json"},
                                      endless(b"[", total))
    assert status == 413
    assert "larger than" in json.loads(body)["error"]
    # the app stopped reading at the chunk that crossed the limit, not at the end of the body
    assert sender.read <= MAX_BODY_BYTES + CHUNK
    assert sender.read < total


async def test_declared_oversize_api_body_is_refused_unread(app: Any, db: Database) -> None:
    token = make_token(db, "billing", "import")
    status, body, sender = await call(app, "POST", "/api/v1/payments",
                                      {"authorization": f"Bearer {token}", "content-length": str(MAX_BODY_BYTES + 1)},
                                      endless(b"[", MAX_BODY_BYTES + 1))
    assert status == 413 and sender.read == 0


@pytest.mark.parametrize(("scopes", "authorization", "status"), [
    ("import", "Bearer ivr_not-a-token", 401),
    ("import", "", 401),
    ("export", None, 403),  # a valid token without the import scope
])
async def test_api_refuses_before_reading_the_body(app: Any, db: Database, scopes: str, authorization: str | None,
                                                   status: int) -> None:
    token = make_token(db, "billing", scopes)
    headers = {"content-type": "application/json",
               "authorization": authorization if authorization is not None else f"Bearer {token}"}
    got, body, sender = await call(app, "POST", "/api/v1/accounts", headers, endless(b"[", 5 * 1024 * 1024))
    assert got == status, body
    assert sender.read == 0


async def test_login_multipart_is_cut_off_at_the_limit(app: Any) -> None:
    boundary = "b0undary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nadmin\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"password\"; filename=\"p.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    total = 5 * 1024 * 1024
    status, body, sender = await call(app, "POST", "/login",
                                      {"content-type": f"multipart/form-data; boundary={boundary}"},
                                      endless(head, total))
    assert status == 413
    assert sender.read <= limits.LOGIN_LIMIT + CHUNK
    assert b"<html" in body  # the error page, not a bare traceback


async def test_anonymous_form_post_elsewhere_is_refused_unread(app: Any) -> None:
    """A page that needs a session checks it before reading the form: no session, no reading."""
    status, _body, sender = await call(app, "POST", "/admin/import",
                                       {"content-type": "application/x-www-form-urlencoded"},
                                       endless(b"kind=accounts&file=", 3 * 1024 * 1024))
    assert status == 303 and sender.read == 0


def test_upload_pages_keep_their_larger_limit(as_admin: Browser) -> None:
    """2 MiB is over the limit of an ordinary form but within the recording upload's: there it
    reaches the handler, which judges the file (not a WAV), while a plain form page refuses it."""
    blob = b"not a wav" * (2 * 1024 * 1024 // 9)
    assert len(blob) > limits.DEFAULT_LIMIT
    upload = as_admin.client.post("/admin/prompts/recording",
                                  data={"csrf": as_admin.csrf, "name": "greeting", "lang": "ru", "stage": ""},
                                  files={"file": ("big.wav", blob, "audio/wav")})
    assert upload.status_code == 400 and "WAV" in upload.text
    form = as_admin.client.post("/admin/optouts", data={"csrf": as_admin.csrf},
                                files={"file": ("big.wav", blob, "audio/wav")})
    assert form.status_code == 413
