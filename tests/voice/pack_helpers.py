"""A voice pack of tones for tests (one frequency per fragment, so a test can tell them apart)."""

from __future__ import annotations

import json
from pathlib import Path

from ivr.prompts import fragments
from ivr.voice.pack import MANIFEST
from tests.voice.helpers import write_tone_wav

FRAGMENT_SECONDS = 0.2


def write_tone_pack(root: Path, languages: tuple[str, ...] = ("ru", "uk"), amplitude: float = 0.3) -> Path:
    """A complete pack: fragment number i is a tone of 300 + 12 i Hz, 0.2 s, 8 kHz mono."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["format = 1", 'name = "tones"', "conjunction = false"]
    for language in languages:
        (root / language).mkdir(exist_ok=True)
        lines += ["", f"[{language}]"]
        for index, (fragment, text) in enumerate(fragments.catalogue(language).items()):
            write_tone_wav(root / language / f"{fragment}.wav", 300 + 12 * index, 8000, FRAGMENT_SECONDS, amplitude=amplitude)
            lines.append(f'{fragment} = {{ file = "{language}/{fragment}.wav", text = {json.dumps(text, ensure_ascii=False)} }}')
    (root / MANIFEST).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
