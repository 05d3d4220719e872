"""JSON API for billing systems: push accounts and payments, pull outcomes, the block list and
callbacks. Authentication is `Authorization: Bearer <token>` (tokens from `ivr tokens add` or the
admin page; only their hashes are stored); a token's scopes say which endpoints it may use
(import: the POSTs, export: the GETs), checked before the body is read. Errors are JSON:
{"error": "..."}.

Accounts and payments go through the same importer as CSV uploads (the JSON list is written as an
in-memory CSV with the same column names), so the validation, the bad-row report and the
"re-sending the same data changes nothing" rule are identical for both ways in.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ivr.web.auth import SCOPE_EXPORT, SCOPE_IMPORT, bearer_token, find_api_token, token_scopes
from ivr.web.common import ctx, in_db

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def json_response(data: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(_jsonable(data), status_code=status_code)


_TOKEN_KEY = "ivr.api_token"


async def authenticate(request: Request) -> str:
    """The token's name (already checked by `scoped` for this endpoint), or 401."""
    cached = request.scope.get(_TOKEN_KEY)
    if isinstance(cached, str):
        return cached
    name, _scopes = await _token(request)
    return name


async def _token(request: Request) -> tuple[str, tuple[str, ...]]:
    token = bearer_token(request.headers)

    def find(session: Session) -> tuple[str, tuple[str, ...]] | None:
        row = find_api_token(session, token)
        return (row.name, token_scopes(row)) if row else None

    found = await in_db(request, find) if token else None
    if found is None:
        raise HTTPException(401, "missing or invalid API token (Authorization: Bearer <token>)",
                            headers={"WWW-Authenticate": "Bearer"})
    return found


def scoped(scope: str, endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """`endpoint` for tokens that hold `scope` only: 401 without a valid token, 403 without the
    scope, both before a byte of the request body is read."""

    async def guarded(request: Request) -> Response:
        name, scopes = await _token(request)
        if scope not in scopes:
            log.warning("API token %s (scopes %s) refused on %s: needs %s", name, ",".join(scopes) or "-",
                        request.url.path, scope)
            raise HTTPException(403, f"this token lacks the {scope!r} scope (it has: {', '.join(scopes) or 'none'})")
        request.scope[_TOKEN_KEY] = name
        return await endpoint(request)

    return guarded


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list | tuple):
        # several phone numbers in one field, as billing CSV exports write them
        return ";".join(_cell(v) for v in value)
    return str(value)


def rows_to_csv(rows: list[dict[str, Any]]) -> bytes:
    """The JSON objects as a CSV file for the importer: the header is every key in order of first
    appearance, so the importer reports unknown or missing columns exactly as for an upload."""
    header: list[str] = []
    for row in rows:
        for key in row:
            if key not in header:
                header.append(str(key))
    out = io.StringIO()
    # a plain csv.writer, not ivr.csvsafe: this CSV is the importer's input, never opened in a
    # spreadsheet, and an apostrophe added here would be stored with the data
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(row.get(k)) for k in header])
    return out.getvalue().encode("utf-8")


async def _json_rows(request: Request) -> list[dict[str, Any]]:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise HTTPException(413, f"body larger than {MAX_BODY_BYTES} bytes")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise HTTPException(413, f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HTTPException(400, f"body is not valid JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if not isinstance(data, list):
        raise HTTPException(400, "expected a JSON list of objects (or {\"items\": [...]})")
    if len(data) > MAX_ROWS:
        raise HTTPException(413, f"at most {MAX_ROWS} rows per request")
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise HTTPException(400, f"item {index} is not an object")
        for key, value in item.items():
            if isinstance(value, dict):
                raise HTTPException(400, f"item {index}: field {key!r} must not be an object")
    return data


def report_json(report: Any) -> dict[str, Any]:
    errors = [{"line": e.line, "reason": e.reason, "field": e.field, "value": e.value} for e in report.errors]
    return {
        "rows_ok": report.rows_ok, "created": report.created, "updated": report.updated,
        "unchanged": report.unchanged, "rows_bad": report.rows_bad, "errors": errors,
        "summary": report.summary(),
    }


async def _import(request: Request, kind: str) -> Response:
    from ivr import jobs
    from ivr.billing.columns import ColumnError
    from ivr.billing.importer import ImportFileError

    name = await authenticate(request)
    rows = await _json_rows(request)
    if not rows:
        raise HTTPException(400, "the list is empty")
    web = ctx(request)
    data = rows_to_csv(rows)
    try:
        # a thread here, or a separate process in `ivr run` (ivr.jobs: never the calls' GIL)
        report = await jobs.run_import(kind, web.sessions, data, settings=web.settings, today=web.today(),
                                       filename=f"api:{name}")
    except ImportFileError as exc:  # e.g. no known field in the objects: the CLI's message, as JSON
        log.info("API %s import by token %s refused: %s", kind, name, exc)
        return json_response({"error": f"nothing imported: {exc}"}, 422 if isinstance(exc, ColumnError) else 400)
    log.info("API %s import by token %s: %s", kind, name, report.summary())
    body = report_json(report)
    # errors are per line of the list: line 2 is the first object (line 1 is the CSV header)
    body["line_note"] = "line N refers to item N-2 of the list (0-based)"
    if body["rows_bad"]:
        body["error"] = f"{body['rows_bad']} row(s) rejected; the others were imported"
        return json_response(body, 422)
    return json_response(body)


async def post_accounts(request: Request) -> Response:
    return await _import(request, "accounts")


async def post_payments(request: Request) -> Response:
    return await _import(request, "payments")


def _since(request: Request) -> dt.datetime | None:
    raw = request.query_params.get("since", "").strip()
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(400, f"since: expected an ISO date or date-time, got {raw!r}") from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


async def _export(request: Request, which: str) -> Response:
    from ivr.billing import exporter

    await authenticate(request)
    since = _since(request)
    fn = {"outcomes": exporter.export_outcomes, "blocklist": exporter.export_blocklist,
          "callbacks": exporter.export_callbacks}[which]

    def load(session: Session) -> list[dict[str, Any]]:
        return list(fn(session, since))

    items = await in_db(request, load)
    return json_response({"items": items, "count": len(items), "since": since})


async def get_outcomes(request: Request) -> Response:
    return await _export(request, "outcomes")


async def get_blocklist(request: Request) -> Response:
    return await _export(request, "blocklist")


async def get_callbacks(request: Request) -> Response:
    return await _export(request, "callbacks")


def routes() -> list[BaseRoute]:
    return [
        Route("/accounts", scoped(SCOPE_IMPORT, post_accounts), methods=["POST"]),
        Route("/payments", scoped(SCOPE_IMPORT, post_payments), methods=["POST"]),
        Route("/outcomes", scoped(SCOPE_EXPORT, get_outcomes), methods=["GET"]),
        Route("/blocklist", scoped(SCOPE_EXPORT, get_blocklist), methods=["GET"]),
        Route("/callbacks", scoped(SCOPE_EXPORT, get_callbacks), methods=["GET"]),
    ]
