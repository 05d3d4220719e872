"""Conversion to Asterisk's 8 kHz mono 16-bit WAV."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from ivr.voice.audio import (
    TELEPHONY_RATE,
    AudioError,
    AudioSegment,
    join,
    load_wav,
    normalise_loudness,
    prepare_for_asterisk,
    to_telephony,
    trim_silence,
    wav_info,
    write_wav,
)
from tests.voice.helpers import tone, write_tone_wav


@pytest.mark.parametrize(
    ("rate", "channels", "width"),
    [(44100, 2, 2), (48000, 1, 2), (22050, 1, 2), (16000, 2, 3), (11025, 1, 1), (8000, 1, 4), (8000, 1, 2), (6000, 1, 2)],
)
def test_any_pcm_wav_becomes_8k_mono_16bit(tmp_path: Path, rate: int, channels: int, width: int) -> None:
    src = write_tone_wav(tmp_path / "in.wav", 440, rate, 0.5, channels=channels, width=width)
    out = tmp_path / "out.wav"
    write_wav(prepare_for_asterisk(load_wav(src)), out)
    info = wav_info(out)
    assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)
    assert info.duration_s == pytest.approx(0.5, abs=0.13)  # edges trimmed to speech +- 60 ms
    assert info.rms_dbfs > -30


def test_in_band_tone_passes_and_out_of_band_does_not_alias() -> None:
    """Tones above 4.6 kHz cannot be represented at 8 kHz; naive resampling folds them into the
    telephone band (5 kHz -> 3 kHz). They must be filtered out, while speech frequencies pass."""
    for rate in (22050, 44100):
        for freq in (300, 1000, 3000, 3400):
            passed = tone(freq, rate)
            assert to_telephony(passed).dBFS == pytest.approx(passed.dBFS, abs=1.0), (rate, freq)
        for freq in (4700, 5000, 6000, 9000):  # would fold to 3.3, 3, 2 and 1 kHz
            blocked = tone(freq, rate)
            assert to_telephony(blocked).dBFS < blocked.dBFS - 40, (rate, freq)
    naive = tone(5000, 22050).set_frame_rate(TELEPHONY_RATE)  # what pydub alone would do
    assert naive.dBFS > tone(5000, 22050).dBFS - 10  # shows the alias the filter prevents


def test_stereo_is_mixed_not_truncated() -> None:
    left = tone(440, 8000, amplitude=0.4)
    silent = AudioSegment.silent(duration=len(left), frame_rate=8000)
    stereo = AudioSegment.from_mono_audiosegments(left, silent)
    mono = to_telephony(stereo)
    assert mono.channels == 1
    assert mono.dBFS == pytest.approx(left.dBFS - 6, abs=0.5)


def test_trim_keeps_a_margin() -> None:
    speech = tone(440, 8000, seconds=1.0)
    padded = AudioSegment.silent(1000, frame_rate=8000) + speech + AudioSegment.silent(2000, frame_rate=8000)
    trimmed = trim_silence(padded, keep_ms=60)
    assert 1100 <= len(trimmed) <= 1140


def test_loudness_is_levelled_without_clipping() -> None:
    quiet = tone(440, 8000, amplitude=0.01)
    loud = normalise_loudness(quiet)
    assert loud.max_dBFS <= -1.0 + 0.05
    assert loud.dBFS > quiet.dBFS + 20


def test_join_puts_pauses_between_phrases() -> None:
    a = tone(440, 8000, seconds=0.5)
    b = tone(660, 22050, seconds=0.5)
    joined = join([a, b], pause_ms=300)
    assert joined.frame_rate == 8000
    assert len(joined) == pytest.approx(1300, abs=5)


def test_silence_is_refused() -> None:
    with pytest.raises(AudioError, match="silent"):
        prepare_for_asterisk(AudioSegment.silent(1000, frame_rate=8000))


def test_bad_files_get_clear_errors(tmp_path: Path) -> None:
    mp3 = tmp_path / "message.mp3"
    mp3.write_bytes(b"ID3\x03\x00" + b"\x00" * 100)
    with pytest.raises(AudioError, match="not a WAV"):
        load_wav(mp3)
    with pytest.raises(AudioError, match="cannot read"):
        load_wav(tmp_path / "missing.wav")
    # IEEE float WAV (format tag 3), which recorders such as Audacity can produce
    data = struct.pack("<4f", 0.0, 0.5, -0.5, 0.0)
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    float_wav = tmp_path / "float.wav"
    float_wav.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    with pytest.raises(AudioError, match="unsupported WAV.*signed-integer"):
        load_wav(float_wav)
