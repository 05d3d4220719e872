"""Recognising mojibake: UTF-8 text that was decoded with a one-byte code page and saved again.

Such text is valid in any encoding, so the reader cannot see it; the row check can, because it
round-trips: encoding it back to the code page gives valid UTF-8 ("РЎРµРјС‘РЅРѕРІ" -> "Семёнов").
"""

from __future__ import annotations

import re

__all__ = ["garbled"]


# UTF-8 decoded as Windows-1251/1252 or Latin-1 ("mojibake"): each multi-byte character became
# a lead-byte character (0xC2-0xF4) followed by continuation-byte characters (0x80-0xBF), so text
# without such a pair cannot be mojibake in that code page (a quick test before the real one).
def _pair(codec: str) -> re.Pattern[str]:
    def chars(low: int, high: int) -> str:
        return re.escape("".join(bytes([b]).decode(codec, errors="ignore") for b in range(low, high + 1)))

    return re.compile(f"[{chars(0xC2, 0xF4)}][{chars(0x80, 0xBF)}]")


_MOJIBAKE_PAIRS = tuple((codec, _pair(codec)) for codec in ("cp1251", "cp1252", "latin-1"))


def garbled(text: str) -> str | None:
    """What `text` should read when it is UTF-8 decoded with a one-byte code page, else None.

    Real names do not round-trip: a Cyrillic word in Windows-1251 is valid UTF-8 only if nearly
    every letter is followed by one of 'ё', 'і', '№', '«' ... (the bytes 0x80-0xBF)."""
    if text.isascii():
        return None
    for codec, pair in _MOJIBAKE_PAIRS:
        if pair.search(text) is None:
            continue
        try:
            fixed = text.encode(codec).decode("utf-8")
        except UnicodeError:
            continue
        if fixed != text:
            return fixed
    return None
