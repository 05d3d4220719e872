"""Rendering of any report: aligned plain text, CSV and JSON.

Every report dataclass offers `name`, `title` and `tables()`: a list of Table (a key, a title,
columns and rows of plain values). The text and CSV renderers only know tables; the JSON renderer
serialises the report dataclass itself (all fields, recursively), with Decimals as strings (no
float rounding on the way) and dates as ISO text, so an HTTP API can return `to_jsonable(report)`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any, ClassVar, Protocol

from ivr import csvsafe

EMPTY = "-"  # how the text table shows a missing value (a percentage of nothing)


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    numeric: bool = False  # right-aligned in text


@dataclass(frozen=True)
class Table:
    key: str  # machine name: "reasons", "categories", ...
    title: str
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"table {self.key}: row {row!r} does not match {len(self.columns)} columns")

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip((c.key for c in self.columns), row, strict=True)) for row in self.rows]


class Report(Protocol):
    name: ClassVar[str]

    @property
    def title(self) -> str: ...

    def tables(self) -> list[Table]: ...


def cell(value: Any) -> str:
    """One value as text (CSV and table): Decimals as written, dates ISO, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def render_table(report: Report) -> str:
    """Aligned plain text of every table of the report, with the report title on top."""
    out = [report.title, "=" * len(report.title)]
    for table in report.tables():
        out.append("")
        out.append(table.title)
        out.append("-" * len(table.title))
        out.extend(_aligned(table))
    return "\n".join(out) + "\n"


def _aligned(table: Table) -> list[str]:
    texts = [[cell(v) or (EMPTY if c.numeric else "") for c, v in zip(table.columns, row, strict=True)] for row in table.rows]
    widths = [len(c.header) for c in table.columns]
    for row in texts:
        widths = [max(w, len(t)) for w, t in zip(widths, row, strict=True)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if c.numeric else v.ljust(w)
            for c, v, w in zip(table.columns, values, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    lines = [line([c.header for c in table.columns]), line(["-" * w for w in widths])]
    lines.extend(line(row) for row in texts)
    if not table.rows:
        lines.append("(nothing in this period)")
    return lines


def to_csv(report: Report, fh: IO[str], table: str | None = None) -> None:
    """Write the report as CSV. With `table` (a key from report.tables()) only that table is
    written, as one plain header + rows. Without it every table is written as a block: a header
    row, then the rows, each row starting with the table key (column "table") so that a program
    can pick its rows; blocks are separated by an empty line."""
    writer = csvsafe.writer(fh, lineterminator="\n")
    tables = report.tables()
    if table is not None:
        chosen = [t for t in tables if t.key == table]
        if not chosen:
            known = ", ".join(t.key for t in tables)
            raise ValueError(f"report {report.name} has no table {table!r} (tables: {known})")
        writer.writerow([c.key for c in chosen[0].columns])
        writer.writerows([cell(v) for v in row] for row in chosen[0].rows)
        return
    for index, t in enumerate(tables):
        if index:
            writer.writerow([])
        writer.writerow(["table", *(c.key for c in t.columns)])
        writer.writerows([t.key, *(cell(v) for v in row)] for row in t.rows)


def to_jsonable(value: Any) -> Any:
    """Plain JSON types: dataclasses as objects, Decimal as string, dates ISO, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data: dict[str, Any] = {}
        name = getattr(value, "name", None)
        if isinstance(name, str) and not any(f.name == "name" for f in dataclasses.fields(value)):
            data["report"] = name  # the report's ClassVar name
        for f in dataclasses.fields(value):
            data[f.name] = to_jsonable(getattr(value, f.name))
        return data
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value


def to_json(report: Report, indent: int | None = 2) -> str:
    return json.dumps(to_jsonable(report), ensure_ascii=False, indent=indent)
