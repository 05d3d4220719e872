"""One phrase from a voice pack's recorded fragments and the synthetic voice.

A rendered phrase is text ("Ваш долг одна тысяча восемьсот рублей. Оплатите до двадцать пятого
ноября."). The render context knows which parts of it are an amount or a date and which fragments
say them (ivr.prompts.fragments.spans_from_context). plan_phrase() - pure - cuts the text into
parts: each fragment the pack has is played from its recording, everything else (the template's
own words, a fragment the pack lacks) is synthesised. PhraseVoice renders the plan into one WAV
in the audio cache, levelled as a whole to the common speech level.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ivr.prompts.fragments import catalogue_cached
from ivr.voice.audio import TELEPHONY_RATE, AudioSegment, load_wav, normalise_loudness
from ivr.voice.cache import PIPELINE_VERSION, AudioCache
from ivr.voice.pack import VoicePack

log = logging.getLogger(__name__)

RECORDED = "recorded"
SYNTHETIC = "synthetic"
# Silence put between two parts (on top of the edges each part keeps, audio.KEEP_EDGE_MS for
# synthetic parts, pack.FRAGMENT_EDGE_MS for fragments): words run on, a comma breathes, a
# sentence ends.
WORD_GAP_MS = 30
COMMA_GAP_MS = 200
SENTENCE_GAP_MS = 400
_SENTENCE_END = set(".!?…")
_COMMA = set(",;:—–-")

Spans = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Part:
    kind: str  # RECORDED or SYNTHETIC
    text: str  # what it says
    fragment: str | None = None  # the fragment id (RECORDED; SYNTHETIC when a fragment is missing)
    gap_ms: int = 0  # silence before it

    @property
    def recorded(self) -> bool:
        return self.kind == RECORDED


def _gap(punctuation: str) -> int:
    if any(c in _SENTENCE_END for c in punctuation):
        return SENTENCE_GAP_MS
    if any(c in _COMMA for c in punctuation):
        return COMMA_GAP_MS
    return WORD_GAP_MS


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c in "'’ʼ"


def find_spans(text: str, spans: Spans) -> list[tuple[int, int, Sequence[str]]]:
    """Non-overlapping (start, end, fragment ids) of every span text found in `text`, in order.
    Case-insensitive ({{ amount_words | ucfirst }} starts a sentence) and on word boundaries
    ("первое ноября" is not found inside "двадцать первое ноября"); longer spans first."""
    folded = text.lower()
    if len(folded) != len(text):  # a character whose lower case is longer: match case-sensitively
        folded = text
    taken: list[tuple[int, int, Sequence[str]]] = []
    for span_text in sorted(spans, key=len, reverse=True):
        needle = span_text.lower() if folded is not text else span_text
        if not needle or len(needle) != len(span_text):
            continue
        start = folded.find(needle)
        while start != -1:
            end = start + len(needle)
            bounded = (start == 0 or not _is_word_char(folded[start - 1])) and (
                end == len(folded) or not _is_word_char(folded[end]))
            free = all(end <= s or start >= e for s, e, _ids in taken)
            if bounded and free:
                taken.append((start, end, spans[span_text]))
            start = folded.find(needle, start + 1)
    return sorted(taken, key=lambda item: item[0])


def plan_phrase(text: str, language: str, spans: Spans, available: Collection[str]) -> list[Part]:
    """The parts of a phrase: fragments in `available` are RECORDED, the rest SYNTHETIC.

    Consecutive fragments the pack lacks become one synthetic part (the synthetic voice says
    "восемьсот рублей" better in one go than word by word). Punctuation between parts becomes
    silence (SENTENCE_GAP_MS, COMMA_GAP_MS) rather than something to synthesise."""
    words = catalogue_cached(language)
    parts: list[Part] = []
    pending = ""  # punctuation since the last part: decides the next gap
    position = 0

    def add(part: Part) -> None:
        nonlocal pending
        gap = 0 if not parts else _gap(pending)
        parts.append(Part(part.kind, part.text, part.fragment, gap))
        pending = ""

    def add_text(chunk: str) -> None:
        nonlocal pending
        body = chunk.strip()
        lead = 0
        while lead < len(body) and not _is_word_char(body[lead]):
            lead += 1
        pending += body[:lead]
        body = body[lead:].strip()
        if not body:
            return
        add(Part(SYNTHETIC, body))
        tail = len(body)
        while tail > 0 and not _is_word_char(body[tail - 1]):
            tail -= 1
        pending = body[tail:]

    for start, end, ids in find_spans(text, spans):
        add_text(text[position:start])
        missing: list[str] = []
        for fragment in ids:
            if fragment in available:
                if missing:
                    add(Part(SYNTHETIC, " ".join(words[m] for m in missing), missing[0] if len(missing) == 1 else None))
                    missing = []
                add(Part(RECORDED, words[fragment], fragment))
            else:
                missing.append(fragment)
        if missing:
            add(Part(SYNTHETIC, " ".join(words[m] for m in missing), missing[0] if len(missing) == 1 else None))
        position = end
    add_text(text[position:])
    return parts


_SPACE = re.compile(r"\s+")


def plan_with_pack(pack: VoicePack | None, text: str, language: str, spans: Spans | None) -> list[Part]:
    """plan_phrase() against what `pack` can play (all one SYNTHETIC part without a pack,
    without spans, or for a language the pack does not have)."""
    if pack is None or not spans or language not in pack.declared:
        return [Part(SYNTHETIC, text)] if text.strip() else []
    needed = {f for ids in spans.values() for f in ids}
    return plan_phrase(text, language, spans, pack.usable(language, needed))


class PhraseVoice:
    """Phrases as audio files: through the voice pack where it helps, else plain synthesis."""

    def __init__(self, cache: AudioCache, pack: VoicePack | None = None) -> None:
        self.cache = cache
        self.pack = pack

    @property
    def conjunction(self) -> bool:
        return bool(self.pack and self.pack.conjunction)

    def plan(self, text: str, language: str, spans: Spans | None) -> list[Part]:
        """The parts this phrase is said in (see plan_with_pack)."""
        return plan_with_pack(self.pack, text, language, spans)

    def synthetic_texts(self, text: str, language: str, spans: Spans | None) -> list[str]:
        """What the speech engine will be asked for (to synthesise ahead, concurrently)."""
        parts = self.plan(text, language, spans)
        if not any(p.recorded for p in parts):
            return [text]
        if self._composed_path(parts, language).is_file():
            return []  # composed before: its synthetic parts are not needed again
        return [p.text for p in parts if not p.recorded]

    def _composed_path(self, parts: Sequence[Part], language: str) -> Path:
        """Where the composition of these parts is cached: keyed by every part's source (the
        fragment file's content, the synthetic voice's key of the text) and the gaps."""
        assert self.pack is not None
        key_parts = [PIPELINE_VERSION, "composed", language]
        for part in parts:
            source = (self.pack.digest(language, part.fragment) if part.recorded and part.fragment
                      else self.cache.key(part.text, language))
            key_parts.append(f"{part.kind}:{part.gap_ms}:{source}")
        key = hashlib.sha256("\0".join(key_parts).encode("utf-8")).hexdigest()
        return self.cache.root / "composed" / language / key[:2] / f"{key}.wav"

    def path_for(self, text: str, language: str, spans: Spans | None = None) -> Path:
        parts = self.plan(text, language, spans)
        if not any(p.recorded for p in parts):
            # nothing recorded: the whole phrase in one breath of the synthetic voice
            return self.cache.path_for(text, language)
        assert self.pack is not None
        pack = self.pack
        path = self._composed_path(parts, language)
        if path.is_file():
            self.cache.touch(path)
            return path
        audio = AudioSegment.silent(duration=0, frame_rate=TELEPHONY_RATE)
        for part in parts:
            if part.recorded and part.fragment:
                piece = pack.audio(language, part.fragment)
                if piece is None:  # became unusable since planning: cannot happen, but never play a gap
                    piece = load_wav(self.cache.path_for(part.text, language))
            else:
                piece = load_wav(self.cache.path_for(part.text, language))
            if part.gap_ms and len(audio):
                audio += AudioSegment.silent(duration=part.gap_ms, frame_rate=TELEPHONY_RATE)
            audio += piece
        self.cache.save(normalise_loudness(audio), path)
        recorded = sum(1 for p in parts if p.recorded)
        log.info("composed %s phrase: %d recorded fragment(s), %d synthetic part(s)",
                 language, recorded, len(parts) - recorded)
        return path


def describe(parts: Sequence[Part]) -> list[dict[str, str]]:
    """Parts for the admin preview: what each says and whether a person or espeak says it."""
    return [{"kind": p.kind, "text": _SPACE.sub(" ", p.text), "fragment": p.fragment or ""} for p in parts]
