"""A call prepared with a voice pack: the amount and every date read back come from the pack's
recordings, the template's own words from espeak-ng, and the texts (call log) are unchanged."""

from __future__ import annotations

import shutil
from pathlib import Path

from ivr.config import Settings
from ivr.prompts.render import PromptStore
from ivr.voice.cache import AudioCache
from ivr.voice.prepare import AudioPreparer
from ivr.wiring import Database
from tests.voice.helpers import CountingEngine
from tests.voice.pack_helpers import write_tone_pack
from tests.voice.test_prepare import PROMPTS, make_case, prepare


def test_a_call_says_amount_and_dates_from_the_pack(db: Database, engine: CountingEngine, tmp_path: Path) -> None:
    pack = write_tone_pack(tmp_path / "pack", ("ru",))
    settings = Settings(recordings_dir=tmp_path / "recordings", extra={"IVR_VOICE_PACK": str(pack)})
    cache = AudioCache(tmp_path / "cache", engine)
    preparer = AudioPreparer(PromptStore(PROMPTS, db.sessions), cache, settings)
    assert preparer.voice.pack is not None and preparer.voice.pack.name == "tones"
    with db.sessions.begin() as session:
        account, case = make_case(session, "VP-1", "1800.50")
        audio = prepare(preparer, session, account, case)

    amount = "одна тысяча восемьсот рублей пятьдесят копеек"
    assert amount in audio.texts["debt_firm"]  # what the call log shows is unchanged
    composed = tmp_path / "cache" / "composed" / "ru"
    assert audio.message.startswith(str(composed.resolve()))
    readback = audio.readbacks[max(audio.readbacks)]
    assert readback.startswith(str(composed.resolve()))
    # espeak-ng never said the amount or a date: those words are the pack's
    spoken = " | ".join(text for text, _lang in engine.calls)
    assert "восемьсот рублей" not in spoken and "ноября" not in spoken
    # phrases without an amount or a date are plain synthesis, as before
    assert not audio.get("greeting").startswith(str(composed.resolve()))

    # the pack's files replaced by a broken manifest: the next preparer goes on without it
    shutil.rmtree(pack)
    pack.mkdir()
    (pack / "manifest.toml").write_text("not toml [", encoding="utf-8")
    fallback = AudioPreparer(PromptStore(PROMPTS, db.sessions), cache, settings)
    assert fallback.voice.pack is None
