"""Reading billing CSV exports as billing systems really write them.

Encoding: UTF-8 (with or without BOM) or Windows-1251, decided from every line of the file
(ivr.billing.encoding; a file that mixes them is refused with the lines to fix). Delimiter: `;`,
`,`, tab or `|`, sniffed from the header line. Records: a broken one (a stray quote, a field over
128 KB) is reported on its line and the rows after it are read (ivr.billing.records). Values:
amounts with a decimal comma or point and blanks as thousands separators ("1 800,50",
"1800.50", "1\u00a0800,50"); dates DD.MM.YYYY or ISO YYYY-MM-DD (a trailing time is ignored).
Rows come with the line number they start on, so that every error can point at the line an
admin sees in a text editor.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import BinaryIO

from ivr.billing.encoding import CHUNK, scan
from ivr.billing.errors import CsvFileError
from ivr.billing.records import MAX_LINE_CHARS, BrokenRecord, Record, RecordSplitter

__all__ = [
    "BrokenRecord",
    "CsvFileError",
    "CsvSource",
    "Record",
    "open_csv",
    "parse_amount",
    "parse_date",
    "ValueProblem",
]

_DELIMITERS = (";", ",", "\t", "|")
_XLSX_MAGIC = b"PK\x03\x04"
_XLS_MAGIC = b"\xd0\xcf\x11\xe0"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


class ValueProblem(ValueError):
    """A cell value cannot be read; the message is the reason shown to the admin."""


@dataclass
class CsvSource:
    """An opened CSV file: what was detected, and its rows."""

    encoding: str  # "utf-8-sig" | "utf-8" | "cp1251"
    delimiter: str
    sha256: str
    size: int
    header: list[str]
    header_line: int
    _records: RecordSplitter
    _text: io.TextIOWrapper
    _binary: BinaryIO

    @property
    def encoding_label(self) -> str:
        return {"utf-8-sig": "UTF-8 (BOM)", "utf-8": "UTF-8", "cp1251": "Windows-1251"}[self.encoding]

    def position(self) -> int:
        """Approximate bytes consumed so far (for a progress bar)."""
        try:
            return self._binary.tell()
        except (OSError, ValueError):
            return 0

    def rows(self) -> Iterator[Record]:
        """(line the record starts on, its fields, or a BrokenRecord saying why it cannot be read);
        blank lines are skipped. A broken record never ends the iteration: the rows after it follow."""
        return iter(self._records)

    def close(self) -> None:
        try:
            self._text.detach()
        except (ValueError, OSError):
            pass


def _sniff_delimiter(header_line: str) -> str:
    """The candidate delimiter that occurs most often in the header outside quotes."""
    unquoted = re.sub(r'"[^"]*"', "", header_line)
    counts = {d: unquoted.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ";"


def _looks_utf16(first: bytes) -> bool:
    if first.startswith(_UTF16_BOMS):
        return True
    sample = first[:4096]
    # UTF-16 without a byte order mark, mostly ASCII (digits, delimiters): every other byte is NUL
    return len(sample) >= 4 and max(sample[0::2].count(0), sample[1::2].count(0)) * 4 >= len(sample)


def _check_kind(first: bytes) -> None:
    if first.startswith(_XLSX_MAGIC) or first.startswith(_XLS_MAGIC):
        raise CsvFileError("this is an Excel workbook, not CSV: save it as CSV (semicolon-separated) first")
    if _looks_utf16(first):
        raise CsvFileError("the file is UTF-16 text (Excel's \"Unicode text\"): save it as CSV UTF-8 "
                           "or Windows-1251 and import it again")
    if b"\x00" in first:
        raise CsvFileError("the file contains binary data (NUL bytes); is it really a CSV export?")


ENCODINGS = ("utf-8-sig", "utf-8", "cp1251")
DELIMITERS = _DELIMITERS


def open_csv(source: Path | str | BinaryIO, *, detected: tuple[str, str, int] | None = None,
             encoding: str | None = None, delimiter: str | None = None) -> CsvSource:
    """Open a CSV file, detect encoding and delimiter, read the header row.

    `detected` = (encoding, sha256, size) from an earlier open_csv of the same file skips the
    scan (the import's parser process); the size is checked so that a file replaced meanwhile
    is noticed. `encoding` / `delimiter` force what the admin chose in the import wizard's
    preview instead of what detection would pick (a header with more commas than semicolons in
    its names makes the sniffer pick the wrong one)."""
    if encoding is not None and encoding not in ENCODINGS:
        raise ValueError(f"unsupported encoding {encoding!r}")
    if delimiter is not None and delimiter not in _DELIMITERS:
        raise ValueError(f"unsupported delimiter {delimiter!r}")
    if isinstance(source, (str, Path)):
        try:
            fh: BinaryIO = open(source, "rb")  # noqa: SIM115 (closed by CsvSource.close/GC)
        except OSError as exc:
            raise CsvFileError(f"cannot open {source}: {exc.strerror or exc}") from None
    else:
        fh = source
        if not fh.seekable():
            fh = io.BytesIO(fh.read())
    start = fh.tell()
    first = fh.read(CHUNK)
    if not first:
        raise CsvFileError("the file is empty")
    _check_kind(first)  # before the encoding: a workbook or UTF-16 is neither UTF-8 nor Windows-1251
    fh.seek(start)
    if detected is None and encoding is not None:
        sha, size = _digest(fh)  # the admin's encoding: no detection, but the file's identity
        fh.seek(start)
        detected = (encoding, sha, size)
    if detected is None:
        found = scan(fh)
        encoding, sha, size = found.encoding, found.sha256, found.size
    else:
        encoding, sha, size = detected
        if fh.seek(0, io.SEEK_END) - start != size:
            raise CsvFileError("the file changed while it was being imported")
    fh.seek(start)
    text = io.TextIOWrapper(fh, encoding=encoding, newline="", errors="strict")
    # the header decides the delimiter; skip blank lines before it
    header_text = ""
    header_line = 0
    while not header_text.strip():
        header_text = text.readline(MAX_LINE_CHARS)
        header_line += 1
        if not header_text:
            raise CsvFileError("the file has no header row")
    if len(header_text) >= MAX_LINE_CHARS:
        raise CsvFileError(f"the header line is longer than {MAX_LINE_CHARS // 1024} KB: is it really a CSV export?")
    if delimiter is None:
        delimiter = _sniff_delimiter(header_text)
    try:
        header = next(csv.reader([header_text], delimiter=delimiter))
    except csv.Error as exc:
        raise CsvFileError(f"the header line cannot be read: {exc}") from None
    records = RecordSplitter(text, delimiter=delimiter, width=len(header), first_line=header_line + 1)
    return CsvSource(
        encoding=encoding, delimiter=delimiter, sha256=sha, size=size,
        header=[h.strip() for h in header], header_line=header_line,
        _records=records, _text=text, _binary=fh,
    )


def _digest(fh: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := fh.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


# --- values --------------------------------------------------------------------------------

_BLANKS = str.maketrans("", "", " \u00a0\u202f\u2009'\t")
_SIMPLE_AMOUNT = re.compile(r"[-+]?\d+(?:[.,]\d{1,2})?")
_GROUPED = re.compile(r"[-+]?\d{1,3}(?:([.,])\d{3})+(?:(?!\1)[.,]\d{1,2})?")
_MAX_AMOUNT = Decimal("1e12")
_TWO = Decimal("0.01")


# Billing files repeat the same amounts (tariffs) and dates (due dates) over and over: parsed
# values are remembered (both types are immutable), which halves the cost of a big import.
_CACHE_MAX = 50_000
_AMOUNTS: dict[str, Decimal] = {}
_DATES: dict[str, dt.date | None] = {}


def parse_amount(raw: str) -> Decimal:
    """'1 800,50' / '1800.50' / '1\u00a0800,50' / '1,800.50' / '1.800,50' -> Decimal('1800.50').

    A lone comma or point followed by one or two digits is the decimal separator; a separator
    followed by groups of exactly three digits is a thousands separator. More than two decimal
    places is an error (money has kopecks, not fractions of them).
    """
    value = _AMOUNTS.get(raw)
    if value is None:
        value = _parse_amount(raw)
        if len(_AMOUNTS) >= _CACHE_MAX:
            _AMOUNTS.clear()
        _AMOUNTS[raw] = value
    return value


def _parse_amount(raw: str) -> Decimal:
    text = raw.strip().translate(_BLANKS)
    if not text:
        raise ValueProblem("empty")
    if text.endswith(("₽", "р", "р.", "руб", "руб.")):
        text = re.sub(r"(₽|р\.?|руб\.?)$", "", text)
    if _SIMPLE_AMOUNT.fullmatch(text):
        value = Decimal(text.replace(",", "."))
    else:
        m = _GROUPED.fullmatch(text)
        if not m:
            raise ValueProblem("not a number" if not re.search(r"\d", text) else "not an amount")
        group_sep = m.group(1)
        cleaned = text.replace(group_sep, "").replace("," if group_sep == "." else ".", ".")
        try:
            value = Decimal(cleaned)
        except InvalidOperation:
            raise ValueProblem("not an amount") from None
    if abs(value) >= _MAX_AMOUNT:
        raise ValueProblem("too large")
    return value.quantize(_TWO)


def parse_date(raw: str) -> dt.date | None:
    """'25.11.2024' / '2024-11-25' (optionally followed by a time) -> date; '' -> None."""
    try:
        return _DATES[raw]
    except KeyError:
        pass
    value = _parse_date(raw)
    if len(_DATES) >= _CACHE_MAX:
        _DATES.clear()
    _DATES[raw] = value
    return value


def _parse_date(raw: str) -> dt.date | None:
    text = raw.strip()
    if not text:
        return None
    if len(text) > 10 and text[10] in " T":
        text = text[:10]  # "25.11.2024 00:00:00" from billing systems that export datetimes
    try:
        if len(text) == 10 and text[2] == "." and text[5] == ".":
            return dt.date(int(text[6:]), int(text[3:5]), int(text[:2]))
        if len(text) == 10 and text[4] == "-" and text[7] == "-":
            return dt.date(int(text[:4]), int(text[5:7]), int(text[8:]))
        if len(text) == 10 and text[2] == "/" and text[5] == "/":
            return dt.date(int(text[6:]), int(text[3:5]), int(text[:2]))
    except ValueError:
        raise ValueProblem("no such date") from None
    raise ValueProblem("expected DD.MM.YYYY or YYYY-MM-DD")
