"""Take SQLite's write lock for a transaction by polling for it every millisecond.

Why: SQLite's own busy handler (the driver's `timeout`) sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25,
50, 50 ms and then 100 ms between tries. An import writes one batch after another with a gap of
about 10 ms between its transactions, so a writer that has already waited a while sleeps
through the gaps and waits for batch after batch: during a 400,000-row import with 5,000-row
batches (about 110 ms of writing each) the call facts waited up to 1 s, with 2,000-row batches up
to 2.3 s. Polling every millisecond takes the lock in the first gap of a millisecond or more,
so against such a writer the wait is bounded by one of its transactions (against one with no
gaps at all, see the last paragraph). A failed try costs a few microseconds.

`begin_immediate` starts the transaction with BEGIN IMMEDIATE: the whole transaction then holds
the write lock from its start, so a transaction that reads before it writes cannot fail half-way
with SQLITE_BUSY_SNAPSHOT either. No-op on other databases.

Polling alone is not enough against a bulk writer whose batches are ready before it needs them
(an import whose parser runs in another process): it commits and begins the next transaction
within a fraction of a millisecond, so a writer polling every millisecond almost never finds the
lock free and waits for batch after batch (measured: up to 140 ms against 500-row batches of
9 ms each). SQLite has no queue for its lock, so the two sides keep a small one of their own, an
advisory lock on the file `<database>-wait` beside the database: a writer that finds the lock
busy holds a shared lock on it while it polls (`begin_immediate`), and a bulk writer calls
`yield_write_lock` between its transactions, which waits while anyone holds that shared lock,
i.e. until every writer that was waiting got its turn (at most `YIELD_MAX_SECONDS`, so a waiter
that is itself stuck cannot stop an import). When nobody waits, it costs an open and a flock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import time
from typing import Any

from sqlalchemy.engine import Connection, Engine

__all__ = ["POLL_SECONDS", "YIELD_MAX_SECONDS", "begin_immediate", "wait_file", "yield_write_lock"]

log = logging.getLogger(__name__)

POLL_SECONDS = 0.001
YIELD_MAX_SECONDS = 0.2
WAIT_SUFFIX = "-wait"
_BUSY, _LOCKED = 5, 6  # SQLite primary result codes (the low byte of an extended code)


def wait_file(dbapi: Any) -> str | None:
    """The path of the waiting writers' lock file of this SQLite connection's main database, or
    None for an in-memory or temporary database."""
    for _seq, name, path in dbapi.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return f"{path}{WAIT_SUFFIX}" if path else None
    return None


def _open(path: str) -> int | None:
    try:
        # a file of its own per call: flock locks belong to the open file, so a waiter and a bulk
        # writer in one process (the demo, the tests) still see each other
        return os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:  # a read-only directory: no queue, polling still works
        log.debug("cannot open %s: %s", path, exc)
        return None


class _Waiting:
    """Held while this writer polls for the write lock: a shared flock on the wait file."""

    def __init__(self, path: str | None) -> None:
        self.fd = _open(path) if path else None
        self.held = False

    def announce(self) -> None:
        if self.fd is None or self.held:
            return
        try:
            fcntl.flock(self.fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            self.held = True
        except OSError:
            pass  # a bulk writer is checking for waiters this very moment: next poll

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the flock
            self.fd = None


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
    waiting: _Waiting | None = None
    try:
        while True:
            try:
                dbapi.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                code = getattr(exc, "sqlite_errorcode", _BUSY) & 0xFF
                if code not in (_BUSY, _LOCKED) or time.monotonic() >= deadline:
                    raise
            if waiting is None:
                waiting = _Waiting(wait_file(dbapi))
            waiting.announce()
            time.sleep(poll)
    finally:
        if waiting is not None:
            waiting.close()
        dbapi.execute(f"PRAGMA busy_timeout = {saved}")


def _wait_file_of(bind: Connection | Engine) -> str | None:
    if isinstance(bind, Engine):
        database = bind.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return os.path.realpath(database) + WAIT_SUFFIX  # as SQLite names it: links resolved
    dbapi: Any = bind.connection.dbapi_connection
    return wait_file(dbapi) if dbapi is not None else None


def yield_write_lock(bind: Connection | Engine, *, max_wait: float = YIELD_MAX_SECONDS,
                     poll: float = POLL_SECONDS) -> float:
    """Call between the transactions of a bulk write (outside any transaction): if another writer
    is waiting for SQLite's write lock (`begin_immediate`), wait until it has taken it, at most
    `max_wait` seconds. Returns the seconds waited. No-op on other databases."""
    if bind.dialect.name != "sqlite":
        return 0.0
    path = _wait_file_of(bind)
    fd = _open(path) if path else None
    if fd is None:
        return 0.0
    start = time.monotonic()
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return time.monotonic() - start  # nobody (still) waiting
            except OSError:
                if time.monotonic() - start >= max_wait:
                    return time.monotonic() - start
            time.sleep(poll)
    finally:
        os.close(fd)
