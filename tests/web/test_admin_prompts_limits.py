"""The admin UI answers runaway templates and absurd recordings with a clear error (400), quickly,
and stores nothing."""

from __future__ import annotations

import io
import struct
import wave

from sqlalchemy import select

from ivr.db.models import PromptTemplate
from ivr.wiring import Database

from .conftest import Browser

EDIT = "/admin/prompts/edit"


def _overrides(db: Database) -> list[str]:
    with db.sessions() as s:
        return [r.body for r in s.scalars(select(PromptTemplate))]


def test_runaway_template_is_refused_on_save_and_preview(db: Database, as_admin: Browser) -> None:
    for body, messages in (
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", ["range of 100000 items"]),
        # stopped by the operation budget, or by the 2 s deadline first on a very busy machine
        ("{% for i in range(20000) %}{% for j in range(20000) %}{% endfor %}{% endfor %}",
         ["template does too much work", "template takes too long"]),
        ("{{ ('a'*200*200*200*200)|length }}", ["repetition would build a value over"]),
    ):
        for action in ("save", "preview"):
            response = as_admin.post(EDIT, {"name": "greeting", "lang": "ru", "stage": "", "body": body,
                                            "action": action})
            assert response.status_code == 400, (body, action)
            shown = response.text[response.text.find("template-error"):][:400]
            assert "greeting (ru), строка 1: шаблон делает слишком много работы или строит слишком большое значение" \
                   in shown, shown
            assert any(m in shown for m in messages), shown  # which limit, as the sandbox words it
    assert _overrides(db) == []


def _wav(rate: int, frames: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack("<h", 3000) * frames)
    return out.getvalue()


def test_one_hertz_recording_is_refused(db: Database, as_admin: Browser) -> None:
    data = {"csrf": as_admin.csrf, "name": "greeting", "lang": "ru", "stage": ""}
    for filename, wav, message in (("slow.wav", _wav(1, 50_000), "sample rate 1 Hz"),
                                   ("long.wav", _wav(8000, 8000 * 301), "at most 300 s")):
        response = as_admin.client.post("/admin/prompts/recording", data=data,
                                        files={"file": (filename, wav, "audio/wav")})
        assert response.status_code == 400 and filename in response.text and message in response.text
    assert _overrides(db) == []
