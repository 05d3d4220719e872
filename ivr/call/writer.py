"""One writer for the facts of every call in this process: a thread with its own database
connection, fed by a queue, that commits what has arrived in groups.

Why: a call establishes about 14 facts (answered, every step, identity, promise, the final
outcome...). Writing each in its own ORM transaction on a worker thread cost more CPU (and GIL)
than the rest of the call path together at a few hundred calls. Here a fact is a small function
of a SQLAlchemy Core `Connection` (a couple of INSERT/UPDATE statements, no ORM unit of work), and
the thread applies whatever has arrived in one transaction:

* group commit: the first fact of a group opens a window of `window` seconds (default 10 ms);
  everything that arrived by its end, up to `max_group` facts, is applied, then committed at
  once (a full group means a backlog: the next group starts without waiting). A fact that
  someone waits for (`call`: a read, an id, the call's final write) ends the window at once, so
  the one waiting is not delayed by it.
* a fact is durable (committed) at most about `window` plus one group's apply-and-commit time
  after it was submitted; see README "Durability of call facts" for the exact guarantee.
* the event loop never waits for the database: `write` only puts the fact on the queue; `call`
  returns a future the caller may await.
* a group that fails (a database error) is rolled back and its facts are applied again one per
  transaction on a fresh connection: a fact that fails alone is logged (and its future, if any,
  gets the error); the others are stored. Nothing the writer does can leave a call waiting: every
  future is resolved, with a result or an error, also when the writer is closed.
* facts are applied in the order they were submitted (one thread, one queue), so a call's later
  facts see its earlier ones; plain rows (`write_row`, the call steps) go in together, in one
  executemany per statement, at the end of their group.
* on SQLite the writer's connection never runs a WAL checkpoint inside a commit; a thread of its
  own does, right after (ivr/db/checkpoint.py).

`close()` applies and commits everything submitted before it, then stops the thread.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import Connection, Engine

from ivr.agi.ratelog import RateLimitedLog
from ivr.db.checkpoint import Checkpointer, no_autocheckpoint
from ivr.db.checkpoint import applies as checkpoint_applies
from ivr.db.sqlite_lock import begin_immediate

log = logging.getLogger(__name__)
T = TypeVar("T")

Fact = Callable[[Connection], Any]

DEFAULT_WINDOW = 0.010
DEFAULT_MAX_GROUP = 256
LOST_LINES = 20  # lost facts logged one by one per LOST_INTERVAL; the rest are counted
LOST_INTERVAL = 10.0
_group_log = RateLimitedLog(log)


class FactSink(Protocol):
    """What the recorder needs of a writer: `FactWriter` (a thread of this process) or
    `ivr.call.writer_process.ProcessFactWriter` (a process of its own)."""

    @property
    def engine(self) -> Engine: ...
    def write(self, fact: Fact, label: str = "") -> None: ...
    def write_row(self, insert: Any, row: dict[str, Any], label: str = "") -> None: ...
    def submit(self, fact: Callable[[Connection], T], label: str = "") -> concurrent.futures.Future[T]: ...
    async def call(self, fact: Callable[[Connection], T], label: str = "") -> T: ...
    def flush(self, timeout: float | None = 30.0) -> None: ...
    async def aflush(self) -> None: ...
    def close(self, timeout: float | None = 30.0) -> bool: ...
    async def aclose(self, timeout: float | None = 30.0) -> bool: ...


class WriterClosed(RuntimeError):
    """A fact was submitted after `FactWriter.close()`."""


@dataclass(slots=True)
class _Item:
    fact: Fact | None  # None: a flush marker (nothing to apply, only to wait for), or a row
    label: str
    future: concurrent.futures.Future[Any] | None = None
    insert: Any = None  # a prebuilt INSERT: `row` goes in with the group's other rows for it
    row: dict[str, Any] | None = None
    queued_at: float = 0.0  # time.monotonic() when submitted


_STOP = object()


@dataclass
class WriterStats:
    """Counters (read without a lock: approximate while the writer runs, exact after flush)."""

    facts: int = 0  # facts committed
    commits: int = 0  # transactions committed
    failed: int = 0  # facts that could not be stored (logged)
    group_failures: int = 0  # groups rolled back and applied again one fact at a time
    largest_group: int = 0
    groups: list[int] = field(default_factory=list)  # sizes of the last groups (for tests/diagnostics)
    # seconds from the submission of a group's oldest fact to its commit: how long a fact known
    # to the script was not yet durable
    max_delay: float = 0.0
    delays: list[float] = field(default_factory=list)  # of the last groups


class FactWriter:
    """The single writer of call facts for one process (see the module docstring)."""

    def __init__(self, engine: Engine, *, window: float = DEFAULT_WINDOW, max_group: int = DEFAULT_MAX_GROUP,
                 name: str = "call-facts-writer") -> None:
        if window < 0 or max_group < 1:
            raise ValueError("window must be >= 0 and max_group >= 1")
        self.engine = engine
        self.window = window
        self.max_group = max_group
        self.name = name
        self.stats = WriterStats()
        # SQLite: WAL checkpoints on a thread of their own, never inside the facts' commits
        self.checkpointer = Checkpointer(engine, name=f"{name}-checkpointer") if checkpoint_applies(engine) else None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._conn: Connection | None = None
        self._urgent = threading.Event()
        self._abandoned = False
        # lost facts are logged one by one, but at most LOST_LINES per LOST_INTERVAL: a database
        # that is down would otherwise write a line (and a traceback) for every fact of every call
        self._lost_since = 0.0
        self._lost_lines = 0
        self._lost_held = 0

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FactWriter:
        with self._start_lock:
            if self._closed:
                raise WriterClosed(f"{self.name} is closed")
            if self._thread is None:
                # daemon: a process that forgets close() still exits; atexit below still flushes
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
                _open_writers.add(self)
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self, timeout: float | None = 30.0) -> bool:
        """Apply and commit everything submitted so far, then stop the thread and release the
        connection. Returns False when the thread did not finish within `timeout`. Idempotent."""
        with self._start_lock:
            if self._closed:
                thread = self._thread
                return thread is None or not thread.is_alive()
            self._closed = True
            thread = self._thread
        if thread is None:
            return True
        self._queue.put(_STOP)
        self._urgent.set()
        thread.join(timeout)
        if thread.is_alive():
            log.error("%s: still writing after %.0fs at shutdown; facts not yet committed may be lost",
                      self.name, timeout or 0)
            return False
        _open_writers.discard(self)
        return True

    def abandon(self) -> None:
        """Stop without storing what is queued, as a killed process would (tests emulate a crash
        with it): facts not committed yet are dropped, waiting futures fail with WriterClosed."""
        with self._start_lock:
            self._closed = True
            self._abandoned = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            self._urgent.set()
            thread.join(30)
        _open_writers.discard(self)

    async def aclose(self, timeout: float | None = 30.0) -> bool:
        """`close` without blocking the event loop."""
        return await asyncio.to_thread(self.close, timeout)

    # -- submitting -----------------------------------------------------------------------------
    def write(self, fact: Fact, label: str = "") -> None:
        """Queue a fact; returns at once. Its errors are logged by the writer."""
        self._put(_Item(fact, label, None, None, None, time.monotonic()))

    def write_row(self, insert: Any, row: dict[str, Any], label: str = "") -> None:
        """Queue one row for a prebuilt INSERT (e.g. a call step): the rows of one group for the
        same statement go to the database in one executemany, after the group's other facts (so
        use it only for rows nothing else in the group reads)."""
        self._put(_Item(None, label, None, insert, row, time.monotonic()))

    def submit(self, fact: Callable[[Connection], T], label: str = "") -> concurrent.futures.Future[T]:
        """Queue a fact whose result someone needs; the future resolves once the fact's group is
        committed (with the fact's return value) or failed (with the error). Ends the current
        group window at once."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._put(_Item(fact, label, future, None, None, time.monotonic()))
        return future

    async def call(self, fact: Callable[[Connection], T], label: str = "") -> T:
        """`submit` for the event loop: await the committed result without blocking the loop."""
        return await asyncio.wrap_future(self.submit(fact, label))

    def flush_future(self) -> concurrent.futures.Future[None]:
        """A future that resolves once every fact submitted before this call is committed (or
        logged as failed)."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._put(_Item(None, "flush", future, None, None, time.monotonic()))
        return future

    def flush(self, timeout: float | None = 30.0) -> None:
        self.flush_future().result(timeout)

    async def aflush(self) -> None:
        await asyncio.wrap_future(self.flush_future())

    def _put(self, item: _Item) -> None:
        if self._closed:
            error = WriterClosed(f"{self.name} is closed: fact {item.label or '?'} not stored")
            if item.future is not None:
                item.future.set_exception(error)
                return
            raise error
        if self._thread is None:
            self.start()
        self._queue.put(item)
        if item.future is not None:
            self._urgent.set()  # someone waits for it: end the group window now

    # -- the thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        backlog = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            if first.future is None and not backlog and self.window > 0:
                # Sleep through the window instead of waking for every fact that arrives (each
                # wake-up is a GIL hand-over with the event loop); a fact someone waits for, or
                # close(), wakes the thread at once.
                self._urgent.wait(self.window)
            self._urgent.clear()  # before draining: a later urgent fact sets it again
            group: list[_Item] = [first]
            while len(group) < self.max_group:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                group.append(nxt)
            # a full group means more are waiting: the next one starts without a window
            backlog = len(group) >= self.max_group
            try:
                self._apply(group)
            except BaseException:  # noqa: BLE001 - the writer thread must outlive any one group
                log.exception("%s: unexpected error applying a group of %d fact(s)", self.name, len(group))
                for item in group:
                    _fail(item, RuntimeError("call facts writer error"))
        # drain what was queued behind the stop marker (submitted before close() returned)
        rest: list[_Item] = []
        while True:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is not _STOP:
                rest.append(nxt)
        for start in range(0, len(rest), self.max_group):
            self._apply(rest[start:start + self.max_group])
        self._log_held_losses()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.checkpointer is not None:
            self.checkpointer.stop()

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            if self._conn is not None:
                self._conn.close()
            self._conn = self.engine.connect()
            if self.checkpointer is not None:
                no_autocheckpoint(self._conn)
                self.checkpointer.start()
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; drop it anyway
                log.debug("%s: closing a failed connection", self.name, exc_info=True)
            self._conn = None

    def _apply(self, group: list[_Item]) -> None:
        stats = self.stats
        if self._abandoned:
            for item in group:
                _fail(item, WriterClosed(f"{self.name} was abandoned: fact {item.label or '?'} not stored"))
            return
        results: list[Any] = []
        try:
            conn = self._connection()
            with conn.begin():
                begin_immediate(conn)  # on SQLite: wait for the write lock without missing gaps
                rows: dict[int, tuple[Any, list[dict[str, Any]]]] = {}
                for item in group:
                    if item.insert is not None:
                        rows.setdefault(id(item.insert), (item.insert, []))[1].append(item.row or {})
                        results.append(None)
                    else:
                        results.append(item.fact(conn) if item.fact is not None else None)
                for insert, params in rows.values():
                    conn.execute(insert, params)
        except Exception as exc:  # noqa: BLE001 - isolate the fact that fails, keep the others
            stats.group_failures += 1
            _group_log.warning("group", "%s: a group of %d fact(s) failed (%s: %s); applying them one by one",
                               self.name, len(group), type(exc).__name__, exc)
            self._drop_connection()
            self._apply_one_by_one(group)
            return
        stats.commits += 1
        if self.checkpointer is not None:
            self.checkpointer.committed()
        if self._lost_held and time.monotonic() - self._lost_since >= LOST_INTERVAL:
            self._log_held_losses()
        size = sum(1 for item in group if item.fact is not None or item.insert is not None)
        stats.facts += size
        stats.largest_group = max(stats.largest_group, size)
        stats.groups.append(size)
        del stats.groups[:-64]
        delay = time.monotonic() - group[0].queued_at
        stats.max_delay = max(stats.max_delay, delay)
        stats.delays.append(delay)
        del stats.delays[:-1024]
        for item, result in zip(group, results, strict=True):
            if item.future is not None and not item.future.done():
                item.future.set_result(result)

    def _apply_one_by_one(self, group: list[_Item]) -> None:
        stats = self.stats
        for item in group:
            if item.fact is None and item.insert is None:
                if item.future is not None and not item.future.done():
                    item.future.set_result(None)
                continue
            try:
                conn = self._connection()
                with conn.begin():
                    begin_immediate(conn)
                    if item.insert is not None:
                        conn.execute(item.insert, item.row or {})
                        result = None
                    else:
                        assert item.fact is not None
                        result = item.fact(conn)
            except Exception as exc:  # noqa: BLE001 - logged here, handed to whoever waits
                stats.failed += 1
                self._log_lost(item, exc)
                self._drop_connection()
                _fail(item, exc)
                continue
            stats.commits += 1
            stats.facts += 1
            if self.checkpointer is not None:
                self.checkpointer.committed()
            if item.future is not None and not item.future.done():
                item.future.set_result(result)


    def _log_lost(self, item: _Item, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._lost_since >= LOST_INTERVAL:
            self._log_held_losses()
            self._lost_since, self._lost_lines = now, 0
        if self._lost_lines >= LOST_LINES:
            self._lost_held += 1
            return
        self._lost_lines += 1
        log.error("%s: fact %s could not be stored: %s: %s", self.name, item.label or "?", type(exc).__name__, exc,
                  exc_info=exc if self._lost_lines <= 3 else None)

    def _log_held_losses(self) -> None:
        if self._lost_held:
            log.error("%s: %d more fact(s) could not be stored (not logged one by one)", self.name, self._lost_held)
            self._lost_held = 0


def _fail(item: _Item, exc: BaseException) -> None:
    if item.future is not None and not item.future.done():
        item.future.set_exception(exc)


# Writers a process forgot to close are flushed at exit (daemon threads are killed after atexit).
_open_writers: weakref.WeakSet[FactWriter] = weakref.WeakSet()


@atexit.register
def _close_open_writers() -> None:
    for writer in list(_open_writers):
        writer.close(timeout=10)
