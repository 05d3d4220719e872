"""Test helpers: a call-counting wrapper around the real engine and WAV generators."""

from __future__ import annotations

import array
import math
import struct
import wave
from pathlib import Path

import pytest

from ivr.voice.audio import AudioSegment
from ivr.voice.tts import EspeakEngine


class CountingEngine:
    """The real EspeakEngine, counting synthesize() calls (same name/voice/options, so it shares
    cached files with any other EspeakEngine)."""

    def __init__(self) -> None:
        self.inner = EspeakEngine()
        self.name = self.inner.name
        self.options = self.inner.options
        self.calls: list[tuple[str, str]] = []

    def voice_for(self, language: str) -> str:
        return self.inner.voice_for(language)

    def synthesize(self, text: str, language: str) -> AudioSegment:
        self.calls.append((text, language))
        return self.inner.synthesize(text, language)


def shared_cache_dir(factory: pytest.TempPathFactory) -> Path:
    path = factory.getbasetemp() / "shared-audio-cache"
    path.mkdir(exist_ok=True)
    return path


def tone_pcm(freq: float, rate: int, seconds: float, amplitude: float = 0.5, channels: int = 1, width: int = 2) -> bytes:
    """Interleaved little-endian signed PCM of a sine (8-bit is unsigned, as WAV wants)."""
    frames = int(rate * seconds)
    full = (1 << (8 * width - 1)) - 1
    out = bytearray()
    for i in range(frames):
        value = int(full * amplitude * math.sin(2 * math.pi * freq * i / rate))
        for _ in range(channels):
            if width == 1:
                out += struct.pack("<B", value + 128)
            elif width == 3:
                out += struct.pack("<i", value)[:3]
            else:
                out += struct.pack({2: "<h", 4: "<i"}[width], value)
    return bytes(out)


def write_tone_wav(path: Path, freq: float, rate: int, seconds: float, channels: int = 1, width: int = 2, amplitude: float = 0.5) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(tone_pcm(freq, rate, seconds, amplitude, channels, width))
    return path


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.3) -> AudioSegment:
    samples = array.array("h", (int(32767 * amplitude * math.sin(2 * math.pi * freq * i / rate)) for i in range(int(rate * seconds))))
    return AudioSegment(data=samples.tobytes(), sample_width=2, frame_rate=rate, channels=1)
