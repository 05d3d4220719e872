"""The call facts writer in a process of its own (issue 12): `ivr run` serves the calls, and a
child process does all of the database work of their facts.

Why: with the writer as a thread of the calls' process, its SQLAlchemy and driver work held the
GIL the event loop needs, and on SQLite it came in bursts: while another process (an import)
held the database's write lock the facts queued up, then were applied all at once. A 400,000-row
upload during 1,000 live calls raised turnaround p99 from 3-4 ms to 23-47 ms; a writer that did
no database work left it at 6 ms. Here the calls' process only pickles each fact (a
`functools.partial` of a function in ivr/call/facts.py, a few microseconds) and a sender thread
writes them to a pipe; the child runs a plain `FactWriter` (ivr/call/writer.py: group commit,
one connection, the same error handling) on its own engine, on the other core.

`ProcessFactWriter` has the interface of `FactWriter` (write, write_row, submit, call, flush,
close, abandon), so the recorder does not know which one it has. Facts must pickle: a closure
fails at once (its future gets the error, or it is logged). Differences in what is guaranteed:

* **ivr run killed (SIGKILL)**: every fact already written to the pipe is still committed: the
  child reads until the pipe's end, commits, and exits. Only what the sender thread had not yet
  written (normally well under a millisecond's worth) is lost. With the thread writer everything
  not yet committed was lost.
* **writer process killed**: the facts it had received and not committed are lost (logged with
  their count as far as known); waiting futures fail with `WriterProcessDied`; a new writer
  process is started for the facts that follow.
* ordering: one pipe, one reader, one writer thread in the child: a call's facts are applied in
  the order they were made, as before.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import pickle
import queue
import signal
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine

from ivr.call.writer import DEFAULT_MAX_GROUP, DEFAULT_WINDOW, Fact, WriterClosed

log = logging.getLogger(__name__)
T = TypeVar("T")

# messages parent -> child, in batches (one pickled list per pipe write):
FACT, ROW, FLUSH, STOP = "fact", "row", "flush", "stop"
# child -> parent: (seq, ok, value) for a fact or flush someone waits for; READY once started
READY = -1
SEND_BATCH = 512  # messages per pipe write at most
RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0)


class WriterProcessDied(RuntimeError):
    """The writer process ended before it answered; the fact may or may not be stored."""


class FactFailed(RuntimeError):
    """A fact failed in the writer process (the database's error, as text: it may not pickle)."""


@dataclass
class ProcessWriterStats:
    sent: int = 0  # facts and rows written to the pipe
    lost: int = 0  # facts that could not be pickled or sent
    restarts: int = 0  # writer processes started after one died


class ProcessFactWriter:
    """`FactWriter`'s interface; the writing happens in a child process (module docstring)."""

    def __init__(self, engine: Engine, *, window: float = DEFAULT_WINDOW, max_group: int = DEFAULT_MAX_GROUP,
                 name: str = "call-facts-writer", log_level: int | None = None) -> None:
        if engine.url.get_backend_name() == "sqlite" and engine.url.database in (None, "", ":memory:"):
            raise ValueError("an in-memory SQLite database cannot be shared with a writer process")
        self.engine = engine  # the calls' process reads with it (the call's data at its start)
        self.window = window
        self.max_group = max_group
        self.name = name
        self.stats = ProcessWriterStats()
        self._url = engine.url.render_as_string(hide_password=False)
        self._log_level = log_level if log_level is not None else logging.getLogger().getEffectiveLevel()
        self._outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._futures: dict[int, concurrent.futures.Future[Any]] = {}
        self._futures_lock = threading.Lock()
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        # waiting for a child (waitpid) from two threads at once is a race: the loser reads no
        # exit code and would report a clean stop at close() as a death. Every reap holds this.
        self._reap_lock = threading.Lock()
        self._closed = False
        self._stopping = False
        self._process: Any = None
        self._conn: Any = None
        self._generation = 0
        self._sender: threading.Thread | None = None
        self._receiver: threading.Thread | None = None
        self._ready = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> ProcessFactWriter:
        with self._lock:
            if self._closed:
                raise WriterClosed(f"{self.name} is closed")
            if self._process is not None:
                return self
            self._spawn()
            self._sender = threading.Thread(target=self._send_loop, name=f"{self.name}-send", daemon=True)
            self._sender.start()
            _open_writers.add(self)
        return self

    def _spawn(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process with threads and a loop
        parent_end, child_end = ctx.Pipe(duplex=True)
        # daemon: multiprocessing would otherwise wait for it at exit; the atexit hook below
        # closes it properly first
        process = ctx.Process(target=child_main, name=self.name, daemon=True,
                              args=(child_end, self._url, self.window, self.max_group, self.name, self._log_level))
        process.start()
        child_end.close()  # the child's end lives in the child only: its death is our EOF
        self._generation += 1
        self._process, self._conn = process, parent_end
        self._ready.clear()
        self._receiver = threading.Thread(target=self._receive_loop, args=(parent_end, process, self._generation),
                                          name=f"{self.name}-receive", daemon=True)
        self._receiver.start()
        log.info("%s: writer process %s started", self.name, process.pid)

    @property
    def running(self) -> bool:
        if self._process is None:
            return False
        with self._reap_lock:
            return bool(self._process.is_alive())

    def _reap(self, process: Any, timeout: float | None) -> bool:
        """Wait up to `timeout` for `process` to end (its sentinel: safe from any thread), then
        collect its exit code. False if it is still running."""
        if not multiprocessing.connection.wait([process.sentinel], timeout):
            return False
        with self._reap_lock:
            process.join()
        return True

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once the current writer process has its database connection ready (tests)."""
        return self._ready.wait(timeout)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Send what is queued, let the child commit it and exit. False if it did not finish in
        `timeout` (it is then killed: what it had not committed is lost, and logged)."""
        with self._lock:
            if self._closed:
                return not self.running
            self._closed = True
            started = self._process is not None
        if not started:
            return True
        self._outbox.put((STOP, 0, None, ""))
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._sender is not None:
            self._sender.join(timeout)
        process = self._process
        if not self._reap(process, None if deadline is None else max(0.0, deadline - time.monotonic())):
            log.error("%s: writer process still writing after %.0fs at shutdown; killing it (facts not yet "
                      "committed are lost)", self.name, timeout or 0)
            process.kill()
            self._reap(process, 5)
            self._fail_waiting(WriterProcessDied(f"{self.name}: killed at shutdown"))
            return False
        if self._receiver is not None:
            self._receiver.join(5)
        self._fail_waiting(WriterClosed(f"{self.name} is closed"))
        _open_writers.discard(self)
        return process.exitcode == 0

    def abandon(self) -> None:
        """Kill the writer process without letting it commit (tests emulate a crash with it)."""
        with self._lock:
            self._closed = True
            process = self._process
        if process is not None:
            process.kill()
            self._reap(process, 10)
        self._outbox.put((STOP, 0, None, ""))
        self._fail_waiting(WriterClosed(f"{self.name} was abandoned"))

    async def aclose(self, timeout: float | None = 30.0) -> bool:
        return await asyncio.to_thread(self.close, timeout)

    # -- submitting (the event loop's side: a queue put, nothing more) ---------------------------
    def write(self, fact: Fact, label: str = "") -> None:
        self._put((FACT, 0, fact, label))

    def write_row(self, insert: Any, row: dict[str, Any], label: str = "") -> None:
        """`FactWriter.write_row` for an `insert(table)` statement: the table goes by name."""
        self._put((ROW, 0, (insert.table.name, row), label))

    def submit(self, fact: Callable[[Connection], T], label: str = "") -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._put_waited((FACT, fact, label), future)
        return future

    async def call(self, fact: Callable[[Connection], T], label: str = "") -> T:
        return await asyncio.wrap_future(self.submit(fact, label))

    def flush_future(self) -> concurrent.futures.Future[None]:
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._put_waited((FLUSH, None, "flush"), future)
        return future

    def flush(self, timeout: float | None = 30.0) -> None:
        self.flush_future().result(timeout)

    async def aflush(self) -> None:
        await asyncio.wrap_future(self.flush_future())

    def _put(self, message: tuple[str, int, Any, str]) -> None:
        if self._closed:
            raise WriterClosed(f"{self.name} is closed: fact {message[3] or '?'} not stored")
        if self._process is None:
            self.start()
        self._outbox.put(message)

    def _put_waited(self, what: tuple[str, Any, str], future: concurrent.futures.Future[Any]) -> None:
        kind, payload, label = what
        if self._closed:
            future.set_exception(WriterClosed(f"{self.name} is closed: fact {label or '?'} not stored"))
            return
        if self._process is None:
            self.start()
        seq = next(self._seq)
        with self._futures_lock:
            self._futures[seq] = future
        self._outbox.put((kind, seq, payload, label))

    # -- the sender thread ------------------------------------------------------------------------
    def _send_loop(self) -> None:
        stop = False
        while not stop:
            batch = [self._outbox.get()]
            while len(batch) < SEND_BATCH:
                try:
                    batch.append(self._outbox.get_nowait())
                except queue.Empty:
                    break
            if any(m[0] == STOP for m in batch):
                stop = True
                at = next(i for i, m in enumerate(batch) if m[0] == STOP)
                batch = batch[:at + 1]  # nothing is submitted after close() set _closed
            data = self._pickle(batch)
            if data is not None:
                self._send(data, batch)

    def _pickle(self, batch: list[tuple[str, int, Any, str]]) -> bytes | None:
        try:
            return pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - find the one that does not pickle, send the others
            kept = []
            for message in batch:
                try:
                    pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
                except Exception as exc:  # noqa: BLE001 - a programming error: say which fact
                    self.stats.lost += 1
                    log.error("%s: fact %s cannot go to the writer process (%s: %s); not stored", self.name,
                              message[3] or "?", type(exc).__name__, exc)
                    self._resolve(message[1], False, exc)
                else:
                    kept.append(message)
            return pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL) if kept else None

    def _send(self, data: bytes, batch: list[tuple[str, int, Any, str]]) -> None:
        for attempt in range(len(RESTART_DELAYS) + 1):
            conn = self._conn
            try:
                conn.send_bytes(data)
            except (OSError, ValueError) as exc:
                # the writer process is gone (its receiver restarts it): wait for the new one
                if attempt == len(RESTART_DELAYS) or self._stopping:
                    self._lost(batch, f"writer process unreachable: {exc}")
                    return
                time.sleep(RESTART_DELAYS[attempt])
                continue
            self.stats.sent += sum(1 for m in batch if m[0] in (FACT, ROW))
            return

    def _lost(self, batch: list[tuple[str, int, Any, str]], why: str) -> None:
        facts = [m for m in batch if m[0] in (FACT, ROW)]
        self.stats.lost += len(facts)
        if facts:
            log.error("%s: %d fact(s) not stored: %s", self.name, len(facts), why)
        for message in batch:
            self._resolve(message[1], False, WriterProcessDied(why))

    # -- the receiver thread ----------------------------------------------------------------------
    def _receive_loop(self, conn: Any, process: Any, generation: int) -> None:
        while True:
            try:
                seq, ok, value = conn.recv()
            except (EOFError, OSError):
                break
            if seq == READY:
                self._ready.set()
                continue
            self._resolve(seq, ok, value)
        self._reap(process, None)
        if self._closed and process.exitcode == 0:
            return
        # died on its own (or was killed): what it had not committed is lost; the next facts
        # go to a new one
        log.error("%s: writer process %s ended (exit code %s); facts it had not committed are lost",
                  self.name, process.pid, process.exitcode)
        self._fail_waiting(WriterProcessDied(f"{self.name}: writer process {process.pid} ended "
                                             f"(exit code {process.exitcode})"))
        with self._lock:
            if self._closed or generation != self._generation:
                return
            self.stats.restarts += 1
            try:
                self._spawn()
            except Exception:  # noqa: BLE001 - the sender logs every fact it then cannot send
                log.exception("%s: a new writer process could not be started", self.name)
                self._stopping = True

    def _resolve(self, seq: int, ok: bool, value: Any) -> None:
        if not seq:
            return
        with self._futures_lock:
            future = self._futures.pop(seq, None)
        if future is None or future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value if isinstance(value, BaseException) else FactFailed(str(value)))

    def _fail_waiting(self, error: BaseException) -> None:
        with self._futures_lock:
            waiting, self._futures = self._futures, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(error)


# Writers a process forgot to close are closed at exit (before multiprocessing's own exit hook,
# registered earlier, would terminate the daemonic child with facts not yet committed).
_open_writers: weakref.WeakSet[ProcessFactWriter] = weakref.WeakSet()


@atexit.register
def _close_open_writers() -> None:
    for writer in list(_open_writers):
        writer.close(timeout=30)


# -- the child process -------------------------------------------------------------------------------

def child_main(conn: Any, url: str, window: float, max_group: int, name: str, log_level: int) -> None:
    """The writer process: read batches of facts until STOP or the pipe's end (the parent is
    gone), hand them to a `FactWriter`, answer the ones someone waits for; then commit and exit."""
    from sqlalchemy import insert

    from ivr.call.writer import FactWriter
    from ivr.db import models  # noqa: F401 - registers the tables rows are written to by name
    from ivr.db.base import Base, make_engine
    from ivr.logsetup import configure_logging

    # Ctrl-C reaches the whole process group, and a service manager may signal every process of
    # the service: the calls' process decides when to stop (it lets the calls finish, then
    # closes this writer); without it, the pipe's end stops this process after its last commit.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging(log_level)
    engine = make_engine(url)
    writer = FactWriter(engine, window=window, max_group=max_group, name=name).start()
    send_lock = threading.Lock()
    inserts: dict[str, Any] = {}

    def reply(seq: int, future: concurrent.futures.Future[Any]) -> None:
        error = future.exception()
        # the database's exception may not pickle (or not usefully): its text goes back
        message = (seq, True, future.result()) if error is None else (seq, False, f"{type(error).__name__}: {error}")
        with send_lock:
            try:
                conn.send(message)
            except (OSError, ValueError):
                pass  # the parent is gone: nobody waits any more

    def waited(seq: int, future: concurrent.futures.Future[Any]) -> None:
        future.add_done_callback(partial(reply, seq))

    try:
        with engine.connect():  # fail here, loudly, if the database cannot be reached
            pass
        with send_lock:
            conn.send((READY, True, None))
    except Exception:  # noqa: BLE001 - logged; the facts that come are applied (and fail) as usual
        log.exception("%s: the database cannot be reached from the writer process", name)
    stopping = False
    while not stopping:
        try:
            batch = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            log.warning("%s: the calls' process is gone; committing what it sent, then stopping", name)
            break
        for kind, seq, payload, label in batch:
            if kind == STOP:
                stopping = True
                break
            if kind == FLUSH:
                waited(seq, writer.flush_future())
            elif kind == ROW:
                table, row = payload
                stmt = inserts.get(table)
                if stmt is None:
                    stmt = inserts[table] = insert(Base.metadata.tables[table])
                writer.write_row(stmt, row, label)
            elif seq:
                waited(seq, writer.submit(payload, label))
            else:
                writer.write(payload, label)
    writer.close(timeout=None)
    engine.dispose()
    conn.close()
