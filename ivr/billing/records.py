"""Splitting CSV text into records so that one broken record costs one record, not the file.

The csv module alone turns a stray quote into a quoted field that swallows every following line
(until it raises "field larger than field limit" or reaches the end of the file), and raises on a
field over its limit (128 KB): the import stopped there with a traceback. Here the csv reader reads
from a line source that counts lines and can put lines back, and a record is broken when:
- the csv module raises (a field over the limit, ...);
- a quote opened on its first line is not closed within MAX_RECORD_LINES lines, or never;
- it spans several lines but has not the header's number of fields (a quoted field with line
  breaks in it is legitimate; a stray quote that glued rows together is not);
- a physical line is longer than MAX_LINE_CHARS (it is skipped unread, so memory stays bounded)
  or holds a NUL character (binary data, which PostgreSQL cannot store in text).
A broken record is reported on the line it starts on, and the lines after that first line are
read again as records of their own: the good rows after a stray quote are kept.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

__all__ = ["MAX_LINE_CHARS", "MAX_RECORD_LINES", "BrokenRecord", "Record", "RecordSplitter"]

MAX_RECORD_LINES = 100  # a quoted field with line breaks (an address, a note) is a few lines
MAX_LINE_CHARS = 1 << 20
_SHOWN_CHARS = 60


@dataclass(frozen=True)
class BrokenRecord:
    """A record that could not be read; `reason` is what the admin reads, on the record's line."""

    reason: str
    text: str = ""  # the start of the record's first line, to find it by


Record = tuple[int, "list[str] | BrokenRecord"]  # (line the record starts on, fields or why not)


class _TooManyLines(Exception):
    pass


class _UnreadableLine(Exception):
    pass


class _Lines:
    """The csv reader's input: physical lines, numbered, with a put-back queue."""

    def __init__(self, text: TextIO, next_number: int) -> None:
        self._readline = text.readline
        self.next_number = next_number
        self.pending: deque[tuple[int, str | None]] = deque()  # None: an unreadable line
        self.taken: list[tuple[int, str]] = []  # the lines of the record being read
        self.ran_dry = False  # the reader asked for a line after the last one
        self.unreadable: dict[int, str] = {}  # line number -> why (lines that may be read again)
        self.unreadable_at = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if len(self.taken) >= MAX_RECORD_LINES:
            raise _TooManyLines
        if self.pending:
            number, line = self.pending.popleft()
        else:
            number, line = self.next_number, self._readline(MAX_LINE_CHARS)
            if not line:
                self.ran_dry = True
                raise StopIteration
            self.next_number += 1
            if len(line) >= MAX_LINE_CHARS and line[-1] not in "\r\n":
                while (rest := self._readline(MAX_LINE_CHARS)) and rest[-1] not in "\r\n":
                    pass  # skip the rest of the physical line
                self.unreadable[number] = f"line longer than {MAX_LINE_CHARS >> 20} MB"
                line = None
            elif "\x00" in line:
                self.unreadable[number] = "binary data (a NUL character) in the line"
                line = None
        if line is None:
            self.unreadable_at = number
            raise _UnreadableLine
        self.taken.append((number, line))
        return line

    def put_back(self, lines: Sequence[tuple[int, str | None]]) -> None:
        self.pending.extendleft(reversed(lines))


class RecordSplitter:
    """Records of CSV text after its header; see the module doc for what makes one broken."""

    def __init__(self, text: TextIO, *, delimiter: str, width: int, first_line: int) -> None:
        self._lines = _Lines(text, first_line)
        self._reader = csv.reader(self._lines, delimiter=delimiter)
        self._width = width
        self._delimiter = delimiter

    def __iter__(self) -> Iterator[Record]:
        lines = self._lines
        reader = self._reader
        taken = lines.taken
        while True:
            taken.clear()
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                reason = _csv_reason(exc)
            except _TooManyLines:
                reason = (f"a quote opened on this line is not closed within {MAX_RECORD_LINES} lines "
                          "(a stray \" character?); the lines after it were read on their own")
            except _UnreadableLine:
                if not taken:
                    yield lines.unreadable_at, BrokenRecord(lines.unreadable.pop(lines.unreadable_at))
                    continue
                # inside a record that started earlier: that record is broken; the bad line is
                # reported when it is reached again as a record of its own
                lines.put_back([(lines.unreadable_at, None)])
                reason = (f"a quote opened on this line runs into line {lines.unreadable_at}, which cannot be read "
                          "(a stray \" character?); the lines after it were read on their own")
            else:
                if len(taken) == 1 and not lines.ran_dry:  # the common case: one line, one record
                    if fields and (len(fields) > 1 or fields[0].strip()):
                        yield taken[0][0], fields
                    continue
                problem = self._multiline_problem(fields, taken, lines.ran_dry)
                if problem is None:
                    if fields and (len(fields) > 1 or fields[0].strip()):
                        yield taken[0][0], fields
                    continue
                reason = problem
            start, first = taken[0]
            lines.put_back(taken[1:])
            lines.ran_dry = False
            yield start, BrokenRecord(reason, first[:_SHOWN_CHARS].rstrip("\r\n"))

    def _multiline_problem(self, fields: list[str], taken: list[tuple[int, str]], ran_dry: bool) -> str | None:
        """Why a record read over several lines is not a quoted field with line breaks, or None."""
        if ran_dry:  # the reader wanted the line after the last one: it was inside quotes
            return ("a quote opened on this line is never closed (a stray \" character?); "
                    "the lines after it were read on their own")
        glued = (f"a quote opened on this line joins lines {taken[0][0]}-{taken[-1][0]} into one record "
                 "(a stray \" character?); the lines after it were read on their own")
        if not self._fits(fields):
            return glued
        try:  # a legitimate quoted field closes right before a delimiter or the line end
            next(csv.reader(["".join(text for _n, text in taken)], delimiter=self._delimiter, strict=True))
        except csv.Error:
            return glued
        if self._width > 1:
            for _n, text in taken[1:]:
                if self._fits(next(csv.reader([text], delimiter=self._delimiter), [])):
                    return glued  # a line of the "field" is a whole row by itself
        return None

    def _fits(self, fields: list[str]) -> bool:
        n, width = len(fields), self._width
        return n == width or (n > width and not any(f.strip() for f in fields[width:]))


def _csv_reason(exc: csv.Error) -> str:
    text = str(exc)
    if "field limit" in text:
        return f"a field longer than {csv.field_size_limit() // 1024} KB"
    return f"unreadable CSV record ({text})"
