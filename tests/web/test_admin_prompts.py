"""Prompt templates in the admin UI: validation (refused = not saved), save, preview as text and
audio, recorded WAV upload."""

from __future__ import annotations

import io
import math
import struct
import wave
from urllib.parse import urlencode

from sqlalchemy import select

from ivr.db.models import PromptTemplate
from ivr.wiring import Database

from .conftest import Browser, make_account

EDIT = "/admin/prompts/edit"


def _q(name: str = "greeting", lang: str = "ru", stage: str = "") -> str:
    return EDIT + "?" + urlencode({"name": name, "lang": lang, "stage": stage})


def _overrides(db: Database) -> list[tuple[str, str, str | None, str]]:
    with db.sessions() as s:
        return [(r.name, r.language, r.stage_code, r.body) for r in s.scalars(select(PromptTemplate))]


def test_list_shows_every_template_and_language(as_admin: Browser) -> None:
    page = as_admin.get("/admin/prompts").text
    for name in ("greeting", "identity", "debt_soft", "reason_menu", "closing"):
        assert f"name={name}&amp;lang=ru" in page and f"name={name}&amp;lang=en" in page


def test_editor_shows_file_source_and_variables(as_admin: Browser) -> None:
    page = as_admin.get(_q()).text
    assert "Это автоматический звонок компании {{ company }}" in page
    assert "prompts/ru/greeting.j2" in page
    assert "holder_name" in page and "amount_words" in page


def test_syntax_error_is_refused_and_not_saved(db: Database, as_admin: Browser) -> None:
    response = as_admin.post(EDIT, {"name": "greeting", "lang": "ru", "stage": "",
                                    "body": "Здравствуйте, {{ company ", "action": "save"})
    assert response.status_code == 400
    # in the page's language; Jinja's own (English) words are quoted as the detail
    assert "greeting (ru), строка 1: синтаксическая ошибка (сообщение Jinja: unexpected end of template" in response.text
    assert "Здравствуйте, {{ company " in response.text  # the admin's text is kept in the editor
    assert _overrides(db) == []


def test_unknown_variable_is_refused_with_line(db: Database, as_admin: Browser) -> None:
    body = "Здравствуйте!\nВаш долг {{ amont_words }}."
    response = as_admin.post(EDIT, {"name": "debt_soft", "lang": "ru", "stage": "reminder", "body": body})
    assert response.status_code == 400
    assert "строка 2: неизвестная переменная «amont_words» (может быть, «amount_words»?)" in response.text
    assert _overrides(db) == []


def test_sandbox_violation_is_refused(db: Database, as_admin: Browser) -> None:
    response = as_admin.post(EDIT, {"name": "greeting", "lang": "ru", "body": "{{ company.__class__.__mro__ }}"})
    assert response.status_code == 400
    assert _overrides(db) == []


def test_valid_template_is_saved_per_stage(db: Database, as_admin: Browser) -> None:
    body = "Добрый день! Вас беспокоит {{ company }}."
    response = as_admin.post(EDIT, {"name": "greeting", "lang": "ru", "stage": "firm", "body": body})
    assert response.status_code == 303
    assert response.headers["location"] == _q(stage="firm")
    assert _overrides(db) == [("greeting", "ru", "firm", body)]
    page = as_admin.get(_q(stage="firm")).text
    assert "Шаблон сохранён" in page and "Изменён в интерфейсе: admin" in page
    # saving again updates the same row
    as_admin.post(EDIT, {"name": "greeting", "lang": "ru", "stage": "firm", "body": body + " Спасибо."})
    assert _overrides(db) == [("greeting", "ru", "firm", body + " Спасибо.")]
    # and "back to the file" removes it
    as_admin.post("/admin/prompts/reset", {"name": "greeting", "lang": "ru", "stage": "firm"})
    assert _overrides(db) == []


def test_preview_renders_text_and_audio(as_admin: Browser, db: Database) -> None:
    with db.sessions.begin() as s:
        make_account(s, "A-77", holder="Сидорова Анна")
    body = "{{ holder_name }}, ваш долг {{ amount_words }}."
    response = as_admin.post(EDIT, {"name": "debt_soft", "lang": "ru", "body": body, "action": "preview",
                                    "account": "A-77"})
    assert response.status_code == 200
    text = response.text
    assert "Сидорова Анна, ваш долг одна тысяча восемьсот рублей пятьдесят копеек." in text
    assert _overrides(db) == []  # a preview never saves
    src = text.split('id="preview-audio"')[0].rsplit('src="', 1)[1].split('"')[0]
    audio = as_admin.get(src)
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(audio.content)) as w:
        assert w.getframerate() == 8000 and w.getnframes() > 8000  # about a second of speech at least


def test_preview_with_builtin_sample_and_unknown_account(as_admin: Browser) -> None:
    sample = as_admin.get("/admin/prompts/preview?" + urlencode({"name": "identity", "lang": "ru", "stage": ""}))
    assert sample.status_code == 200 and "Иванов Иван Иванович" in sample.text
    missing = as_admin.post(EDIT, {"name": "greeting", "lang": "ru", "body": "{{ company }}", "action": "preview",
                                   "account": "NOPE"})
    assert missing.status_code == 400 and "NOPE" in missing.text


def _wav(seconds: float = 0.5, rate: int = 16000, silent: bool = False) -> bytes:
    """A 440 Hz tone (a recording the converter accepts), or silence (one it refuses)."""
    frames = bytearray()
    for i in range(int(rate * seconds)):
        value = 0 if silent else int(8000 * math.sin(2 * math.pi * 440 * i / rate))
        frames += struct.pack("<h", value)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return out.getvalue()


def test_recording_upload(db: Database, as_admin: Browser) -> None:
    data = {"csrf": as_admin.csrf, "name": "greeting", "lang": "ru", "stage": ""}
    response = as_admin.client.post("/admin/prompts/recording", data=data,
                                    files={"file": ("hello.wav", _wav(), "audio/wav")}, follow_redirects=False)
    assert response.status_code == 303
    with db.sessions() as s:
        row = s.scalars(select(PromptTemplate)).one()
        assert row.recording_path and row.name == "greeting"
        assert "{{ company }}" in row.body  # the text stays what it was
    audio = as_admin.get("/admin/prompts/recording?" + urlencode({"name": "greeting", "lang": "ru", "stage": ""}))
    assert audio.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(audio.content)) as w:
        assert w.getframerate() == 8000
    bad = as_admin.client.post("/admin/prompts/recording", data=data,
                               files={"file": ("x.wav", b"not a wav at all" * 10, "audio/wav")})
    assert bad.status_code == 400 and "WAV" in bad.text
    silent = as_admin.client.post("/admin/prompts/recording", data=data,
                                  files={"file": ("quiet.wav", _wav(silent=True), "audio/wav")})
    assert silent.status_code == 400 and "quiet.wav" in silent.text and "tmp" not in silent.text.split("quiet.wav")[0][-80:]


def test_unknown_language_or_name(as_admin: Browser) -> None:
    assert as_admin.get(_q(lang="xx")).status_code == 400
    assert as_admin.get(_q(name="../etc")).status_code == 400
