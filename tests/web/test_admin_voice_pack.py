"""The prompt preview with a voice pack: it marks which words the pack's recordings say and which
the synthetic voice says, and its audio is the composed phrase."""

from __future__ import annotations

import dataclasses
import io
import re
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ivr.config import Settings
from ivr.wiring import Database
from tests.voice.pack_helpers import write_tone_pack

from .conftest import Browser, TestClient, make_account

EDIT = "/admin/prompts/edit"
BODY = "Ваш долг {{ amount_words }}. Оплатите до {{ block_date_words_gen }}."


def _parts(html: str) -> list[tuple[str, str, str]]:
    """(kind, fragment, text) of every marked part of the preview."""
    found = re.findall(r'<span class="voice-part voice-\w+" data-kind="(\w+)"(?: data-fragment="(\w+)")?[^>]*>([^<]*)</span>', html)
    return [(kind, fragment, text) for kind, fragment, text in found]


def _admin(client: TestClient) -> Browser:
    browser = Browser(client)
    assert browser.login("admin").status_code == 303
    return browser


def test_preview_shows_recorded_and_synthetic_parts(make_app: Callable[..., Any], settings: Settings, db: Database,
                                                    users: dict[str, int], tmp_path: Path) -> None:
    pack = write_tone_pack(tmp_path / "pack", ("ru",))
    (pack / "ru" / "num_800.wav").unlink()  # the speaker has not recorded "восемьсот" yet
    app = make_app(settings=dataclasses.replace(settings, extra={"IVR_VOICE_PACK": str(pack)}))
    with TestClient(app, base_url="http://testserver") as client:
        _check_preview(_admin(client), db, settings)


def _check_preview(admin: Browser, db: Database, settings: Settings) -> None:
    with db.sessions.begin() as s:
        make_account(s, "A-77", holder="Сидорова Анна")
    response = admin.post(EDIT, {"name": "debt_soft", "lang": "ru", "body": BODY, "action": "preview", "account": "A-77"})
    assert response.status_code == 200, response.text
    parts = _parts(response.text)
    assert parts[:7] == [
        ("synthetic", "", "Ваш долг"),
        ("recorded", "num_1_f", "одна"), ("recorded", "thousand_one", "тысяча"),
        ("synthetic", "num_800", "восемьсот"),
        ("recorded", "rouble_many", "рублей"), ("recorded", "num_50", "пятьдесят"), ("recorded", "kopeck_many", "копеек"),
    ]
    assert parts[7] == ("synthetic", "", "Оплатите до")
    assert all(kind == "recorded" for kind, _f, _t in parts[8:]) and parts[-1][1].startswith("month_")
    assert "Зелёным — фрагменты, записанные диктором" in response.text
    assert "Голосовой пакет: tones" in response.text

    src = response.text.split('id="preview-audio"')[0].rsplit('src="', 1)[1].split('"')[0]
    audio = admin.get(src)
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(audio.content)) as w:
        assert w.getframerate() == 8000 and w.getnchannels() == 1 and w.getnframes() > 8000
    assert list((settings.audio_cache_dir / "composed" / "ru").rglob("*.wav"))  # the composed phrase was played


def test_without_a_pack_the_preview_has_no_marks(as_admin: Browser) -> None:
    response = as_admin.post(EDIT, {"name": "debt_soft", "lang": "ru", "body": BODY, "action": "preview"})
    assert response.status_code == 200
    assert "одна тысяча восемьсот рублей" in response.text
    assert _parts(response.text) == [] and 'id="preview-parts"' not in response.text
