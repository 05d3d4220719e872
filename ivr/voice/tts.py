"""Text-to-speech behind a small interface, with Debian's espeak-ng as the engine.

Why espeak-ng (checked on Debian 12 with `apt-cache policy festvox-ru festival espeak-ng` and
`apt-cache search festvox`): festival's Russian voice *is* packaged (festvox-ru 0.5+dfsg-6, one
male voice, 242 MB installed) but Debian has no Ukrainian festival voice at all, so festival would
mean two engines and two different-sounding voices. espeak-ng speaks ru, uk and en (en-us) from
one small package, takes tens of milliseconds per phrase, and as a formant synthesiser keeps
its consonants intelligible in the 300-3400 Hz telephone band. A better engine (RHVoice, a
cloud service) or an admin's recordings (PromptTemplate.recording_path) replace it through
TTSEngine without touching the call script.

Settings, chosen by measuring (a 30-word debt message per language, energy split with
ivr.voice.audio's FIR filter), since nobody here can listen:
- speed 150: espeak's default 175 gives ~127 words per minute in Russian; telephone prompts are
  easier to follow 10-15 % slower, and 150 gives ~112 wpm (ru), ~120 (uk), ~154 (en, whose
  words are shorter). tests/voice/test_tts.py::test_speech_rate_suits_the_phone guards it.
- pitch 50 (default): across 40..70 the share of energy below 300 Hz (lost on the phone) moved
  only from 12 % to 11.5 % and above 3.4 kHz from 6 % to 5.5 %, so pitch buys no clarity
  and the default sounds the most natural for this voice.
- amplitude 100 (default): peaks at -0.3..-2 dBFS with no clipped samples; loudness is then
  levelled by ivr.voice.audio.normalise_loudness.
- 2-4 % of espeak's energy is above 4 kHz (sibilants); ivr.voice.audio low-passes it before
  resampling to 8 kHz instead of letting it fold back into the band.
Settings.extra IVR_TTS_SPEED / IVR_TTS_PITCH override speed and pitch.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from typing import Any, Protocol, runtime_checkable

from ivr.voice.audio import AudioError, AudioSegment, load_wav

log = logging.getLogger(__name__)

ESPEAK_SPEED = 150
ESPEAK_PITCH = 50
INSTALL_HINT = "install it with `apt-get install espeak-ng` (scripts/setup.sh does this)"


class TTSError(RuntimeError):
    """Speech could not be synthesised; the message says why and what to do."""


@runtime_checkable
class TTSEngine(Protocol):
    """A speech engine. `name` and voice_for() (and an optional `options` string) identify
    the sound, so the audio cache re-renders when any of them changes."""

    name: str

    def voice_for(self, language: str) -> str: ...

    def synthesize(self, text: str, language: str) -> AudioSegment: ...


class EspeakEngine:
    """espeak-ng through its command line: text on stdin, WAV on stdout."""

    name = "espeak-ng"
    VOICES = {"ru": "ru", "uk": "uk", "en": "en-us"}

    def __init__(self, binary: str = "espeak-ng", speed: int = ESPEAK_SPEED, pitch: int = ESPEAK_PITCH, timeout: float = 60.0) -> None:
        path = shutil.which(binary)
        if path is None:
            raise TTSError(f"the speech engine {binary!r} was not found: {INSTALL_HINT}")
        if not 80 <= speed <= 450:
            raise TTSError(f"espeak-ng speed must be 80..450 words per minute, got {speed}")
        if not 0 <= pitch <= 99:
            raise TTSError(f"espeak-ng pitch must be 0..99, got {pitch}")
        self.binary = path
        self.speed = speed
        self.pitch = pitch
        self.timeout = timeout
        self.options = f"-s{speed} -p{pitch}"

    def voice_for(self, language: str) -> str:
        try:
            return self.VOICES[language]
        except KeyError:
            raise TTSError(f"espeak-ng: no voice configured for language {language!r} (have {', '.join(self.VOICES)})") from None

    def synthesize(self, text: str, language: str) -> AudioSegment:
        voice = self.voice_for(language)
        # Text goes through stdin (never argv), so a phrase starting with "-" is not an option.
        command = [self.binary, "-v", voice, "-s", str(self.speed), "-p", str(self.pitch), "-b", "1", "--stdin", "--stdout"]
        try:
            done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise TTSError(f"espeak-ng took longer than {self.timeout:.0f}s for {len(text)} characters") from None
        except OSError as exc:
            raise TTSError(f"cannot run {self.binary}: {exc}") from None
        if done.returncode != 0:
            raise TTSError(f"espeak-ng failed (exit {done.returncode}): {done.stderr.decode('utf-8', 'replace').strip()}")
        try:
            # espeak streams a WAV whose header sizes are placeholders; pydub reads to the end.
            return load_wav(done.stdout)
        except AudioError as exc:
            raise TTSError(f"espeak-ng produced unusable audio: {exc}") from None


ENGINES = ("espeak-ng",)


def _int_option(extra: Any, key: str, default: int) -> int:
    raw = (extra or {}).get(key, "")
    if not str(raw).strip():
        return default
    try:
        return int(str(raw).strip())
    except ValueError:
        raise TTSError(f"{key}: expected an integer, got {raw!r}") from None


def get_engine(settings: Any) -> TTSEngine:
    """The engine named by IVR_TTS_ENGINE (default espeak-ng); IVR_TTS_SPEED and IVR_TTS_PITCH
    tune espeak-ng. Raises TTSError with the fix when the engine is missing."""
    name = str(getattr(settings, "tts_engine", "espeak-ng") or "espeak-ng").strip().lower()
    if name in ("espeak-ng", "espeak"):
        extra = getattr(settings, "extra", {})
        return EspeakEngine(
            speed=_int_option(extra, "IVR_TTS_SPEED", ESPEAK_SPEED),
            pitch=_int_option(extra, "IVR_TTS_PITCH", ESPEAK_PITCH),
        )
    raise TTSError(f"IVR_TTS_ENGINE: unknown speech engine {name!r} (available: {', '.join(ENGINES)})")
