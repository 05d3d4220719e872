"""The dialer prepares a call's audio once and writes its manifest; a call start in another
process (here: the FastAGI side forgets what the dialer kept in memory) reads the manifest and
renders nothing, and a missing or stale manifest falls back to preparing at call start."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import shutil
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ivr.call import manifest
from ivr.call.manifest import ContentVersions, ManifestUnusable, PreparedCall
from ivr.db.models import CallAttempt, CallStep, Outcome, PromptTemplate
from ivr.prompts.render import PromptStore
from ivr.sim.scenario import Callee, KeyPress
from ivr.voice.call_audio import CallAudio
from ivr.voice.prepare import AudioPreparer
from tests.call.rig import CallRig


class _OtherProcess(OrderedDict):  # type: ignore[type-arg]
    """What the dialer kept in memory is not there for the call start (another process)."""

    def pop(self, key: Any, default: Any = None) -> Any:
        return default


class Counts:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.prepares = 0
        self.renders = 0
        prepare, render = AudioPreparer.prepare, PromptStore.render_string

        def counting_prepare(*a: Any, **kw: Any) -> Any:
            self.prepares += 1
            return prepare(*a, **kw)

        def counting_render(*a: Any, **kw: Any) -> Any:
            self.renders += 1
            return render(*a, **kw)

        monkeypatch.setattr(AudioPreparer, "prepare", counting_prepare)
        monkeypatch.setattr(PromptStore, "render_string", counting_render)


def presses(*keys: str) -> Callee:
    return Callee(answer_after=1.0, keys=[KeyPress(k, delay=0.6) for k in keys])


def after_staging(rig: CallRig, counts: Counts, action: Any = None) -> dict[str, int]:
    """Run `action(call_id)` right after the dialer's preparation; returns the counts seen then."""
    staged: dict[str, int] = {}
    original = rig.audio.prepare_attempt

    async def prepare_attempt(attempt_id: int) -> None:
        await original(attempt_id)
        staged.update(prepares=counts.prepares, renders=counts.renders)
        if action is not None:
            with rig.db.sessions() as s:
                call_id = s.get(CallAttempt, attempt_id).action_id
            result = action(call_id)
            if asyncio.iscoroutine(result):
                await result

    rig.audio.prepare_attempt = prepare_attempt  # type: ignore[method-assign]
    return staged


def played(rig: CallRig, attempt_id: int) -> list[str]:
    with rig.db.sessions() as s:
        action_id = s.get(CallAttempt, attempt_id).action_id
    return next(c for c in rig.sim.calls if c.call_id == action_id).commands


def steps(rig: CallRig, attempt_id: int) -> list[tuple[str, str, str]]:
    with rig.db.sessions() as s:
        return [(st.step, st.keys, st.result) for st in s.scalars(
            select(CallStep).where(CallStep.attempt_id == attempt_id).order_by(CallStep.seq))]


def manifests(rig: CallRig) -> list[Path]:
    return sorted(manifest.calls_dir(rig.settings.audio_cache_dir).glob("*/*.json"))


async def test_call_start_reads_the_manifest_and_renders_nothing(rig: CallRig, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = Counts(monkeypatch)
    rig.audio._ready = _OtherProcess()
    staged = after_staging(rig, counts)
    attempt_id = await rig.call(presses("1", "2"))
    assert staged["prepares"] == 1 and staged["renders"] > 20  # the dialer did the work
    assert (counts.prepares, counts.renders) == (staged["prepares"], staged["renders"])  # the call start none
    assert not rig.audio.fallbacks
    commands = played(rig, attempt_id)
    files = rig.audio_files()  # what the dialer prepared
    for phrase in ("greeting", "identity", "debt_message", "menu", "paid_thanks", "closing"):
        assert any(files[phrase] in c for c in commands), phrase
    assert ("identity", "1", "ok") in steps(rig, attempt_id) and ("menu", "2", "ok") in steps(rig, attempt_id)
    with rig.db.sessions() as s:
        assert s.scalar(select(Outcome.kind).where(Outcome.attempt_id == attempt_id)) == "paid_claim"
    with rig.db.sessions() as s:
        call_id = s.get(CallAttempt, attempt_id).action_id
    [path] = [p for p in manifests(rig) if p.stem == call_id]  # the audio directory is shared by the session
    assert path.parent.name == "2026-11-22"  # the call's local date (Moscow)
    assert path.stat().st_mode & 0o777 == manifest.FILE_MODE


async def test_template_edited_after_staging_falls_back_and_speaks_the_new_text(
        rig: CallRig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    counts = Counts(monkeypatch)
    rig.audio._ready = _OtherProcess()

    def edit(_call_id: str) -> None:
        with rig.db.sessions.begin() as s:
            s.add(PromptTemplate(language="ru", name="greeting", stage_code=None,
                                 body="Здравствуйте! Вас беспокоит {{ company }}, новый текст."))

    staged = after_staging(rig, counts, edit)
    caplog.set_level(logging.WARNING, logger="ivr.call.audio_source")
    attempt_id = await rig.call(presses("1", "2"))
    assert counts.prepares == staged["prepares"] + 1  # prepared again at call start
    assert rig.audio.fallbacks == {"stale": 1}
    assert any("changed since the dialer prepared" in r.getMessage() for r in caplog.records)
    old_greeting = rig.audio_files()["greeting"]
    commands = played(rig, attempt_id)
    assert not any(old_greeting in c for c in commands)  # the edited greeting was played instead
    assert commands[1].startswith("STREAM FILE ") and rig.settings.audio_cache_dir.name in commands[1]
    with rig.db.sessions() as s:
        assert s.scalar(select(Outcome.kind).where(Outcome.attempt_id == attempt_id)) == "paid_claim"


async def test_missing_manifest_falls_back_with_the_same_audio_logged_once(
        rig: CallRig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    counts = Counts(monkeypatch)
    rig.audio._ready = _OtherProcess()
    staged = after_staging(rig, counts, lambda _id: shutil.rmtree(manifest.calls_dir(rig.settings.audio_cache_dir)))
    caplog.set_level(logging.DEBUG, logger="ivr.call.audio_source")
    first = await rig.call(presses("1", "2"))
    files = rig.audio_files()
    second = await rig.call(presses("1", "2"))
    assert counts.prepares == staged["prepares"] + 1  # each of the two calls prepared twice
    assert rig.audio.fallbacks == {"missing": 2}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "no audio manifest" in r.getMessage()]
    assert len(warnings) == 1  # logged once, the second at DEBUG
    for phrase in ("greeting", "identity", "menu", "paid_thanks", "closing"):
        assert any(files[phrase] in c for c in played(rig, first)), phrase
        assert any(rig.audio_files()[phrase] in c for c in played(rig, second)), phrase


async def test_purged_audio_falls_back_and_synthesises_again(rig: CallRig, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = Counts(monkeypatch)
    rig.audio._ready = _OtherProcess()

    def purge(call_id: str) -> None:
        [path] = [p for p in manifests(rig) if p.stem == call_id]
        message = json.loads(path.read_bytes())["phrases"]["debt_message"]
        Path(message + ".wav").unlink()

    staged = after_staging(rig, counts, purge)
    attempt_id = await rig.call(presses("1", "2"))
    assert counts.prepares == staged["prepares"] + 1
    assert rig.audio.fallbacks == {"purged": 1}
    message = rig.audio_files()["debt_message"]
    assert Path(message + ".wav").is_file()  # made again by the call-start preparation
    assert any(message in c for c in played(rig, attempt_id))



async def test_a_slow_manifest_read_does_not_stop_the_event_loop(rig: CallRig, monkeypatch: pytest.MonkeyPatch) -> None:
    """A manifest not in the page cache waits for the disk; the other calls must go on meanwhile.
    The read below waits until the event loop has run a callback: on the loop thread it could
    not (it would wait out the 10 s and count as blocked)."""
    rig.audio._ready = _OtherProcess()
    loop = asyncio.get_running_loop()
    seen: list[bool] = []
    real_read = manifest.read

    def slow_read(*args: Any) -> Any:
        loop_ran = threading.Event()
        loop.call_soon_threadsafe(loop_ran.set)
        seen.append(loop_ran.wait(10))
        return real_read(*args)

    monkeypatch.setattr(manifest, "read", slow_read)
    attempt_id = await rig.call(presses("1", "2"))
    assert seen == [True]  # read once, while the loop kept running
    assert not rig.audio.fallbacks  # and the call used what it read
    assert ("menu", "2", "ok") in steps(rig, attempt_id)

# -- the manifest itself ---------------------------------------------------------------------------

def _prepared() -> PreparedCall:
    audio = CallAudio(language="ru", phrases={"greeting": "/c/ru/aa/1", "debt_soft": "/c/ru/bb/2",
                                              "debt_message": "/c/ru/bb/2"},
                      readbacks={dt.date(2026, 11, 22): "/c/ru/cc/3", dt.date(2026, 11, 23): "/c/ru/dd/4"},
                      reason_replies={"illness": "/c/ru/ee/5"},
                      reasons=[("1", "illness", True, "billing"), ("2", "no_money", False, None)],
                      message_name="debt_soft", texts={"greeting": "not stored"})
    return PreparedCall(audio, {"max_menu_tries": 3, "menu_timeout_seconds": 6.5, "opt_out_key": ""},
                        dt.date(2026, 11, 22), dt.date(2026, 11, 23))


def test_manifest_round_trip(tmp_path: Path) -> None:
    prepared = _prepared()
    data = manifest.encode(prepared, call_id="d1-abc", fingerprint="f" * 32)
    assert len(data) < 2000
    manifest.write(tmp_path, "d1-abc", prepared.today, data)
    doc = manifest.read(tmp_path, "d1-abc", prepared.today)
    assert doc is not None and doc["fingerprint"] == "f" * 32
    back = manifest.decode(doc)
    assert manifest.same_audio(back, prepared) and back.audio.texts == {}
    assert manifest.read(tmp_path, "d1-abc", prepared.today + dt.timedelta(days=1)) is None  # another day
    assert manifest.read(tmp_path, "other", prepared.today) is None


def test_unsafe_call_id_is_hashed_into_the_file_name(tmp_path: Path) -> None:
    path = manifest.manifest_path(tmp_path, "../../etc/passwd", dt.date(2026, 11, 22))
    assert path.parent == tmp_path / "calls" / "2026-11-22" and path.name.startswith("h-")


@pytest.mark.parametrize("damage", ["garbage", "format", "field"])
def test_damaged_manifest_is_unusable(tmp_path: Path, damage: str) -> None:
    prepared = _prepared()
    doc = json.loads(manifest.encode(prepared, call_id="d1", fingerprint="x"))
    if damage == "format":
        doc["format"] = manifest.FORMAT + 1
    elif damage == "field":
        del doc["phrases"]["debt_soft"]  # the message it names is gone
    data = b"{not json" if damage == "garbage" else json.dumps(doc).encode()
    manifest.write(tmp_path, "d1", prepared.today, data)
    with pytest.raises(ManifestUnusable):
        found = manifest.read(tmp_path, "d1", prepared.today)
        assert found is not None
        manifest.decode(found)


def test_old_day_directories_are_removed_when_a_new_day_starts(tmp_path: Path) -> None:
    prepared = _prepared()
    data = manifest.encode(prepared, call_id="d1", fingerprint="x")
    for day in (dt.date(2026, 11, 19), dt.date(2026, 11, 20), dt.date(2026, 11, 21)):
        manifest.write(tmp_path, "d1", day, data)
    manifest.write(tmp_path, "d1", dt.date(2026, 11, 22), data)
    for _ in range(600):  # removed by a thread beside the write: wait for it (up to 30 s)
        days = sorted(p.name for p in manifest.calls_dir(tmp_path).iterdir())
        if days == ["2026-11-21", "2026-11-22"]:
            break
        time.sleep(0.05)
    assert days == ["2026-11-21", "2026-11-22"]


async def test_content_version_is_computed_once_per_max_age(rig: CallRig) -> None:
    now = [100.0]
    versions = ContentVersions(rig.db.sessions, rig.settings, max_age=1.0, monotonic=lambda: now[0])
    first = await asyncio.gather(*(versions.current("ru") for _ in range(20)))
    assert len(set(first)) == 1 and versions.computed == 1  # 20 call starts, one computation
    now[0] += 0.5
    assert await versions.current("ru") == first[0] and versions.computed == 1
    with rig.db.sessions.begin() as s:
        s.add(PromptTemplate(language="ru", name="closing", stage_code=None, body="До свидания."))
    now[0] += 0.6  # older than max_age: recomputed in the background, the known value still serves
    assert await versions.current("ru") == first[0]
    for _ in range(600):  # the recomputation runs in a thread: wait for it (up to 30 s), not a fixed time
        if versions.computed == 2 and not versions._pending:
            break
        await asyncio.sleep(0.05)
    changed = await versions.current("ru")
    assert versions.computed == 2 and changed != first[0]
    now[0] += 2.5  # older than twice max_age: a call start waits for the new value
    with rig.db.sessions.begin() as s:
        s.add(PromptTemplate(language="ru", name="greeting", stage_code=None, body="Добрый день."))
    again = await versions.current("ru")
    assert versions.computed == 3 and again not in (changed, first[0])
    assert await versions.current("en") != again and versions.computed == 4  # per language
