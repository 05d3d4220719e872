"""WAL checkpoints of a SQLite file, kept off the call facts writer's commit path.

By default every SQLite connection checkpoints the WAL itself, inside the commit that takes it
past 1,000 pages (4 MiB). During a big import the WAL grows by that much in seconds, so nearly
every commit of the facts writer ran a checkpoint: copying megabytes into the database file
before the facts' commit returned, while the calls waited for it (the HANGUP -> closed delay in
scripts/bench_run_upload.py). The writer's connection now never checkpoints
(`no_autocheckpoint`); a thread of its own with its own connection runs a PASSIVE checkpoint
(which neither waits for nor blocks writers) at most every `interval` seconds after a commit.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

INTERVAL = 0.5


def applies(engine: Engine) -> bool:
    """Only a SQLite file has a WAL; PostgreSQL checkpoints by itself."""
    return engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:")


def no_autocheckpoint(conn: Connection) -> None:
    """This connection's commits never run a checkpoint (a per-connection setting)."""
    conn.connection.dbapi_connection.execute("PRAGMA wal_autocheckpoint = 0")  # type: ignore[union-attr]


@dataclass
class CheckpointStats:
    runs: int = 0
    frames: int = 0  # WAL frames copied into the database file
    busy: int = 0  # runs that could not finish (a reader or writer in the way; the next run goes on)
    longest: float = 0.0
    failures: int = 0


class Checkpointer:
    def __init__(self, engine: Engine, *, interval: float = INTERVAL, name: str = "sqlite-checkpointer") -> None:
        self.engine = engine
        self.interval = interval
        self.name = name
        self.stats = CheckpointStats()
        self._dirty = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Checkpointer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def committed(self) -> None:
        """A commit added to the WAL: checkpoint at the next interval."""
        self._dirty.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        raw: Any = None
        try:
            while not self._stopped.is_set():
                self._dirty.wait()
                if self._stopped.wait(self.interval):
                    break
                self._dirty.clear()  # commits from here on call for another run
                try:
                    if raw is None:
                        raw = self.engine.raw_connection()
                    self._checkpoint(raw)
                except Exception:  # noqa: BLE001 - a failed run is retried; the WAL only grows meanwhile
                    self.stats.failures += 1
                    log.warning("%s: WAL checkpoint failed", self.name, exc_info=True)
                    if raw is not None:
                        raw.invalidate()
                        raw = None
                    self._dirty.set()
        finally:
            if raw is not None:
                raw.close()

    def _checkpoint(self, raw: Any) -> None:
        started = time.monotonic()
        cursor = raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        busy, _wal_frames, copied = cursor.fetchone()
        cursor.close()
        took = time.monotonic() - started
        stats = self.stats
        stats.runs += 1
        stats.frames += max(0, int(copied))
        stats.longest = max(stats.longest, took)
        if busy:
            stats.busy += 1
