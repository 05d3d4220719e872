"""Deciding a billing file's encoding from the whole file, line by line.

A billing export is UTF-8 (with or without BOM) or Windows-1251. Every line is one of: ASCII
(readable either way), UTF-8 with other characters, or not UTF-8 (read as Windows-1251). The file
is UTF-8 when no line is "not UTF-8", Windows-1251 when no line is "UTF-8 with other characters";
a file with both kinds was glued together from two exports (or edited with the wrong encoding), and
reading it either way would store garbled names that the robot then reads aloud: it is refused,
naming the lines that disagree with the rest. The decision is one streaming pass that also
computes the file's SHA-256; only a refused file is read a second time, to find its line numbers.

Line numbers count line feeds (LF or CRLF line ends, as every billing export writes them).
"""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ivr.billing.errors import CsvFileError

__all__ = ["Scan", "scan"]

CHUNK = 1 << 20
_SHOWN_LINES = 10

# One line of valid UTF-8 that has at least one character outside ASCII (RFC 3629 sequences).
# Each alternative starts with a different byte, so matching a line is linear in its length.
_MB = (rb"(?:[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
       rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
       rb"|\xf4[\x80-\x8f][\x80-\xbf]{2})")
_UTF8_LINE = re.compile(rb"(?m)^[\x00-\x09\x0b-\x7f]*" + _MB + rb"(?:[\x00-\x09\x0b-\x7f]|" + _MB + rb")*$")
_CP1251_HOLE = b"\x98"  # the one byte that is no character in Windows-1251


@dataclass(frozen=True)
class Scan:
    encoding: str  # "utf-8-sig" | "utf-8" | "cp1251"
    sha256: str
    size: int
    first: bytes  # the first chunk


@dataclass
class _Kinds:
    utf8: bool = False  # some line is UTF-8 with characters outside ASCII
    other: bool = False  # some line is not UTF-8
    hole: bool = False  # some line that is not UTF-8 has the byte Windows-1251 lacks

    def add(self, block: bytes) -> None:
        """Classify a block of whole lines."""
        if block.isascii():
            return
        try:
            block.decode("utf-8")
        except UnicodeDecodeError:
            self.other = True
            self.utf8 = self.utf8 or _UTF8_LINE.search(block) is not None
            self.hole = self.hole or _CP1251_HOLE in block
        else:
            self.utf8 = True


def _whole_lines(fh: BinaryIO) -> Iterator[tuple[bytes, bytes]]:
    """(raw chunk, the whole lines completed by it); the last item carries the unended line."""
    carry = b""
    while True:
        chunk = fh.read(CHUNK)
        if not chunk:
            if carry:
                yield b"", carry
            return
        data = carry + chunk if carry else chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) > 16 * CHUNK:  # no line break for 16 MB: classify it as it is
                yield chunk, data
                carry = b""
            else:
                yield chunk, b""
                carry = data
            continue
        yield chunk, data[:cut]
        carry = data[cut:]


def scan(fh: BinaryIO) -> Scan:
    """Read the file once from its current position: its encoding, SHA-256, size, first chunk.
    CsvFileError when no single encoding reads every line (the position is then undefined)."""
    start = fh.tell()
    digest = hashlib.sha256()
    size = 0
    first = b""
    kinds = _Kinds()
    for chunk, lines in _whole_lines(fh):
        if chunk:
            if not first:
                first = chunk
            size += len(chunk)
            digest.update(chunk)
        if lines:
            kinds.add(lines)
    if not kinds.other:
        encoding = "utf-8-sig" if first.startswith(codecs.BOM_UTF8) else "utf-8"
    elif not kinds.utf8 and not kinds.hole:
        encoding = "cp1251"
    else:
        fh.seek(start)
        raise CsvFileError(_refusal(fh, kinds))
    return Scan(encoding, digest.hexdigest(), size, first)


def _refusal(fh: BinaryIO, kinds: _Kinds) -> str:
    """The message for a file no single encoding reads, with the lines to fix (second pass)."""
    utf8: list[int] = []
    other: list[int] = []
    holes: list[int] = []
    counts = {"utf8": 0, "other": 0}
    number = 1
    for _chunk, block in _whole_lines(fh):
        if block.isascii():
            number += block.count(b"\n")
            continue
        for line in block.split(b"\n"):
            if not line.isascii():
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    counts["other"] += 1
                    if len(other) < _SHOWN_LINES:
                        other.append(number)
                    if _CP1251_HOLE in line and len(holes) < _SHOWN_LINES:
                        holes.append(number)
                else:
                    counts["utf8"] += 1
                    if len(utf8) < _SHOWN_LINES:
                        utf8.append(number)
            number += 1
        number -= 1  # the split's last piece is the start of the next block's first line

    def listed(numbers: list[int], count: int) -> str:
        more = f" and {count - len(numbers)} more" if count > len(numbers) else ""
        return ", ".join(str(n) for n in numbers) + more

    if not kinds.utf8:  # Windows-1251 apart from bytes it does not have
        return (f"the file is neither UTF-8 nor Windows-1251 text: line(s) {listed(holes, len(holes))} "
                "have byte 0x98, which is no character in Windows-1251. Save the file as UTF-8 and import it again.")
    if counts["other"] <= counts["utf8"]:
        return (f"the file mixes encodings: line(s) {listed(other, counts['other'])} are not UTF-8 while "
                f"{counts['utf8']} other line(s) are. Nothing was imported, so that no name is stored garbled: "
                "fix those lines (or save the whole file in one encoding) and import it again.")
    return (f"the file mixes encodings: line(s) {listed(utf8, counts['utf8'])} are UTF-8 while "
            f"{counts['other']} other line(s) are Windows-1251. Nothing was imported, so that no name is stored "
            "garbled: fix those lines (or save the whole file in one encoding) and import it again.")
