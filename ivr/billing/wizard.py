"""The import wizard's preview: what the importer would read from a file, before anything is stored.

The preview opens the file exactly as the import will (same reader, same parsers, same
within-file duplicate and future-date checks), with the encoding, delimiter and column mapping
the admin chose, and reports the rows that would be rejected with their line numbers. It never
touches the database: checks that need it (a payment for an unknown account, a payment id
imported before with other values) happen on confirm and show in the import's own report.

The mapping is by the file's column *names* (field -> the names of the file's columns), which is
what is saved for the next file: a billing export keeps its column names, not their order.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.billing.columns import ColumnMap, Resolved, fields_of, normalize_header
from ivr.billing.csvread import BrokenRecord, CsvFileError, CsvSource, open_csv
from ivr.billing.parse import AccountParser, PaymentParser, RowError, broken_record_error

__all__ = [
    "FixedColumns",
    "Preview",
    "build_resolved",
    "is_warning",
    "open_chosen",
    "original_lines",
    "preview_file",
    "reject_unknown_accounts",
    "suggest_mapping",
]

SAMPLE_ROWS = 10
SHOWN_PROBLEMS = 200
# Rows the preview checks: every row of any ordinary export; past this the import itself reports
# the rest (a preview read again on every click must not take minutes).
CHECKED_ROWS = 200_000
MAX_PHONE_COLUMNS = 3
ColumnChoice = dict[str, list[str]]  # field -> the file's column names (phones: in priority order)


def is_warning(error: RowError) -> bool:
    """A problem on a row that is still stored (a bad second phone number)."""
    return "were kept" in error.reason


class FixedColumns(ColumnMap):
    """A column map that is one file's confirmed mapping: resolve() returns it as chosen (the
    importer then uses exactly the columns the admin saw in the preview)."""

    def __init__(self, resolved: Resolved, header: list[str]) -> None:
        super().__init__(ColumnMap.default().fields)
        self._resolved = resolved
        self._header = [normalize_header(h) for h in header]

    def resolve(self, kind: str, header: list[str]) -> Resolved:
        if kind != self._resolved.kind or [normalize_header(h) for h in header] != self._header:
            raise CsvFileError("the file's header is not the one shown in the preview: upload it again")
        return self._resolved


def _position(header: list[str], name: str, taken: set[int]) -> int | None:
    for i, col in enumerate(header):
        if col == name and i not in taken:
            return i
    wanted = normalize_header(name)
    for i, col in enumerate(header):
        if normalize_header(col) == wanted and i not in taken:
            return i
    return None


def build_resolved(kind: str, header: list[str], choice: Mapping[str, list[str]]) -> tuple[Resolved, list[str]]:
    """The Resolved of an explicit choice, and the names of columns chosen for two fields (a
    choice naming a column the header lacks is ignored: the field then has no column)."""
    names, _required = fields_of(kind)
    taken: set[int] = set()
    index: dict[str, int] = {}
    shown: dict[str, str] = {}
    phones: list[int] = []
    twice: list[str] = []
    for name in names:
        for col in choice.get(name, []):
            if not col:
                continue
            pos = _position(header, col, taken)
            if pos is None:
                if _position(header, col, set()) is not None and col not in twice:
                    twice.append(col)
                continue
            taken.add(pos)
            if name == "phones":
                phones.append(pos)
            if name not in index:
                index[name] = pos
                shown[name] = header[pos]
    return Resolved(kind=kind, width=len(header), index=index, phones=tuple(phones), names=shown), twice


def as_choice(resolved: Resolved, header: list[str]) -> ColumnChoice:
    """A Resolved as field -> column names (what the form shows and what is saved)."""
    out: ColumnChoice = {}
    for name, pos in resolved.index.items():
        if name == "phones":
            out[name] = [header[p] for p in resolved.phones]
        else:
            out[name] = [header[pos]]
    return out


def suggest_mapping(kind: str, header: list[str], saved: Mapping[str, Any] | None) -> ColumnChoice:
    """The mapping offered first: the saved one for every field whose saved columns this file
    has, the default column names for the others."""
    cmap = ColumnMap.default()
    if saved:
        usable = {n: [c for c in cols if isinstance(c, str) and _position(header, c, set()) is not None]
                  for n, cols in saved.items() if isinstance(cols, list) and n in cmap.fields[kind]}
        for name, cols in usable.items():
            if cols:
                cmap.fields[kind][name] = tuple(cols)
    return as_choice(cmap.match(kind, header), header)


@dataclass
class Preview:
    kind: str
    encoding: str  # the reader's name: utf-8-sig | utf-8 | cp1251
    encoding_label: str
    delimiter: str
    header: list[str]
    header_line: int
    sample: list[tuple[int, list[str]]]
    choice: ColumnChoice
    resolved: Resolved
    missing: list[str]  # required fields without a column
    twice: list[str]  # columns chosen for two fields
    rows_read: int = 0
    rows_good: int = 0
    rejected: list[RowError] = field(default_factory=list)  # the first SHOWN_PROBLEMS
    rejected_count: int = 0
    warnings: list[RowError] = field(default_factory=list)
    width_mismatch: int = 0  # rows whose number of fields is not the header's
    complete: bool = True  # False: only the first CHECKED_ROWS rows were checked
    # payments: (line, account) of every good row, for the check against the database
    payment_accounts: list[tuple[int, str]] = field(default_factory=list)
    sha256: str = ""
    size: int = 0

    @property
    def ready(self) -> bool:
        """Every required field has a column and none is chosen twice: the import may start."""
        return not self.missing and not self.twice

    @property
    def delimiter_suspect(self) -> bool:
        """The header or most rows do not split into columns with this delimiter."""
        if len(self.header) < 2:
            return True
        return self.rows_read > 0 and self.width_mismatch * 2 >= self.rows_read


def _not_in(encoding: str, exc: UnicodeDecodeError) -> CsvFileError:
    label = {"utf-8-sig": "UTF-8", "utf-8": "UTF-8", "cp1251": "Windows-1251"}.get(encoding, encoding)
    return CsvFileError(f"the file cannot be read as {label} (byte 0x{exc.object[exc.start]:02x}): "
                        "choose the other encoding")


def open_chosen(path: Path | str, encoding: str | None, delimiter: str | None) -> CsvSource:
    """open_csv with the admin's choices; an encoding that cannot read the file is a CsvFileError
    (the admin's mistake, said as such), not a decoding traceback."""
    try:
        return open_csv(path, encoding=encoding, delimiter=delimiter)
    except UnicodeDecodeError as exc:
        raise _not_in(encoding or "", exc) from None


def preview_file(path: Path | str, kind: str, *, settings: Any, today: dt.date,
                 encoding: str | None = None, delimiter: str | None = None,
                 choice: Mapping[str, list[str]] | None = None,
                 saved: Mapping[str, Any] | None = None) -> Preview:
    """Read the whole file as the import would and report it; CsvFileError when it cannot be
    read at all. `choice` is the admin's mapping (None: the saved one, else the defaults)."""
    src = open_chosen(path, encoding, delimiter)
    try:
        header = src.header
        chosen = dict(choice) if choice is not None else suggest_mapping(kind, header, saved)
        resolved, twice = build_resolved(kind, header, chosen)
        _all, required = fields_of(kind)
        preview = Preview(
            kind=kind, encoding=src.encoding, encoding_label=src.encoding_label, delimiter=src.delimiter,
            header=header, header_line=src.header_line, sample=[], choice=as_choice(resolved, header),
            resolved=resolved, missing=[n for n in required if n not in resolved.index], twice=twice,
            sha256=src.sha256, size=src.size,
        )
        try:
            _check_rows(preview, src.rows(), settings=settings, today=today)
        except UnicodeDecodeError as exc:
            raise _not_in(src.encoding, exc) from None
        return preview
    finally:
        src.close()


def _check_rows(preview: Preview, rows: Iterable[tuple[int, list[str] | BrokenRecord]], *, settings: Any,
                today: dt.date) -> None:
    parse: Any = None
    if preview.ready:
        if preview.kind == "accounts":
            parse = AccountParser(preview.resolved, region=settings.default_region,
                                  default_currency=settings.default_currency,
                                  default_language=settings.default_language, years=settings.import_years).parse
        else:
            parse = PaymentParser(preview.resolved, settings.import_years).parse
    latest = today + dt.timedelta(days=1)  # as import_payments: a day of slack for time zones
    first_line: dict[str, int] = {}
    width = len(preview.header)

    def reject(err: RowError) -> None:
        preview.rejected_count += 1
        if len(preview.rejected) < SHOWN_PROBLEMS:
            preview.rejected.append(err)

    for line, fields in rows:
        if preview.rows_read >= CHECKED_ROWS:
            preview.complete = False
            break
        preview.rows_read += 1
        if len(preview.sample) < SAMPLE_ROWS:
            shown = fields if isinstance(fields, list) else [fields.text]
            preview.sample.append((line, list(shown)))
        if isinstance(fields, BrokenRecord):
            reject(broken_record_error(line, fields))
            continue
        if len(fields) != width and not (len(fields) > width and not any(f.strip() for f in fields[width:])):
            preview.width_mismatch += 1
        if parse is None:
            continue
        row, problems = parse(line, list(fields))
        if row is None:
            for err in problems:
                reject(err)
            continue
        key = row.external_id if preview.kind == "accounts" else row.payment_id
        if preview.kind == "payments" and row.paid_on > latest:
            reject(RowError(line, f"bad date '{row.paid_on:%d.%m.%Y}' (in the future)", "paid_on",
                            f"{row.paid_on:%d.%m.%Y}"))
            continue
        first = first_line.setdefault(key, line)
        if first != line:
            what = "duplicate id" if preview.kind == "accounts" else "duplicate payment id"
            reject(RowError(line, f"{what} {key!r} (first on line {first})",
                            "external_id" if preview.kind == "accounts" else "payment_id", key))
            continue
        for err in problems:
            if len(preview.warnings) < SHOWN_PROBLEMS:
                preview.warnings.append(err)
        if preview.kind == "payments":
            preview.payment_accounts.append((line, row.account))
        preview.rows_good += 1


def original_lines(path: Path | str, encoding: str, numbers: Iterable[int]) -> dict[int, str]:
    """The text of the given physical lines of the file (for the rejected-rows download); line
    numbers as the reader counts them (LF, CRLF or CR ends, from 1)."""
    wanted = set(numbers)
    out: dict[int, str] = {}
    if not wanted:
        return out
    last = max(wanted)
    with open(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, newline="", errors="replace")
        for number, line in enumerate(text, start=1):
            if number in wanted:
                out[number] = line.rstrip("\r\n").lstrip("\ufeff")
            if number >= last:
                break
    return out


def reject_unknown_accounts(preview: Preview, known: Callable[[list[str]], set[str]], chunk: int = 1000) -> None:
    """Payments: move the rows whose account the database does not know to the rejected ones
    (`known(ids)` answers which of the ids exist; read-only), as the import would reject them."""
    accounts = sorted({acc for _line, acc in preview.payment_accounts})
    found: set[str] = set()
    for start in range(0, len(accounts), chunk):
        found |= known(accounts[start:start + chunk])
    unknown = [(line, acc) for line, acc in preview.payment_accounts if acc not in found]
    if not unknown:
        return
    preview.rows_good -= len(unknown)
    preview.rejected_count += len(unknown)
    extra = [RowError(line, f"unknown account {acc!r}", "account", acc) for line, acc in unknown]
    preview.rejected = sorted(preview.rejected + extra, key=lambda e: e.line)[:SHOWN_PROBLEMS]
