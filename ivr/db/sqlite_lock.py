"""Take SQLite's write lock for a transaction by polling for it every millisecond.

Why: SQLite's own busy handler (the driver's `timeout`) sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25,
50, 50 ms and then 100 ms between tries. An import writes one batch after another with a gap of
about 10 ms between its transactions, so a writer that has already waited a while sleeps
through the gaps and waits for batch after batch: during a 400,000-row import with 5,000-row
batches (about 110 ms of writing each) the call facts waited up to 1 s, with 2,000-row batches up
to 2.3 s. Polling every millisecond takes the lock in the first gap, so the wait is bounded by
one of the other writer's transactions. A failed try costs a few microseconds.

`begin_immediate` starts the transaction with BEGIN IMMEDIATE: the whole transaction then holds
the write lock from its start, so a transaction that reads before it writes cannot fail half-way
with SQLITE_BUSY_SNAPSHOT either. No-op on other databases.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy.engine import Connection

__all__ = ["POLL_SECONDS", "begin_immediate"]

POLL_SECONDS = 0.001
_BUSY, _LOCKED = 5, 6  # SQLite primary result codes (the low byte of an extended code)


def begin_immediate(conn: Connection, *, poll: float = POLL_SECONDS) -> None:
    """Call first thing inside `conn.begin()`: on SQLite, start the transaction with BEGIN
    IMMEDIATE, retrying every `poll` seconds while another connection holds the write lock, for
    as long as the connection's busy timeout (then SQLite's "database is locked" is raised)."""
    if conn.dialect.name != "sqlite":
        return
    dbapi: Any = conn.connection.dbapi_connection
    if dbapi is None or dbapi.in_transaction:
        return  # a statement already started the transaction
    saved = int(dbapi.execute("PRAGMA busy_timeout").fetchone()[0])
    deadline = time.monotonic() + saved / 1000
    dbapi.execute("PRAGMA busy_timeout = 0")
    try:
        while True:
            try:
                dbapi.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                code = getattr(exc, "sqlite_errorcode", _BUSY) & 0xFF
                if code not in (_BUSY, _LOCKED) or time.monotonic() >= deadline:
                    raise
            time.sleep(poll)
    finally:
        dbapi.execute(f"PRAGMA busy_timeout = {saved}")
