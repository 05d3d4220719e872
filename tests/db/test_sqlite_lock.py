"""begin_immediate: a SQLite transaction that takes the write lock first, polling for it."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from ivr.db.base import make_engine
from ivr.db.sqlite_lock import WAIT_SUFFIX, begin_immediate, wait_file, yield_write_lock


def _setup(tmp_path: Path, timeout: float = 30) -> tuple[str, Engine]:
    path = tmp_path / "lock.sqlite3"
    engine = make_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": timeout})
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
    return str(path), engine


def _other(path: str) -> sqlite3.Connection:
    other = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    other.execute("PRAGMA journal_mode=WAL")
    return other


def test_the_transaction_holds_the_write_lock_from_its_start(tmp_path: Path) -> None:
    path, engine = _setup(tmp_path)
    other = _other(path)
    with engine.connect() as conn:
        with conn.begin():
            begin_immediate(conn)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")  # held although this transaction wrote nothing yet
            conn.execute(text("INSERT INTO t VALUES (1)"))
        # committed and released; the busy timeout the connection had is back
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    other.execute("BEGIN IMMEDIATE")
    assert other.execute("SELECT v FROM t").fetchall() == [(1,)]
    other.execute("ROLLBACK")


def test_it_waits_for_another_writer_and_goes_on_once_the_lock_is_free(tmp_path: Path) -> None:
    path, engine = _setup(tmp_path)
    other = _other(path)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    started, done = threading.Event(), threading.Event()
    seen: list[list[tuple[int]]] = []

    def write() -> None:
        with engine.begin() as conn:
            started.set()
            begin_immediate(conn)
            seen.append([tuple(r) for r in conn.execute(text("SELECT v FROM t"))])
            conn.execute(text("INSERT INTO t VALUES (2)"))
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    assert started.wait(10)
    assert not done.wait(0.2)  # still waiting: the other connection holds the lock
    other.execute("COMMIT")
    thread.join(10)
    assert done.is_set()
    assert seen == [[(1,)]]  # it read after the other writer's commit, in its own write transaction
    assert other.execute("SELECT v FROM t ORDER BY v").fetchall() == [(1,), (2,)]


def test_it_gives_up_after_the_connections_busy_timeout(tmp_path: Path) -> None:
    path, engine = _setup(tmp_path, timeout=0.3)
    other = _other(path)
    other.execute("BEGIN IMMEDIATE")
    try:
        with engine.connect() as conn:
            began = time.monotonic()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                with conn.begin():
                    begin_immediate(conn)
            assert time.monotonic() - began >= 0.3
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 300
    finally:
        other.execute("ROLLBACK")


def test_a_transaction_already_started_is_left_as_it_is(tmp_path: Path) -> None:
    _path, engine = _setup(tmp_path)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (1)"))  # the driver began the transaction
        begin_immediate(conn)  # no second BEGIN (SQLite would refuse it)
        conn.execute(text("INSERT INTO t VALUES (2)"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 2


def _bulk_writer(engine: Engine, stop: threading.Event, commits: list[float], *, hold: float, yield_: bool) -> None:
    """An import whose batches are always ready: commit, then begin the next one at once."""
    with engine.connect() as conn:
        while not stop.is_set():
            with conn.begin():
                conn.execute(text("INSERT INTO t VALUES (0)"))
                time.sleep(hold)  # the batch's work, holding the write lock
            commits.append(time.monotonic())
            if yield_:
                yield_write_lock(conn, max_wait=30)


def _waits_for_batches(tmp_path: Path, *, yield_: bool) -> int:
    """How many of a back-to-back bulk writer's transactions a polling writer waits through."""
    _path, engine = _setup(tmp_path)
    stop, commits = threading.Event(), []  # type: ignore[var-annotated]
    bulk = threading.Thread(target=_bulk_writer, args=(engine, stop, commits),
                            kwargs={"hold": 0.02, "yield_": yield_})
    bulk.start()
    try:
        while len(commits) < 3:  # the bulk writer is in its stride
            time.sleep(0.005)
        with engine.connect() as conn:
            asked = time.monotonic()
            with conn.begin():
                begin_immediate(conn)
                got = time.monotonic()
                conn.execute(text("INSERT INTO t VALUES (1)"))
        return sum(1 for c in commits if asked < c < got)
    finally:
        stop.set()
        bulk.join(30)


def test_a_bulk_writer_that_yields_lets_a_waiting_writer_in_after_its_current_transaction(tmp_path: Path) -> None:
    # The bulk writer's next transaction begins within microseconds of its commit, so polling
    # alone hardly ever finds the lock free; the waiter announces itself on the wait file and the
    # bulk writer waits for it between transactions. One batch (the one holding the lock when
    # the waiter asked) may commit first, and one more if the waiter asked during the hand-over.
    assert _waits_for_batches(tmp_path, yield_=True) <= 2


def test_yield_returns_at_once_when_nobody_waits(tmp_path: Path) -> None:
    _path, engine = _setup(tmp_path)
    with engine.connect() as conn:
        began = time.monotonic()
        assert yield_write_lock(conn, max_wait=30) < 1.0
        assert time.monotonic() - began < 1.0  # not the 30 s it may wait for a waiter
    assert yield_write_lock(engine, max_wait=30) < 1.0


def test_a_stuck_waiter_holds_a_bulk_writer_up_for_max_wait_only(tmp_path: Path) -> None:
    path, engine = _setup(tmp_path)
    fd = os.open(path + WAIT_SUFFIX, os.O_RDONLY | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)  # a waiter that never gets on (or hangs while waiting)
        with engine.connect() as conn:
            waited = yield_write_lock(conn, max_wait=0.2)
        assert waited >= 0.2
        assert yield_write_lock(engine, max_wait=0.2) >= 0.2  # the engine form finds the same file
    finally:
        os.close(fd)


def test_the_wait_file_sits_beside_the_database(tmp_path: Path) -> None:
    path, engine = _setup(tmp_path)
    with engine.connect() as conn:
        dbapi = conn.connection.dbapi_connection
        assert wait_file(dbapi) == path + WAIT_SUFFIX
    memory = sqlite3.connect(":memory:")
    assert wait_file(memory) is None
    assert yield_write_lock(make_engine("sqlite://"), max_wait=30) == 0.0


def test_the_waiter_stops_announcing_once_it_has_the_lock(tmp_path: Path) -> None:
    path, engine = _setup(tmp_path)
    other = _other(path)
    other.execute("BEGIN IMMEDIATE")
    done = threading.Event()

    def write() -> None:
        with engine.begin() as conn:
            begin_immediate(conn)
            conn.execute(text("INSERT INTO t VALUES (2)"))
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    fd = os.open(path + WAIT_SUFFIX, os.O_RDONLY | os.O_CREAT)
    try:
        # while it waits, its shared lock on the wait file keeps an exclusive one out
        deadline = time.monotonic() + 10
        announced = False
        while time.monotonic() < deadline and not announced:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                time.sleep(0.005)
            except OSError:
                announced = True
        assert announced
        other.execute("COMMIT")
        thread.join(10)
        assert done.is_set()
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released: no waiter left
    finally:
        os.close(fd)
