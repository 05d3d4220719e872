"""How long a sound file plays, as the simulated Asterisk sees it.

A `sound_duration(name)` callable returns seconds, or None when the file does not exist (STREAM
FILE then answers `200 result=-1 endpos=0`). The default looks for `<name>.wav` (and the raw
8 kHz formats Asterisk plays: .sln, .ulaw, .alaw, .gsm), knows the core sounds used in the
recordings, and otherwise assumes `default_seconds` (it never reports a file missing).
"""

from __future__ import annotations

import logging
import wave
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000  # endpos= counts 8 kHz samples

# lengths measured from the recordings (endpos of a full play / 8000)
KNOWN_CORE_SOUNDS = {
    "beep": 3404 / SAMPLE_RATE,
    "hello-world": 11234 / SAMPLE_RATE,
    "tt-monkeys": 129440 / SAMPLE_RATE,
    "ru/hello-world": 8023 / SAMPLE_RATE,
}
_RAW_BYTES_PER_SECOND = {".sln": 16000, ".ulaw": 8000, ".alaw": 8000, ".gsm": 33 * 50}

SoundDuration = Callable[[str], float | None]


def file_duration(name: str) -> float | None:
    """Seconds of `<name>.wav` / `<name>.sln` / ..., or of `name` itself; None if none exists."""
    base = Path(name)
    candidates = [base] if base.suffix.lower() in (".wav", *_RAW_BYTES_PER_SECOND) else []
    candidates += [base.with_name(base.name + ext) for ext in (".wav", *_RAW_BYTES_PER_SECOND)]
    for path in candidates:
        try:
            if not path.is_file():
                continue
            if path.suffix.lower() == ".wav":
                with wave.open(str(path), "rb") as w:
                    return w.getnframes() / float(w.getframerate() or SAMPLE_RATE)
            return path.stat().st_size / _RAW_BYTES_PER_SECOND[path.suffix.lower()]
        except (OSError, wave.Error, EOFError) as exc:
            log.warning("sim: cannot read length of %s: %s", path, exc)
    return None


class SoundLibrary:
    """Asterisk looks a relative name up per channel language first (sounds/<lang>/<name>), so
    for a language other than "en" this asks for "<lang>/<name>" first and falls back to the
    plain name when that is unknown (None)."""

    def __init__(self, sound_duration: SoundDuration | None, default_seconds: float) -> None:
        if default_seconds < 0:
            raise ValueError("default_prompt_seconds must not be negative")
        self._custom = sound_duration
        self._default = default_seconds
        self._cache: dict[str, float | None] = {}

    def duration(self, name: str, language: str = "en") -> float | None:
        if language and language != "en" and not name.startswith("/"):
            localized = self._lookup(f"{language}/{name}", fallback=False)
            if localized is not None:
                return localized
        return self._lookup(name, fallback=True)

    def _lookup(self, name: str, *, fallback: bool) -> float | None:
        if self._custom is not None:
            return self._custom(name)
        key = f"{fallback}:{name}"
        if key not in self._cache:
            found = file_duration(name)
            if found is None:
                found = KNOWN_CORE_SOUNDS.get(name, self._default if fallback else None)
            self._cache[key] = found
        return self._cache[key]
