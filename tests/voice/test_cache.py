"""The audio cache: real espeak-ng audio, synthesised once, written atomically."""

from __future__ import annotations

import os
import stat
import time
from datetime import timedelta
from pathlib import Path

import pytest

from ivr.voice.audio import AudioError, wav_info
from ivr.voice.cache import AudioCache
from tests.voice.helpers import CountingEngine, write_tone_wav

PHRASE = "Здравствуйте! Это автоматический звонок компании «Пример»."


def test_rendered_phrase_is_asterisk_ready_audio(audio_dir: Path, engine: CountingEngine) -> None:
    cache = AudioCache(audio_dir, engine)
    path = cache.path_for(PHRASE, "ru")
    info = wav_info(path)
    assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)
    assert info.duration_s > 0.5
    assert info.rms_dbfs > -35  # speech, not silence
    assert path.suffix == ".wav" and path.is_relative_to(audio_dir / "ru")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # Asterisk reads through the group
    assert not list(path.parent.glob(".*.tmp"))


def test_cache_hit_does_not_synthesise_again(audio_dir: Path, engine: CountingEngine) -> None:
    cache = AudioCache(audio_dir, engine)
    text = "Повторяю ещё раз для проверки кэша."
    first = cache.path_for(text, "ru")
    assert cache.has(text, "ru")
    second = AudioCache(audio_dir, engine).path_for(text, "ru")  # another process, same directory
    assert first == second
    assert engine.calls.count((text, "ru")) <= 1
    calls = len(engine.calls)
    cache.path_for(text, "ru")
    assert len(engine.calls) == calls


def test_key_depends_on_text_language_and_voice_settings(audio_dir: Path, engine: CountingEngine) -> None:
    cache = AudioCache(audio_dir, engine)
    assert cache.key("Привет", "ru") != cache.key("Привет!", "ru")
    assert cache.key("Привет", "ru") != cache.key("Привет", "uk")
    slower = CountingEngine()
    slower.options = "-s120 -p50"
    assert AudioCache(audio_dir, slower).key("Привет", "ru") != cache.key("Привет", "ru")
    assert not cache.has("Такой фразы ещё никто не произносил 12345.", "ru")


def test_asterisk_name_is_absolute_without_extension(audio_dir: Path, engine: CountingEngine) -> None:
    path = AudioCache(audio_dir, engine).path_for(PHRASE, "ru")
    name = AudioCache.asterisk_name(path)
    assert os.path.isabs(name) and not name.endswith(".wav")
    assert Path(name + ".wav").is_file()


def test_empty_text_is_a_short_silence_without_the_engine(tmp_path: Path, engine: CountingEngine) -> None:
    path = AudioCache(tmp_path, engine).path_for("   ", "ru")
    assert wav_info(path).rate == 8000 and wav_info(path).duration_s == pytest.approx(0.2, abs=0.01)
    assert engine.calls == []


def test_admin_recording_is_converted_to_8k_mono(tmp_path: Path, engine: CountingEngine) -> None:
    src = write_tone_wav(tmp_path / "studio.wav", 440, 44100, 1.0, channels=2)
    cache = AudioCache(tmp_path / "cache", engine)
    out = cache.use_recording(src)
    info = wav_info(out)
    assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)
    assert info.duration_s == pytest.approx(1.0, abs=0.1)
    assert out.parent == tmp_path / "cache" / "recordings"
    assert cache.use_recording(src) == out  # keyed by content
    write_tone_wav(src, 660, 44100, 1.0, channels=2)  # the admin uploads a new take
    assert cache.use_recording(src) != out
    assert engine.calls == []


def test_unusable_recording_is_reported(tmp_path: Path, engine: CountingEngine) -> None:
    cache = AudioCache(tmp_path, engine)
    with pytest.raises(AudioError, match="cannot read recording"):
        cache.use_recording(tmp_path / "nope.wav")
    silent = write_tone_wav(tmp_path / "silent.wav", 440, 8000, 1.0, amplitude=0.0)
    with pytest.raises(AudioError, match="silent"):
        cache.use_recording(silent)


def test_prune_removes_only_unused_files(tmp_path: Path, engine: CountingEngine) -> None:
    cache = AudioCache(tmp_path, engine)
    old = cache.path_for("", "ru")
    fresh = cache.path_for(" ", "uk")
    long_ago = time.time() - 40 * 86400
    os.utime(old, (long_ago, long_ago))
    assert cache.prune(timedelta(days=30)) == 1
    assert not old.exists() and fresh.exists()


def test_cache_is_not_world_readable(tmp_path: Path, engine: CountingEngine) -> None:
    """The audio says names and debts: every directory the cache creates is 0750 and every file
    0640, whatever the umask lets through (the default umask 022 would give 0755/0644)."""
    old = os.umask(0o022)
    try:
        root = tmp_path / "var" / "audio"
        cache = AudioCache(root, engine)
        spoken = cache.path_for("", "ru")  # a blank phrase: silence, no synthesis needed
        recorded = cache.use_recording(write_tone_wav(tmp_path / "studio.wav", 440, 16000, 0.3))
    finally:
        os.umask(old)
    for directory in (root, root / "ru", spoken.parent, recorded.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o750, directory
    for file in (spoken, recorded):
        assert stat.S_IMODE(file.stat().st_mode) == 0o640, file
