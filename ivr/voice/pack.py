"""Voice packs: a folder of recorded fragments (numbers, scale words, currency nouns, day
ordinals, months, a joining word) that ivr.voice.compose strings together to say amounts and
dates in a human voice; ivr.prompts.fragments decides which fragments an amount or a date needs.

A pack is a directory:

    manifest.toml        what the pack has (below)
    ru/num_1_f.wav ...   one WAV per fragment; any PCM WAV works, 8 kHz mono 16-bit is best

manifest.toml:

    format = 1
    name = "Anna, studio 2026-03"
    conjunction = false          # true: "... рублей и пятьдесят копеек" (needs the "and" fragment)
    [ru]
    num_0 = { file = "ru/num_0.wav", text = "ноль" }
    ...

`text` is what the speaker reads (for the person recording it; the catalogue in
ivr.prompts.fragments is what counts). A fragment that is absent from the manifest, whose file
is missing or unusable, is said by the synthetic voice instead; `ivr voice-pack check DIR` lists
them. The shipped pack (`scripts/make_voice_pack.py`, or IVR_VOICE_PACK=synthetic, generated into
the audio cache directory on first use) is made with espeak-ng from ivr/data/voice_pack/manifest.toml.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ivr.prompts.fragments import PACK_LANGUAGES, catalogue
from ivr.voice.audio import (
    TELEPHONY_RATE,
    AudioError,
    AudioSegment,
    is_silent,
    load_wav,
    normalise_loudness,
    read_wav_header,
    to_telephony,
    trim_silence,
    write_wav,
)
from ivr.voice.cache import SYNTHETIC_PACK_DIR

log = logging.getLogger(__name__)

MANIFEST = "manifest.toml"
FORMAT = 1
SYNTHETIC = "synthetic"
SYNTHETIC_DIR = SYNTHETIC_PACK_DIR
# A fragment is one or two words: longer is a wrong file (a whole phrase, a forgotten stop).
MAX_FRAGMENT_SECONDS = 4.0
# Silence left at each end of a trimmed fragment: fragments follow each other like words in a
# sentence, so much less than a phrase's 60 ms (audio.KEEP_EDGE_MS).
FRAGMENT_EDGE_MS = 20


class VoicePackError(ValueError):
    """A pack that cannot be read at all (no or broken manifest); the message says how to fix it."""


@dataclass
class VoicePack:
    root: Path
    name: str
    conjunction: bool
    # language -> fragment id -> file named by the manifest (may not exist)
    declared: dict[str, dict[str, Path]]
    # (language, fragment) -> (the file's (mtime, size) when read, value): a re-recorded
    # fragment is read again at its next use, no restart needed
    _audio: dict[tuple[str, str], tuple[object, AudioSegment | None]] = field(default_factory=dict, repr=False)
    _digests: dict[tuple[str, str], tuple[object, str]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def languages(self) -> list[str]:
        return sorted(self.declared)

    def path(self, language: str, fragment: str) -> Path | None:
        path = self.declared.get(language, {}).get(fragment)
        return path if path is not None and path.is_file() else None

    def _stamp(self, language: str, fragment: str) -> tuple[Path | None, object]:
        path = self.declared.get(language, {}).get(fragment)
        if path is None:
            return None, None
        try:
            stat = path.stat()
        except OSError:
            return None, None
        return path, (stat.st_mtime_ns, stat.st_size)

    def audio(self, language: str, fragment: str) -> AudioSegment | None:
        """The fragment ready to play (8 kHz, trimmed, levelled), or None when the pack lacks it
        or its file is unusable (then the synthetic voice says it). Read once per version of
        the file."""
        key = (language, fragment)
        path, stamp = self._stamp(language, fragment)
        with self._lock:
            known = self._audio.get(key)
        if known is not None and known[0] == stamp:
            return known[1]
        audio: AudioSegment | None = None
        if path is not None:
            try:
                audio = prepare_fragment(load_wav(path))
            except AudioError as exc:
                log.warning("voice pack %s: fragment %s (%s) unusable, the synthetic voice says it: %s",
                            self.name, fragment, language, exc)
        with self._lock:
            self._audio[key] = (stamp, audio)
        return audio

    def usable(self, language: str, fragments: Iterable[str]) -> set[str]:
        return {f for f in fragments if self.audio(language, f) is not None}

    def digest(self, language: str, fragment: str) -> str:
        """Content hash of a fragment's file: a re-recorded fragment changes every phrase's key."""
        key = (language, fragment)
        path, stamp = self._stamp(language, fragment)
        with self._lock:
            known = self._digests.get(key)
        if known is not None and known[0] == stamp:
            return known[1]
        value = hashlib.sha256(path.read_bytes()).hexdigest() if path is not None else "missing"
        with self._lock:
            self._digests[key] = (stamp, value)
        return value


def prepare_fragment(segment: AudioSegment) -> AudioSegment:
    """A fragment as it is played: tight edges, 8 kHz mono, the common speech level."""
    if is_silent(segment):
        raise AudioError("the fragment is silent")
    return normalise_loudness(to_telephony(trim_silence(segment, keep_ms=FRAGMENT_EDGE_MS)))


def load_pack(root: Path) -> VoicePack:
    root = Path(root)
    manifest = root / MANIFEST
    try:
        data = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VoicePackError(f"{manifest} not found: a voice pack is a directory with a {MANIFEST} "
                             "(see README, 'Voice packs')") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise VoicePackError(f"{manifest}: {exc}") from None
    if data.get("format", FORMAT) != FORMAT:
        raise VoicePackError(f"{manifest}: format {data.get('format')!r} is not supported (expected {FORMAT})")
    declared: dict[str, dict[str, Path]] = {}
    for language in PACK_LANGUAGES:
        table = data.get(language)
        if table is None:
            continue
        if not isinstance(table, dict):
            raise VoicePackError(f"{manifest}: [{language}] must be a table of fragments")
        entries: dict[str, Path] = {}
        for fragment, entry in table.items():
            file = entry.get("file") if isinstance(entry, dict) else entry
            if not isinstance(file, str) or not file:
                raise VoicePackError(f"{manifest}: {language}.{fragment} needs a file name")
            path = (root / file).resolve()
            if not path.is_relative_to(root.resolve()):
                raise VoicePackError(f"{manifest}: {language}.{fragment}: {file!r} is outside the pack")
            entries[str(fragment)] = path
        declared[language] = entries
    return VoicePack(root=root, name=str(data.get("name") or root.name),
                     conjunction=bool(data.get("conjunction", False)), declared=declared)


# -- checking a pack ---------------------------------------------------------------------------

@dataclass
class PackReport:
    root: Path
    missing: dict[str, list[str]] = field(default_factory=dict)  # language -> fragment ids
    problems: list[str] = field(default_factory=list)  # unusable files (said synthetically)
    warnings: list[str] = field(default_factory=list)  # usable, but not as recommended
    unknown: list[str] = field(default_factory=list)  # manifest entries no amount or date uses
    present: dict[str, int] = field(default_factory=dict)  # language -> usable fragments

    @property
    def complete(self) -> bool:
        return not any(self.missing.values()) and not self.problems


def check_pack(root: Path, languages: Iterable[str] = PACK_LANGUAGES) -> PackReport:
    """Every fragment the catalogue needs, checked: declared, file present, a WAV that is not
    silent nor longer than a fragment can be. Raises VoicePackError without a usable manifest."""
    pack = load_pack(root)
    report = PackReport(root=Path(root))
    for language in languages:
        needed = catalogue(language)
        declared = pack.declared.get(language, {})
        report.unknown += [f"{language}.{f}" for f in sorted(set(declared) - set(needed))]
        missing: list[str] = []
        usable = 0
        for fragment in needed:
            path = declared.get(fragment)
            if path is None or not path.exists():  # not declared, or declared and not recorded yet
                missing.append(fragment)
                continue
            problem, warning = _check_file(path)
            where = f"{language}.{fragment} ({path.relative_to(pack.root.resolve())})"
            if problem:
                report.problems.append(f"{where}: {problem}")
                continue
            if warning:
                report.warnings.append(f"{where}: {warning}")
            usable += 1
        report.missing[language] = missing
        report.present[language] = usable
    return report


def _check_file(path: Path) -> tuple[str, str]:
    """(problem, warning) of one fragment file; empty strings when fine."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "file not found", ""
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}", ""
    try:
        header = read_wav_header(data, path.name)
        if header.duration_s > MAX_FRAGMENT_SECONDS:
            return f"{header.duration_s:.1f} s long; a fragment is one or two words (at most {MAX_FRAGMENT_SECONDS:.0f} s)", ""
        prepare_fragment(load_wav(data))
    except AudioError as exc:
        return str(exc), ""
    if (header.rate, header.channels, header.sample_width) != (TELEPHONY_RATE, 1, 2):
        return "", (f"{header.rate} Hz, {header.channels} channel(s), {header.sample_width * 8}-bit: converted "
                    "on load; record or export 8000 Hz mono 16-bit to hear exactly what callers hear")
    return "", ""


# -- the shipped synthetic pack ------------------------------------------------------------------

def shipped_manifest() -> str:
    return resources.files("ivr.data").joinpath("voice_pack", MANIFEST).read_text(encoding="utf-8")


def manifest_text(name: str, languages: Iterable[str] = PACK_LANGUAGES, conjunction: bool = False) -> str:
    """A manifest listing every fragment of the catalogue (TOML; strings written as JSON, which
    is valid TOML for these characters)."""
    lines = [
        "# Voice pack manifest: fragment id = { file = WAV path inside the pack, text = what to say }.",
        "# Generated from the catalogue in ivr/prompts/fragments.py (scripts/make_voice_pack.py --manifest).",
        "# Record each text as one short take, 8000 Hz mono 16-bit PCM WAV; see README, 'Voice packs'.",
        f"format = {FORMAT}",
        f"name = {json.dumps(name, ensure_ascii=False)}",
        f"conjunction = {'true' if conjunction else 'false'}",
    ]
    for language in languages:
        lines += ["", f"[{language}]"]
        for fragment, text in catalogue(language).items():
            lines.append(f"{fragment} = {{ file = {json.dumps(f'{language}/{fragment}.wav')}, "
                         f"text = {json.dumps(text, ensure_ascii=False)} }}")
    return "\n".join(lines) + "\n"


def make_synthetic_pack(target: Path, engine: Any, languages: Iterable[str] = PACK_LANGUAGES,
                        only: Iterable[str] | None = None) -> VoicePack:
    """Write a pack spoken by `engine` (a TTSEngine) into `target`, every fragment of the shipped
    manifest (or just the ids in `only`). Built in a temporary directory next to `target` and
    renamed into place, so a reader never sees half a pack."""
    target = Path(target)
    languages = list(languages)
    wanted = set(only) if only is not None else None
    manifest = tomllib.loads(shipped_manifest())
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".voice-pack-", dir=target.parent))
    try:
        kept: dict[str, dict[str, Any]] = {}
        for language in languages:
            (work / language).mkdir()
            kept[language] = {}
            for fragment, entry in manifest[language].items():
                if wanted is not None and fragment not in wanted:
                    continue
                audio = prepare_fragment(engine.synthesize(entry["text"], language))
                write_wav(audio, work / entry["file"])
                kept[language][fragment] = entry
        lines = [f"format = {FORMAT}", f"name = {json.dumps('synthetic ' + engine.name)}", "conjunction = false"]
        for language, entries in kept.items():
            lines += ["", f"[{language}]"]
            lines += [f"{fragment} = {{ file = {json.dumps(e['file'])}, text = {json.dumps(e['text'], ensure_ascii=False)} }}"
                      for fragment, e in entries.items()]
        (work / MANIFEST).write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.chmod(work, 0o750)
        if (target / MANIFEST).is_file():  # regenerating: the old pack goes, the new one takes its place
            shutil.rmtree(target)
        os.replace(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("voice pack generated with %s in %s (%s)", engine.name, target,
             ", ".join(f"{lang}: {len(e)} fragments" for lang, e in kept.items()))
    return load_pack(target)


_GENERATE_LOCK = threading.Lock()


def pack_setting(settings: Any) -> str:
    return str((getattr(settings, "extra", None) or {}).get("IVR_VOICE_PACK", "")).strip()


def pack_from_settings(settings: Any, engine: Any | None = None) -> VoicePack | None:
    """The pack IVR_VOICE_PACK names: empty = none (everything synthetic), "synthetic" = the
    shipped espeak-ng pack in <IVR_AUDIO_CACHE_DIR>/voice-pack-synthetic (generated on first use),
    else a directory. A pack that cannot be read is logged and not used: the calls go on in the
    synthetic voice rather than not at all (`ivr voice-pack check` says what is wrong)."""
    value = pack_setting(settings)
    if not value:
        return None
    if value.lower() == SYNTHETIC:
        root = Path(settings.audio_cache_dir) / SYNTHETIC_DIR
        with _GENERATE_LOCK:
            if not (root / MANIFEST).is_file():
                if engine is None:
                    from ivr.voice.tts import get_engine

                    engine = get_engine(settings)
                log.info("generating the synthetic voice pack in %s (first use)", root)
                try:
                    make_synthetic_pack(root, engine)
                except OSError:
                    if not (root / MANIFEST).is_file():
                        raise
                    # another process renamed its pack into place first: use that one
    else:
        root = Path(value)
    try:
        pack = load_pack(root)
    except VoicePackError as exc:
        log.error("IVR_VOICE_PACK=%s not used, amounts and dates stay synthetic: %s", value, exc)
        return None
    log.info("voice pack %r from %s (%s)", pack.name, root,
             ", ".join(f"{lang}: {len(ids)} fragments" for lang, ids in pack.declared.items()))
    return pack
