"""A whole call over FastAGI through the simulated Asterisk with a voice pack: the debt message and
the read-back of the keyed date are the composed files (recorded amount and date)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from sqlalchemy import select

from ivr.db.models import CallAttempt, Promise
from ivr.sim.scenario import Callee, KeyPress
from tests.call.rig import CallRig, rig_settings
from tests.voice.pack_helpers import write_tone_pack


async def test_a_promise_call_plays_the_pack(db, audio_dir: Path, tmp_path: Path) -> None:
    pack = write_tone_pack(tmp_path / "pack", ("ru",))
    settings = dataclasses.replace(rig_settings(audio_dir, str(db.engine.url)), extra={"IVR_VOICE_PACK": str(pack)})
    async with CallRig(db, settings) as rig:
        prepared: dict[str, object] = {}
        original = rig.audio.prepare_attempt

        async def keep(attempt_id: int) -> None:  # the rig pops the prepared audio when the call starts
            await original(attempt_id)
            prepared.update({k: v.audio for k, v in rig.audio._ready.items()})

        rig.audio.prepare_attempt = keep  # type: ignore[method-assign]
        attempt_id = await rig.call(Callee(answer_after=1.0, keys=[KeyPress(k, delay=0.6) for k in ("1", "1", "2511", "1")]))
        files = rig.audio_files()
        with db.sessions() as s:
            attempt = s.get(CallAttempt, attempt_id)
            assert attempt is not None
            promise = s.scalar(select(Promise).where(Promise.attempt_id == attempt_id))
            assert promise is not None and promise.promised_date == dt.date(2026, 11, 25)
            record = next(c for c in rig.sim.calls if c.call_id == attempt.action_id)
    composed = str((audio_dir / "composed" / "ru").resolve())
    assert files["debt_message"].startswith(composed)
    streamed = [c for c in record.commands if c.startswith("STREAM FILE")]
    assert any(files["debt_message"] in c for c in streamed)
    # the read-back of 25 November was composed from the pack too, and it was played
    audio = prepared[attempt.action_id]
    readback = audio.readbacks[dt.date(2026, 11, 25)]  # type: ignore[attr-defined]
    assert readback.startswith(composed)
    assert "двадцать пятого ноября" in audio.texts["readback:2026-11-25"]  # type: ignore[attr-defined]
    assert any(readback in c for c in streamed)
