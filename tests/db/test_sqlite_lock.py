"""begin_immediate: a SQLite transaction that takes the write lock first, polling for it."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from ivr.db.base import make_engine
from ivr.db.sqlite_lock import begin_immediate


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
