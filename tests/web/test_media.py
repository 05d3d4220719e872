"""The call-audio route for Asterisk's HTTP media cache: served with the right token only."""

from __future__ import annotations

import warnings
from pathlib import Path

from ivr.call.media_urls import audio_by_url, media_url
from ivr.clock import FixedClock
from ivr.config import Settings
from ivr.voice.prepare import CallAudio
from ivr.web.app import create_app
from ivr.wiring import Database
from tests.web.conftest import NOW

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

SECRET = "s3cret-for-tests"


def _client(db: Database, tmp_path: Path, secret: str = SECRET) -> tuple[TestClient, Path]:
    cache = tmp_path / "audio"
    (cache / "ru" / "ab").mkdir(parents=True)
    (cache / "ru" / "ab" / "abcdef.wav").write_bytes(b"RIFF....WAVEfmt ")
    (tmp_path / "outside.wav").write_bytes(b"secret")
    settings = Settings(web_secret=secret, audio_cache_dir=cache, prompts_dir=Path("prompts"))
    app = create_app(settings=settings, sessions=db.sessions, clock=FixedClock(NOW), secret_file=tmp_path / "ws")
    return TestClient(app), cache


def test_a_call_audio_url_serves_the_file(db: Database, tmp_path: Path) -> None:
    client, cache = _client(db, tmp_path)
    url = media_url("http://robot:8080", SECRET, "d1-abc", cache, str(cache / "ru" / "ab" / "abcdef"))
    assert url.startswith("http://robot:8080/media/d1-abc/") and url.endswith("/ru/ab/abcdef.wav")
    reply = client.get(url.removeprefix("http://robot:8080"))
    assert reply.status_code == 200 and reply.content == b"RIFF....WAVEfmt "
    assert reply.headers["content-type"] == "audio/wav"


def test_wrong_token_other_call_or_outside_the_cache_is_not_found(db: Database, tmp_path: Path) -> None:
    client, cache = _client(db, tmp_path)
    url = media_url("", SECRET, "d1-abc", cache, str(cache / "ru" / "ab" / "abcdef"))
    token = url.split("/")[3]
    assert client.get(url.replace(token, "0" * 32)).status_code == 404
    assert client.get(url.replace("d1-abc", "d1-other")).status_code == 404  # per call
    assert client.get(f"/media/d1-abc/{token}/../outside.wav").status_code == 404


def test_no_web_secret_serves_nothing(db: Database, tmp_path: Path) -> None:
    client, cache = _client(db, tmp_path, secret="")
    url = media_url("", "", "d1-abc", cache, str(cache / "ru" / "ab" / "abcdef"))
    assert client.get(url).status_code == 404


def test_every_file_of_a_call_is_named_by_url_and_asterisk_sounds_are_kept(tmp_path: Path) -> None:
    cache = tmp_path / "audio"
    mine = str(cache / "ru" / "ab" / "abcdef")
    audio = CallAudio(language="ru", phrases={"greet": mine, "beep": "beep"}, readbacks={}, reason_replies={"x": mine},
                      reasons=[])
    urls = audio_by_url(audio, base="http://r", secret=SECRET, call_id="c1", cache_root=cache)
    assert urls.phrases["greet"].startswith("http://r/media/c1/") and urls.reason_replies["x"] == urls.phrases["greet"]
    assert urls.phrases["beep"] == "beep"
