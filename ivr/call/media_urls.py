"""The call's audio by URL, for Asterisk hosts that do not share the robot's disk (issue 15).

With IVR_AUDIO_BASE_URL set (e.g. `http://robot1.example.net:8080`), every file the call script
plays is named by a URL on the robot's web app instead of a local path:

    <base>/media/<call id>/<token>/<path under the audio cache>.wav

`token` is an HMAC of the call id and the path under IVR_WEB_SECRET, so the URL of one call's
audio cannot be guessed from another's, nor from the file names. Asterisk fetches the file
through its HTTP media cache (res_curl + res_http_media_cache, see asterisk-conf/modules_media.conf)
wherever it plays a sound file name, STREAM FILE and GET DATA included; the `.wav` ending tells
it the format. The route is ivr.web.media.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from pathlib import Path
from urllib.parse import quote

from ivr.voice.call_audio import CallAudio

EXTENSION = ".wav"


def media_token(secret: str, call_id: str, rel: str) -> str:
    """HMAC-SHA256 of (call id, path under the cache) under the web secret, hex, 32 chars."""
    message = f"{call_id}\0{rel}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def media_url(base: str, secret: str, call_id: str, cache_root: Path, name: str) -> str:
    """The URL of an Asterisk file name (a path without extension); names outside the audio
    cache (Asterisk's own sounds) are returned unchanged."""
    try:
        rel = Path(name).resolve().relative_to(Path(cache_root).resolve()).as_posix()
    except ValueError:
        return name
    token = media_token(secret, call_id, rel)
    return f"{base.rstrip('/')}/media/{quote(call_id, safe='')}/{token}/{quote(rel)}{EXTENSION}"


def audio_by_url(audio: CallAudio, *, base: str, secret: str, call_id: str, cache_root: Path) -> CallAudio:
    """The same CallAudio with every file named by its URL."""

    def url(name: str) -> str:
        return media_url(base, secret, call_id, cache_root, name)

    return dataclasses.replace(
        audio,
        phrases={k: url(v) for k, v in audio.phrases.items()},
        readbacks={k: url(v) for k, v in audio.readbacks.items()},
        reason_replies={k: url(v) for k, v in audio.reason_replies.items()},
    )
