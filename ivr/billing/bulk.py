"""Bulk statements for the billing import, on SQLite and PostgreSQL.

Statements are built with SQLAlchemy Core, but SQLAlchemy's per-row parameter processing costs
~10 µs a row, most of a million-row import. So:
- SQLite: each statement is compiled once and run through the driver's executemany
  (`Connection.exec_driver_sql`) with values already in the driver's form (`Native`);
- PostgreSQL: new rows are COPYed into a temporary table and moved with one
  INSERT ... SELECT ... ON CONFLICT per batch; the rare updates use Core executemany.
Selects return values in the driver's form too (no result processors), so the importer compares
stored rows with file rows without converting every stored value.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    MetaData,
    Table,
    any_,
    bindparam,
    cast,
    select,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Executable
from sqlalchemy.types import NullType

__all__ = ["Bulk", "Native", "raw"]

# SQLAlchemy's own SQLite DATETIME storage format (so ORM reads what we write).
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"
# For the length of a bulk import on SQLite: a page cache that holds the indexes being filled
# (a new phone number lands on a random page of the number index; with the default 2 MB cache
# every such insert re-reads and re-writes a page), and fewer WAL checkpoints (each one copies
# every page changed since the last, so the random index pages are copied again and again).
# Both settings belong to this connection only; they are restored and the WAL is checkpointed
# at the end, so that no other connection's next commit pays for our checkpoint.
_SQLITE_BULK_PRAGMAS = {"cache_size": -131072, "wal_autocheckpoint": 65536}  # 128 MiB, 256 MiB of WAL
_SQLITE_IN_CHUNK = 5000  # keys per IN (...) list: well below SQLite's 32766 parameters


def _same(value: Any) -> Any:
    return value


class Native:
    """Python values -> the form the driver stores and returns."""

    def __init__(self, dialect_name: str) -> None:
        self.sqlite = dialect_name == "sqlite"
        if self.sqlite:
            iso: dict[dt.date, str] = {}  # few distinct dates per file: one string object each

            def sqlite_date(d: dt.date | None) -> str | None:
                if d is None:
                    return None
                text = iso.get(d)
                if text is None:
                    if len(iso) > 10_000:
                        iso.clear()
                    text = iso[d] = d.isoformat()
                return text

            self.date: Callable[[dt.date | None], Any] = sqlite_date
            self.money: Callable[[Decimal | None], Any] = lambda m: None if m is None else float(m)
            self.stamp: Callable[[dt.datetime | None], Any] = (
                lambda t: None if t is None else t.strftime(_SQLITE_DATETIME)
            )
        else:  # psycopg converts Python values itself
            self.date = _same
            self.money = _same
            self.stamp = _same

    def to_date(self, value: Any) -> dt.date | None:
        if value is None or isinstance(value, dt.date):
            return value
        return dt.date.fromisoformat(str(value)[:10])

    def to_money(self, value: Any) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        return Decimal(str(value)).quantize(Decimal("0.01"))


def raw(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A column selected without SQLAlchemy's result processing (the driver's value)."""
    return type_coerce(column, NullType()).label(column.key or "value")


class Bulk:
    """Runs many-row statements on one connection (inside the caller's transaction)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name
        self.sqlite = self.dialect == "sqlite"
        self.native = Native(self.dialect)
        # keyed by id(stmt); the statement is kept in the value so that the id stays unique
        self._compiled: dict[int, tuple[Executable, str, list[int] | None]] = {}
        self._select_templates: dict[Callable[[Any], Executable], str] = {}
        self._inserts: dict[tuple[Any, ...], Any] = {}
        self._pg_selects: dict[Callable[..., Executable], Executable] = {}
        self._staged: dict[tuple[Any, ...], Table] = {}

    @contextmanager
    def tuned(self) -> Iterator[None]:
        """SQLite connection settings for a bulk load (outside any transaction); no-op elsewhere."""
        if not self.sqlite:
            yield
            return
        dbapi = self.conn.connection.dbapi_connection
        assert dbapi is not None
        saved = {}
        for name, value in _SQLITE_BULK_PRAGMAS.items():
            saved[name] = dbapi.execute(f"PRAGMA {name}").fetchone()[0]
            dbapi.execute(f"PRAGMA {name} = {int(value)}")
        try:
            yield
        finally:
            for name, value in saved.items():
                dbapi.execute(f"PRAGMA {name} = {int(value)}")
            dbapi.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def insert_rows(
        self,
        table: Table,
        names: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        *,
        conflict: Sequence[str] = (),
        update: Sequence[str] = (),
    ) -> None:
        """INSERT many rows (tuples in `names` order). With `conflict` (the unique columns):
        ON CONFLICT DO UPDATE of the `update` columns, or DO NOTHING when none are given.

        SQLite: executemany of one compiled statement. PostgreSQL: COPY into a temporary
        table, then one INSERT ... SELECT (COPY is the fast way in; ON CONFLICT needs INSERT)."""
        if not rows:
            return
        key = (table.name, tuple(names), tuple(conflict), tuple(update))
        stmt = self._inserts.get(key)
        if stmt is None:
            stmt = self._inserts[key] = self._build_insert(table, names, conflict, update)
        if self.sqlite:
            self.execute_many(stmt, names, rows)
            return
        staging = self._staging(table, names)
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(f'COPY "{staging.name}" ({", ".join(names)}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()
        self.conn.execute(stmt)
        self.conn.exec_driver_sql(f'TRUNCATE "{staging.name}"')

    def _staging(self, table: Table, names: Sequence[str]) -> Table:
        """A temporary table (this session only) with `names` columns of `table`, typed alike."""
        key = (table.name, tuple(names))
        name = f"_ivr_bulk_{table.name}_{zlib.crc32(' '.join(names).encode()):08x}"
        staged = self._staged.get(key)
        if staged is None:
            cols = ", ".join(f'"{n}"' for n in names)
            self.conn.exec_driver_sql(f'CREATE TEMPORARY TABLE IF NOT EXISTS "{name}" AS '
                                      f'SELECT {cols} FROM "{table.name}" WITH NO DATA')
            self.conn.exec_driver_sql(f'TRUNCATE "{name}"')
            staged = self._staged[key] = Table(name, MetaData(), *(Column(n, table.c[n].type) for n in names))
        return staged

    def _build_insert(self, table: Table, names: Sequence[str], conflict: Sequence[str],
                      update: Sequence[str]) -> Any:
        ins: Any
        if self.sqlite:
            ins = sqlite.insert(table).values({n: bindparam(n) for n in names})
        else:
            staging = self._staging(table, names)
            ins = postgresql.insert(table).from_select(list(names), select(*(staging.c[n] for n in names)))
        if conflict:
            if update:
                return ins.on_conflict_do_update(index_elements=list(conflict),
                                                 set_={n: ins.excluded[n] for n in update})
            return ins.on_conflict_do_nothing(index_elements=list(conflict))
        return ins

    def execute_many(self, stmt: Executable, names: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Run `stmt` once per row; `names` are the bind parameter names in each tuple's order."""
        if not rows:
            return
        if self.sqlite:
            sql, order = self._compile(stmt, names)
            params = rows if order is None else [tuple(r[i] for i in order) for r in rows]
            self.conn.exec_driver_sql(sql, list(params))
        else:
            self.conn.execute(stmt, [dict(zip(names, r, strict=True)) for r in rows])

    def select_in(self, build: Callable[[Callable[[Any], Any]], Executable], keys: Sequence[Any],
                  chunk: int = 20_000) -> list[Any]:
        """Rows of `build(among)` for all `keys`, where `among(column)` is the condition
        "column is one of the keys" (IN on SQLite, = ANY(array) on PostgreSQL), in chunks.

        `build` must be the same function object on every call (its SQL is cached), and the
        statement must have no other parameters."""
        out: list[Any] = []
        if not keys:
            return out
        if self.sqlite:
            template = self._select_templates.get(build)
            if template is None:
                stmt = build(lambda col: col.in_(bindparam("keys", expanding=True)))
                compiled = stmt.compile(dialect=self.conn.dialect)  # type: ignore[attr-defined]
                if list(compiled.positiontup or ()) != ["keys"]:
                    raise ValueError("select_in statements may only have the 'keys' parameter")
                template = compiled.string
                self._select_templates[build] = template
            # the driver's cursor on the connection's transaction: plain tuples, no Row objects
            cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                for i in range(0, len(keys), _SQLITE_IN_CHUNK):
                    part = tuple(keys[i:i + _SQLITE_IN_CHUNK])
                    cursor.execute(template.replace("__[POSTCOMPILE_keys]", ",".join("?" * len(part))), part)
                    out.extend(cursor.fetchall())
            finally:
                cursor.close()
            return out
        pg_stmt = self._pg_selects.get(build)
        if pg_stmt is None:
            pg_stmt = self._pg_selects[build] = build(
                lambda col: col == any_(cast(bindparam("keys"), postgresql.ARRAY(col.type))))
        for i in range(0, len(keys), chunk):
            out.extend(self.conn.execute(pg_stmt, {"keys": list(keys[i:i + chunk])}).fetchall())
        return out

    def _compile(self, stmt: Executable, names: Sequence[str]) -> tuple[str, list[int] | None]:
        key = id(stmt)
        hit = self._compiled.get(key)
        if hit is None or hit[0] is not stmt:
            compiled = stmt.compile(dialect=self.conn.dialect)  # type: ignore[attr-defined]
            position = list(compiled.positiontup or ())
            if position == list(names):
                order = None
            else:
                missing = set(position) - set(names)
                if missing:
                    raise ValueError(f"no values given for parameters {sorted(missing)}")
                order = [list(names).index(p) for p in position]
            hit = (stmt, compiled.string, order)
            self._compiled[key] = hit
        return hit[1], hit[2]
