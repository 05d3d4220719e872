"""Rendered audio on disk, keyed by what it sounds like, so a phrase is synthesised once and
every later call (on any FastAGI process sharing the directory) just plays the file.

Layout: <root>/<language>/<2 hex>/<sha256>.wav and <root>/recordings/<sha256>.wav, all 8 kHz
mono 16-bit WAV. Writes go to a temp file in the same directory and are renamed into place, so a
concurrent reader sees either no file or the whole file, never half of one.

The files speak subscribers' names and debts, so nothing is world-readable: directories are
created 0750 and files 0640. Asterisk, which usually runs as another user, reads them through the
group: add the asterisk user to the robot's group, or give the cache directory the asterisk group
with the set-group-id bit (`chgrp asterisk DIR && chmod 2750 DIR`): new subdirectories and files
then inherit that group.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from ivr.voice.audio import TELEPHONY_RATE, AudioError, AudioSegment, load_wav, prepare_for_asterisk
from ivr.voice.tts import TTSEngine

log = logging.getLogger(__name__)

# Bump when the audio processing (filter, loudness, trimming) changes: old files are re-rendered.
PIPELINE_VERSION = "2"  # 2: loudness is the active speech level (audio.speech_level_dbfs)
FILE_MODE = 0o640  # owner writes, the group (Asterisk) reads, others nothing
DIR_MODE = 0o750
EMPTY_PHRASE_MS = 200
# The shipped voice pack is generated here (ivr.voice.pack); its fragments are sources, not
# cached phrases, so prune() leaves them alone.
SYNTHETIC_PACK_DIR = "voice-pack-synthetic"


class AudioCache:
    def __init__(self, root: Path, engine: TTSEngine) -> None:
        self.root = Path(root)
        self.engine = engine

    def key(self, text: str, language: str) -> str:
        parts = [
            PIPELINE_VERSION,
            self.engine.name,
            self.engine.voice_for(language),
            str(getattr(self.engine, "options", "")),
            language,
            text,
        ]
        return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()

    def _path(self, text: str, language: str) -> Path:
        key = self.key(text, language)
        return self.root / language / key[:2] / f"{key}.wav"

    def has(self, text: str, language: str) -> bool:
        return self._path(text, language).is_file()

    def path_for(self, text: str, language: str) -> Path:
        """The 8 kHz WAV of this text, synthesised now if it is not cached yet."""
        path = self._path(text, language)
        if path.is_file():
            self._touch(path)
            return path
        started = time.monotonic()
        if text.strip():
            audio = prepare_for_asterisk(self.engine.synthesize(text, language))
        else:  # an admin blanked a phrase: a short silence keeps the call flow intact
            audio = AudioSegment.silent(duration=EMPTY_PHRASE_MS, frame_rate=TELEPHONY_RATE)
        self._write(audio, path)
        log.info(
            "synthesised %s phrase (%d chars, %.1fs of audio) in %.2fs",
            language, len(text), len(audio) / 1000, time.monotonic() - started,
        )
        return path

    def use_recording(self, src: Path) -> Path:
        """An admin's recorded WAV (any rate/channels/PCM width) converted to 8 kHz into the
        cache; keyed by the file's content, so replacing the recording takes effect at once."""
        try:
            data = Path(src).read_bytes()
        except OSError as exc:
            raise AudioError(f"cannot read recording {src}: {exc.strerror or exc}") from None
        key = hashlib.sha256(PIPELINE_VERSION.encode() + b"\0recording\0" + data).hexdigest()
        path = self.root / "recordings" / f"{key}.wav"
        if path.is_file():
            self._touch(path)
            return path
        try:
            audio = prepare_for_asterisk(load_wav(data))
        except AudioError as exc:
            raise AudioError(f"recording {src}: {exc}") from None
        self._write(audio, path)
        log.info("converted recording %s to %s", src, path.name)
        return path

    @staticmethod
    def asterisk_name(path: Path) -> str:
        """What STREAM FILE / Playback want: the absolute path without the extension."""
        return str(Path(path).resolve().with_suffix(""))

    def prune(self, older_than: timedelta, now: float | None = None) -> int:
        """Delete files not used for `older_than` (every hit refreshes a file's mtime), e.g.
        debt messages of amounts nobody owes any more. Returns how many were removed."""
        limit = (time.time() if now is None else now) - older_than.total_seconds()
        removed = 0
        for path in self.root.rglob("*.wav"):
            if path.relative_to(self.root).parts[0] == SYNTHETIC_PACK_DIR:
                continue
            try:
                if path.stat().st_mtime < limit:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # another process pruned it first
                continue
        if removed:
            log.info("pruned %d cached audio files unused for %s", removed, older_than)
        return removed

    def touch(self, path: Path) -> None:
        """Mark a cached file as used (prune() keeps it)."""
        self._touch(path)

    def save(self, audio: AudioSegment, path: Path) -> None:
        """Write audio under the cache root atomically, with the cache's permissions (for
        files keyed elsewhere, e.g. ivr.voice.compose's composed phrases)."""
        self._write(audio, path)

    @staticmethod
    def _touch(path: Path) -> None:
        try:
            os.utime(path)
        except OSError:  # read-only cache: still usable, just never pruned by age
            pass

    def _make_dirs(self, directory: Path) -> None:
        """`directory` and the levels between it and the cache root, each created DIR_MODE
        (mkdir(parents=True) would create the intermediate levels with the default 0755)."""
        missing = []
        current = directory
        while not current.is_dir():
            missing.append(current)
            if current == self.root or current.parent == current:
                break
            current = current.parent
        if missing and missing[-1] == self.root:
            # above the root is the admin's business: created as mkdir -p would
            self.root.parent.mkdir(parents=True, exist_ok=True)
        for level in reversed(missing):
            try:
                level.mkdir(mode=DIR_MODE)
            except FileExistsError:  # another process made it first
                pass

    def _write(self, audio: AudioSegment, path: Path) -> None:
        self._make_dirs(path.parent)
        handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=".", suffix=".tmp", delete=False)
        tmp = Path(handle.name)
        try:
            with handle:
                audio.export(handle, format="wav")
            os.chmod(tmp, FILE_MODE)  # NamedTemporaryFile creates 0600; Asterisk reads via the group
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

