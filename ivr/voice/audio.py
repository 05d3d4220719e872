"""Audio for Asterisk: any PCM WAV in, 8 kHz mono 16-bit signed little-endian WAV out.

pydub does the container work; the filtering is done with audioop primitives (C loops over
whole buffers), so no numpy or ffmpeg is needed. Down-sampling (espeak-ng speaks at 22 050 Hz,
studio recordings are 44.1/48 kHz) first applies a windowed-sinc low-pass at 3.5 kHz: pydub's
set_frame_rate alone interpolates without an anti-alias filter, which folds the hiss of "с", "ш",
"f" above 4 kHz back into the band as a harsh buzz.
"""

from __future__ import annotations

import io
import math
import warnings
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

with warnings.catch_warnings():
    # audioop is deprecated in 3.11 (pydub needs it anyway); pydub warns about ffmpeg, which
    # we never use: every file we read or write is PCM WAV handled in Python.
    warnings.simplefilter("ignore", DeprecationWarning)
    warnings.simplefilter("ignore", RuntimeWarning)
    import audioop

    from pydub import AudioSegment
    from pydub.exceptions import CouldntDecodeError
    from pydub.silence import detect_leading_silence

__all__ = [
    "AudioError",
    "AudioSegment",
    "WavHeader",
    "check_recording",
    "TELEPHONY_RATE",
    "WavInfo",
    "join",
    "load_wav",
    "lowpass",
    "normalise_loudness",
    "speech_level_dbfs",
    "prepare_for_asterisk",
    "to_telephony",
    "trim_silence",
    "wav_info",
    "write_wav",
]

TELEPHONY_RATE = 8000
# Low-pass before going to 8 kHz: flat to 3.4 kHz (the top of the telephone band), fully
# stopped from 4.6 kHz. Anything above 4.6 kHz would fold below 3.4 kHz (f -> 8000 - f); what
# lies between 4 and 4.6 kHz folds to 3.4-4 kHz, outside the band telephones reproduce, which
# lets the filter be half as long (and the conversion twice as fast) as a brick wall at 4 kHz.
CUTOFF_HZ = 4000.0
TRANSITION_HZ = 1200.0
# Every phrase (synthetic, recorded, or composed from a voice pack's fragments) is brought to this
# ACTIVE SPEECH LEVEL: the power of the 20 ms frames that carry speech (see speech_level_dbfs), so
# pauses inside a phrase do not make it louder or quieter. Why -21 dBFS: the line is G.711, whose
# full scale (0 dBFS) is its overload point, so the level is set by the peaks. Measured on the
# shipped templates and the voice-pack fragments spoken by espeak-ng (8 kHz, after the low-pass),
# peaks stand 14-22 dB above the active level: median 17-20 dB, 90th percentile 19-20.4 dB.
# Target = peak limit (-1 dBFS) - 20 dB: nine phrases in ten reach the level exactly and the
# peakiest few end at most ~1-2 dB quieter (the limiter lowers their gain rather than clipping).
# The former rule (-18 dBFS RMS of the whole phrase) left most phrases to the limiter, so their
# levels spread by several dB; louder would only mean more of that, quieter wastes the codec's
# range for nothing.
TARGET_LEVEL_DBFS = -21.0
TARGET_RMS_DBFS = TARGET_LEVEL_DBFS  # the former name, kept for callers
PEAK_LIMIT_DBFS = -1.0
LEVEL_FRAME_MS = 20
# Frames more than this far below the loudest frame are pauses, not speech (P.56-like gating).
LEVEL_GATE_DB = 35.0
SILENCE_DBFS = -50.0
KEEP_EDGE_MS = 60  # left before and after trimmed speech so the first syllable is not clipped
MIN_SPEECH_DBFS = -45.0  # quieter than this overall is "silent" (a broken file or TTS failure)
# Source rates a real recording has (telephone 8 kHz up to studio 384 kHz). Outside them a file is
# broken or hostile: a 1 Hz WAV expands 16,000-fold on conversion to 8 kHz.
MIN_SOURCE_RATE = 4000
MAX_SOURCE_RATE = 384_000
# An admin's recorded phrase: the longest prompt (the debt message) is well under a minute.
MAX_RECORDING_SECONDS = 300.0


class AudioError(ValueError):
    """Audio that cannot be used; the message says what and how to fix it."""


@dataclass(frozen=True)
class WavInfo:
    rate: int
    channels: int
    sample_width: int  # bytes per sample
    duration_s: float
    rms_dbfs: float


@dataclass(frozen=True)
class WavHeader:
    """What a WAV file's header promises, read without decoding the samples."""

    rate: int
    channels: int
    sample_width: int  # bytes per sample
    frames: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate

    @property
    def telephony_bytes(self) -> int:
        """Size of the samples once converted to 8 kHz mono 16-bit."""
        return int(self.duration_s * TELEPHONY_RATE) * 2


def read_wav_header(data: bytes, name: str = "audio data") -> WavHeader:
    """Walk the RIFF chunks up to ``fmt `` and ``data``; AudioError for anything else."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError(f"{name} is not a WAV file (convert it to PCM WAV, e.g. `sox in.mp3 out.wav`)")
    fmt: tuple[int, int, int] | None = None
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if chunk == b"fmt " and size >= 16 and body + 16 <= len(data):
            channels = int.from_bytes(data[body + 2 : body + 4], "little")
            rate = int.from_bytes(data[body + 4 : body + 8], "little")
            bits = int.from_bytes(data[body + 14 : body + 16], "little")
            fmt = (rate, channels, (bits + 7) // 8)
        elif chunk == b"data":
            if fmt is None:
                break
            rate, channels, width = fmt
            if not (1 <= channels <= 8 and 1 <= width <= 4):
                raise AudioError(f"{name}: unsupported WAV ({channels} channels, {width * 8}-bit); "
                                 "use mono or stereo 16-bit PCM")
            return WavHeader(rate, channels, width, min(size, len(data) - body) // (channels * width))
        pos = body + size + (size & 1)
    raise AudioError(f"{name}: WAV without a format or data chunk")


def check_rate(rate: int, name: str = "audio data") -> None:
    if not MIN_SOURCE_RATE <= rate <= MAX_SOURCE_RATE:
        raise AudioError(f"{name}: sample rate {rate} Hz is not a recording's "
                         f"(expected {MIN_SOURCE_RATE}-{MAX_SOURCE_RATE} Hz, e.g. 8000, 16000, 44100, 48000)")


def check_recording(data: bytes, name: str = "recording", max_seconds: float = MAX_RECORDING_SECONDS) -> WavHeader:
    """Refuse an upload before decoding it: not a WAV, an absurd sample rate, longer than a phrase
    (which also bounds what it converts to)."""
    header = read_wav_header(data, name)
    check_rate(header.rate, name)
    if header.frames == 0:
        raise AudioError(f"{name} contains no audio")
    if header.duration_s > max_seconds:
        raise AudioError(f"{name} is {header.duration_s:.0f} s long; a recorded phrase may be at most "
                         f"{max_seconds:.0f} s")
    return header


def load_wav(source: Path | bytes) -> AudioSegment:
    """Read a PCM WAV file (any rate, channels, 8/16/24/32-bit integer)."""
    name = str(source) if isinstance(source, Path) else "audio data"
    try:
        data = source.read_bytes() if isinstance(source, Path) else source
    except OSError as exc:
        raise AudioError(f"cannot read {name}: {exc.strerror or exc}") from None
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError(f"{name} is not a WAV file (convert it to PCM WAV, e.g. `sox in.mp3 out.wav`)")
    try:
        segment = AudioSegment(data=data)
    except (CouldntDecodeError, ValueError, KeyError, IndexError) as exc:
        raise AudioError(
            f"{name}: unsupported WAV ({exc}); use integer PCM, e.g. `sox in.wav -b 16 -e signed-integer out.wav`"
        ) from None
    if len(segment) == 0:
        raise AudioError(f"{name} contains no audio")
    check_rate(segment.frame_rate, name)  # before any conversion multiplies it
    return segment


def _lowpass_taps(rate: int, cutoff: float) -> list[float]:
    """Hamming-windowed sinc; the length gives a ~TRANSITION_HZ wide transition band."""
    n = min(401, int(3.3 * rate / TRANSITION_HZ) | 1)
    mid = n // 2
    fc = cutoff / rate
    taps = []
    for i in range(n):
        x = i - mid
        sinc = 2 * fc if x == 0 else math.sin(2 * math.pi * fc * x) / (math.pi * x)
        taps.append(sinc * (0.54 - 0.46 * math.cos(2 * math.pi * i / (n - 1))))
    total = sum(taps)
    return [t / total for t in taps]


def _fir(data: bytes, taps: list[float]) -> bytes:
    """Convolve mono 16-bit PCM with symmetric taps using whole-buffer audioop operations.

    Works in 32-bit with two bits of headroom so partial sums never clip (the accumulated
    rounding is far below the 16-bit noise floor). Symmetric taps let each pair of mirrored
    samples share one multiplication."""
    frames = len(data) // 2
    n = len(taps)
    wide = audioop.mul(audioop.lin2lin(data, 2, 4), 4, 0.25)
    pad = b"\0" * (4 * (n // 2))
    padded = memoryview(pad + wide + pad)  # slices of a memoryview are views, not copies

    def window(k: int) -> memoryview:
        return padded[4 * k : 4 * (k + frames)]

    acc = audioop.mul(window(n // 2), 4, taps[n // 2])
    for k in range(n // 2):
        pair = audioop.add(window(k), window(n - 1 - k), 4)  # |pair| <= 2**30: no clipping
        acc = audioop.add(acc, audioop.mul(pair, 4, taps[k]), 4)
    return audioop.lin2lin(audioop.mul(acc, 4, 4.0), 4, 2)


def lowpass(segment: AudioSegment, cutoff_hz: float = CUTOFF_HZ) -> AudioSegment:
    """Low-pass a mono 16-bit segment (steep FIR, unlike pydub's one-pole filter)."""
    if segment.channels != 1 or segment.sample_width != 2:
        raise ValueError("lowpass expects mono 16-bit audio")
    if cutoff_hz >= segment.frame_rate / 2:
        return segment
    data = _fir(segment.raw_data, _lowpass_taps(segment.frame_rate, cutoff_hz))
    return segment._spawn(data)


def _resample(segment: AudioSegment, rate: int) -> AudioSegment:
    converted, _state = audioop.ratecv(segment.raw_data, 2, 1, segment.frame_rate, rate, None)
    return segment._spawn(converted, overrides={"frame_rate": rate})


def to_telephony(segment: AudioSegment) -> AudioSegment:
    """Mono, 16-bit, band-limited (see CUTOFF_HZ) and resampled to 8 kHz."""
    out = segment.set_channels(1).set_sample_width(2)
    # Filter at the source rate, then resample: audioop.ratecv interpolates linearly, which at a
    # non-integer ratio spreads any out-of-band energy over the whole spectrum (measured: a
    # 9 kHz tone resampled 22050 -> 16000 first came out only 11 dB down; filtered first, 61 dB).
    if out.frame_rate > TELEPHONY_RATE:
        out = lowpass(out, CUTOFF_HZ)
    if out.frame_rate != TELEPHONY_RATE:
        out = _resample(out, TELEPHONY_RATE)
    return out


def trim_silence(segment: AudioSegment, threshold_dbfs: float = SILENCE_DBFS, keep_ms: int = KEEP_EDGE_MS) -> AudioSegment:
    """Cut leading and trailing silence, keeping keep_ms at each edge."""
    start = detect_leading_silence(segment, silence_threshold=threshold_dbfs, chunk_size=5)
    end = len(segment) - detect_leading_silence(segment.reverse(), silence_threshold=threshold_dbfs, chunk_size=5)
    if end <= start:  # all silence: leave it to the caller to decide
        return segment
    return segment[max(0, start - keep_ms) : min(len(segment), end + keep_ms)]


def speech_level_dbfs(segment: AudioSegment) -> float:
    """Active speech level: the mean power of the 20 ms frames that are speech (louder than
    SILENCE_DBFS and within LEVEL_GATE_DB of the loudest frame), in dBFS. Unlike the RMS of the
    whole segment it does not drop when a phrase has pauses in it; -inf for silence."""
    mono = segment.set_channels(1) if segment.channels != 1 else segment
    width = mono.sample_width
    step = max(1, int(mono.frame_rate * LEVEL_FRAME_MS / 1000)) * width
    raw = mono.raw_data
    powers = [float(audioop.rms(raw[i : i + step], width)) ** 2 for i in range(0, len(raw), step)]
    powers = [p for p in powers if p > 0]
    if not powers:
        return -math.inf
    full = float(1 << (8 * width - 1)) ** 2
    floor = max(max(powers) * 10 ** (-LEVEL_GATE_DB / 10), full * 10 ** (SILENCE_DBFS / 10))
    active = [p for p in powers if p >= floor] or powers
    return 10 * math.log10(sum(active) / len(active) / full)


def normalise_loudness(segment: AudioSegment, target_dbfs: float = TARGET_LEVEL_DBFS, peak_dbfs: float = PEAK_LIMIT_DBFS) -> AudioSegment:
    """Bring speech to one active speech level (speech_level_dbfs), never letting peaks pass
    peak_dbfs, so TTS phrases, an admin's recordings and voice-pack compositions sound equally
    loud on the line."""
    if segment.rms == 0:
        return segment
    gain = target_dbfs - speech_level_dbfs(segment)
    gain = min(gain, peak_dbfs - segment.max_dBFS)
    return segment.apply_gain(gain)


def is_silent(segment: AudioSegment) -> bool:
    return segment.rms == 0 or segment.dBFS < MIN_SPEECH_DBFS


def prepare_for_asterisk(segment: AudioSegment) -> AudioSegment:
    """Trim, convert to 8 kHz mono 16-bit and normalise. Raises AudioError for silent input."""
    if is_silent(segment):
        raise AudioError("the audio is silent")
    return normalise_loudness(to_telephony(trim_silence(segment)))


def join(segments: Iterable[AudioSegment], pause_ms: int = 300) -> AudioSegment:
    """Concatenate 8 kHz phrases with a pause between them."""
    parts = [to_telephony(s) for s in segments]
    if not parts:
        return AudioSegment.silent(duration=0, frame_rate=TELEPHONY_RATE)
    gap = AudioSegment.silent(duration=pause_ms, frame_rate=TELEPHONY_RATE)
    out = parts[0]
    for part in parts[1:]:
        out = out + gap + part
    return out


def write_wav(segment: AudioSegment, path: Path) -> None:
    with open(path, "wb") as handle:
        segment.export(handle, format="wav")


def wav_info(source: Path | bytes) -> WavInfo:
    """What a WAV file contains (read with the standard wave module, independently of pydub)."""
    raw = source.read_bytes() if isinstance(source, Path) else source
    with wave.open(io.BytesIO(raw), "rb") as wav:
        frames = wav.readframes(wav.getnframes())
        width = wav.getsampwidth()
        rms = audioop.rms(frames, width) if frames else 0
        full_scale = float(1 << (8 * width - 1))
        return WavInfo(
            rate=wav.getframerate(),
            channels=wav.getnchannels(),
            sample_width=width,
            duration_s=wav.getnframes() / wav.getframerate(),
            rms_dbfs=20 * math.log10(rms / full_scale) if rms else -math.inf,
        )
