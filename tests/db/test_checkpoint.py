"""WAL checkpoints off the facts writer's commit path (ivr/db/checkpoint.py): the writer's own
connection never checkpoints, its checkpointer thread does, and nothing else changes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from ivr.call.writer import FactWriter
from ivr.db.base import make_engine
from ivr.db.checkpoint import Checkpointer, applies, no_autocheckpoint


def _engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'facts.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE fact (v INTEGER, pad TEXT)"))
    return engine


def _until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.01)


def _wal_left(engine: Engine) -> tuple[int, int]:
    """(frames in the WAL, frames of it in the database file) after one more PASSIVE checkpoint."""
    with engine.connect() as conn:
        _busy, frames, copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    return frames, copied


def test_the_writers_connection_does_not_checkpoint_and_its_checkpointer_does(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    writer = FactWriter(engine, window=0.001).start()
    assert writer.checkpointer is not None
    writer.checkpointer.interval = 0.05
    try:
        def setting(conn: Connection) -> int:
            return int(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())

        assert writer.submit(setting).result(30) == 0  # the facts' commits never copy the WAL
        for i in range(300):
            writer.write(lambda conn, i=i: conn.execute(text("INSERT INTO fact VALUES (:v, :p)"),
                                                        {"v": i, "p": "x" * 2000}))
        writer.flush()
        _until(lambda: writer.checkpointer is not None and writer.checkpointer.stats.frames > 100,
               "the checkpointer copied the facts' WAL frames")
        assert writer.checkpointer.stats.failures == 0
    finally:
        assert writer.close()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM fact").scalar_one() == 300
    assert not writer.checkpointer.running  # closed with the writer


def test_without_the_checkpointer_the_wal_would_stay_uncopied(tmp_path: Path) -> None:
    """The control: the same commits on a connection that does not checkpoint leave every frame
    in the WAL; one checkpointer run copies them."""
    engine = _engine(tmp_path)
    with engine.connect() as conn:
        no_autocheckpoint(conn)
        for i in range(1500):  # past SQLite's default autocheckpoint of 1,000 pages
            with conn.begin():
                conn.execute(text("INSERT INTO fact VALUES (:v, :p)"), {"v": i, "p": "y" * 3000})
    wal = Path(f"{engine.url.database}-wal")
    frames_in_file = (wal.stat().st_size - 32) // (4096 + 24)  # WAL header, then page + frame header
    # a connection that checkpoints would have restarted the WAL near 1,000 frames
    assert frames_in_file >= 1500
    checkpointer = Checkpointer(engine, interval=0.01).start()
    try:
        assert checkpointer.stats.runs == 0  # nothing committed since it started: no run
        checkpointer.committed()
        _until(lambda: checkpointer.stats.runs >= 1, "a checkpoint run after a commit")
        assert checkpointer.stats.frames > 1000 and checkpointer.stats.failures == 0
    finally:
        checkpointer.stop()
    frames, copied = _wal_left(engine)
    assert frames == copied  # nothing left to copy


def test_only_a_sqlite_file_gets_a_checkpointer(tmp_path: Path) -> None:
    assert applies(make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}"))
    assert not applies(make_engine("sqlite://"))
    assert FactWriter(make_engine("sqlite://")).checkpointer is None
