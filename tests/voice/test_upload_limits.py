"""Uploaded recordings are checked from the header before anything is decoded: an absurd sample
rate (a 1 Hz WAV expands 16,000-fold at 8 kHz) or a length beyond a phrase is refused with a
message that says what is wrong."""

from __future__ import annotations

import io
import struct
import wave

import pytest

from ivr.voice.audio import (
    MAX_RECORDING_SECONDS,
    AudioError,
    check_recording,
    load_wav,
    prepare_for_asterisk,
    read_wav_header,
)


def wav_bytes(rate: int, frames: int, *, channels: int = 1, width: int = 2, value: int = 3000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        sample = struct.pack("<h", value) if width == 2 else bytes([128 + 40] * width)
        w.writeframes(sample * channels * frames)
    return out.getvalue()


def test_one_hertz_wav_is_refused_before_conversion() -> None:
    data = wav_bytes(1, 20_000)  # 40 KB that would become 320 MB at 8 kHz
    header = read_wav_header(data)
    assert (header.rate, header.frames) == (1, 20_000) and header.telephony_bytes == 320_000_000
    with pytest.raises(AudioError, match="sample rate 1 Hz"):
        check_recording(data, "hello.wav")
    with pytest.raises(AudioError, match="sample rate 1 Hz"):  # every other path refuses it too
        load_wav(data)


@pytest.mark.parametrize("rate", [1, 100, 3999, 384_001, 1_000_000_000])
def test_absurd_rates(rate: int) -> None:
    with pytest.raises(AudioError, match=f"sample rate {rate} Hz"):
        check_recording(wav_bytes(rate, 10), "x.wav")


def test_too_long_recording_is_refused() -> None:
    data = wav_bytes(4000, int(4000 * (MAX_RECORDING_SECONDS + 1)), width=1)
    with pytest.raises(AudioError, match="at most 300 s"):
        check_recording(data, "speech.wav")
    assert check_recording(data, "speech.wav", max_seconds=MAX_RECORDING_SECONDS + 2).duration_s > MAX_RECORDING_SECONDS


def test_header_lies_and_garbage() -> None:
    good = wav_bytes(16000, 8000)
    header = check_recording(good)
    assert (header.rate, header.channels, header.sample_width, header.frames) == (16000, 1, 2, 8000)
    # a data chunk that claims more than the file holds counts what is there
    lying = good[:40] + struct.pack("<I", 0x7FFFFFF0) + good[44:]
    assert check_recording(lying).frames == 8000
    for bad, fragment in ((b"RIFF\0\0\0\0WAVE", "format or data"), (b"not a wav", "not a WAV"),
                          (good[:36], "format or data"), (wav_bytes(16000, 0), "no audio")):
        with pytest.raises(AudioError, match=fragment):
            check_recording(bad)


def test_ordinary_recording_still_converts() -> None:
    import math

    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 44100))) for i in range(22050))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(frames)
    data = out.getvalue()
    check_recording(data)
    assert prepare_for_asterisk(load_wav(data)).frame_rate == 8000
