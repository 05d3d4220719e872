"""GET /media/<call id>/<token>/<path>.wav: a call's prompt audio for Asterisk's HTTP media cache.

No login (Asterisk's curl has none): the token (ivr.call.media_urls.media_token, an HMAC under
IVR_WEB_SECRET) is the permission, and only files under the audio cache are served. Without a
web secret the route serves nothing.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from ivr.call.media_urls import EXTENSION, media_token
from ivr.web.common import WebContext


def _not_found() -> Response:
    return PlainTextResponse("not found", status_code=404)


async def serve_media(request: Request) -> Response:
    web: WebContext = request.app.state.web
    secret = web.settings.web_secret
    call_id = request.path_params["call_id"]
    token = request.path_params["token"]
    path = request.path_params["path"]
    if not secret or not path.endswith(EXTENSION):
        return _not_found()
    rel = path[: -len(EXTENSION)]
    if not hmac.compare_digest(token, media_token(secret, call_id, rel)):
        return _not_found()
    root = Path(web.settings.audio_cache_dir).resolve()
    file = (root / path).resolve()
    if not file.is_relative_to(root) or not file.is_file():
        return _not_found()
    return FileResponse(file, media_type="audio/wav")


def routes() -> list[BaseRoute]:
    return [Route("/media/{call_id}/{token}/{path:path}", serve_media, methods=["GET", "HEAD"])]
