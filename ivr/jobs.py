"""Heavy work the web UI and the API start, kept away from the calls and the pages (issue 12).

A billing import of hundreds of thousands of rows is seconds of pure-Python CPU: in a worker
thread it holds the GIL of whatever process serves the web UI. In `ivr run` the web UI has its
own process (ivr.web.process), and with the FastAGI server in the same process (the demo) every
call's next command waited behind an import (a 50,000-row upload raised the call turnaround p99
from 49 ms to 2.0 s). So when `offload_imports()` was called (the web process of `ivr run`, and
start_services when the web UI and FastAGI share a process), imports run in a separate **process**
(one, spawned once and reused; spawn, not fork: nothing of the parent's event loop, threads or
database connections is inherited) with its own database engine, at a lower CPU priority.
`ivr web` alone and the tests keep the in-process thread pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import io
import logging
import multiprocessing
import os
import threading
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

IMPORT_NICE = 10  # the import process's priority drop: on a small machine the calls get the cores first
_pool: concurrent.futures.ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()
_offload = False


def offload_imports(enabled: bool = True) -> None:
    """From now on, run web and API imports in a separate process (see the module doc)."""
    global _offload
    _offload = enabled


def offloading() -> bool:
    return _offload


def shutdown() -> None:
    global _pool
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)
        _pool = None


def _database_url(sessions: sessionmaker[Session]) -> str:
    bind = sessions.kw.get("bind")
    if bind is None:
        raise RuntimeError("the session factory has no engine to tell the import process where to write")
    return str(bind.url.render_as_string(hide_password=False))


def _import_in_child(kind: str, database_url: str, settings: Any, data: bytes, today: dt.date,
                     filename: str) -> Any:
    """Runs in the import process: its own engine, one import, the report back (pickled)."""
    from ivr.billing.importer import import_accounts, import_payments
    from ivr.db.base import make_engine, make_session_factory

    engine = make_engine(database_url)
    try:
        fn = import_accounts if kind == "accounts" else import_payments
        return fn(make_session_factory(engine), io.BytesIO(data), settings=settings, today=today, filename=filename)
    finally:
        engine.dispose()


def _import_here(kind: str, sessions: sessionmaker[Session], settings: Any, data: bytes, today: dt.date,
                 filename: str) -> Any:
    from ivr.billing.importer import import_accounts, import_payments

    fn = import_accounts if kind == "accounts" else import_payments
    return fn(sessions, io.BytesIO(data), settings=settings, today=today, filename=filename)


def _import_file_in_child(kind: str, database_url: str, path: str, options: dict[str, Any]) -> Any:
    """Runs in the import process: the import wizard's confirmed file (ivr.web.admin_import)."""
    from pathlib import Path

    from ivr.billing.importer import import_accounts, import_payments
    from ivr.db.base import make_engine, make_session_factory

    engine = make_engine(database_url)
    try:
        fn = import_accounts if kind == "accounts" else import_payments
        return fn(make_session_factory(engine), Path(path), **options)
    finally:
        engine.dispose()


def _init_child(log_level: int) -> None:
    """In the import process: the parent's log level (its lines are the robot's log too), and a
    lower priority: an import may take a minute of both cores (its parser workers inherit the
    priority); the calls' process must not wait for a CPU behind it."""
    from ivr.logsetup import configure_logging

    configure_logging(log_level)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent,), name="parent-watch", daemon=True).start()
    try:
        os.nice(IMPORT_NICE)
    except OSError:  # not permitted (a container's seccomp profile): imports run at normal priority
        log.warning("could not lower the import process's priority")


def _exit_with_parent(parent: Any) -> None:
    """A pool worker holds both ends of its own task queue, so it never sees EOF when the process
    that started it is killed (SIGKILL, OOM): without this it would outlive `ivr run`, holding the
    database and the terminal's output. What an import had committed stays; the rest is rolled back."""
    parent.join()
    log.warning("import process: the process that started it is gone; stopping")
    os._exit(1)


_child_engines: dict[str, Any] = {}


def _child_sessions(database_url: str) -> sessionmaker[Session]:
    from ivr.db.base import make_engine, make_session_factory

    engine = _child_engines.get(database_url)
    if engine is None:  # kept between runs: one a minute would rebuild it for nothing
        engine = _child_engines[database_url] = make_engine(database_url)
    return make_session_factory(engine)


def _ladder_in_child(database_url: str, default_timezone: str, now: dt.datetime) -> Any:
    """Runs in the import process: one ladder pass (ivr.dialer.scheduler.ladder_tick's work)."""
    from ivr.dialer.ladder import advance_cases
    from ivr.dialer.policy import load_rules

    with _child_sessions(database_url)() as session:
        return advance_cases(session, load_rules(session, default_timezone), now, commit=True)


def _outlook_in_child(database_url: str, default_timezone: str, now: dt.datetime) -> Any:
    """Runs in the import process: the monitor's outlook (ivr.dialer.outlook)."""
    from ivr.dialer.outlook import outlook
    from ivr.dialer.policy import load_rules

    with _child_sessions(database_url)() as session:
        return outlook(session, load_rules(session, default_timezone), now)


def _runner(fn: Any, what: str, sessions: sessionmaker[Session], default_timezone: str) -> Any:
    url = _database_url(sessions)

    def run(now: dt.datetime) -> Any:
        try:
            return _process_pool().submit(fn, url, default_timezone, now).result()
        except concurrent.futures.process.BrokenProcessPool:
            log.error("the import process died during %s; the next one starts a new process", what)
            shutdown()
            raise

    return run


def ladder_runner(sessions: sessionmaker[Session], default_timezone: str) -> Any:
    """A ladder pass for `ivr run`'s scheduler that runs in the import process: a stage boundary
    or a lifecycle date moves every case at once (hundreds of thousands of rows of ORM work),
    which in the scheduler's thread would hold the GIL the calls need. Blocking (the scheduler's
    thread waits without holding the GIL); returns the LadderReport."""
    return _runner(_ladder_in_child, "a ladder pass", sessions, default_timezone)


def outlook_runner(sessions: sessionmaker[Session], default_timezone: str) -> Any:
    """The monitor's minute outlook (what is callable, and why not), run in the import process:
    it counts every case, about 1 s of CPU at 400,000 cases (measured), and in `ivr run`'s own
    process that second held the GIL every call's next command waits for. Blocking; returns the
    Outlook."""
    return _runner(_outlook_in_child, "an outlook", sessions, default_timezone)


def _process_pool() -> concurrent.futures.ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, initializer=_init_child, initargs=(logging.getLogger().getEffectiveLevel(),),
                mp_context=multiprocessing.get_context("spawn"))
        return _pool


def import_file(kind: str, sessions: sessionmaker[Session], path: Any, *, on_progress: Any = None,
                **options: Any) -> Any:
    """Blocking (for a worker thread): import the file at `path`; the ImportReport. When
    offloading, the import runs in the import process and the worker thread only waits (no GIL
    held); progress is then not reported while it runs, only the report at the end."""
    from ivr.billing.importer import import_accounts, import_payments

    if not _offload:
        fn = import_accounts if kind == "accounts" else import_payments
        return fn(sessions, path, on_progress=on_progress, **options)
    try:
        return _process_pool().submit(_import_file_in_child, kind, _database_url(sessions), str(path),
                                      options).result()
    except concurrent.futures.process.BrokenProcessPool:
        log.error("the import process died; the next import starts a new one")
        shutdown()
        raise


async def run_import(kind: str, sessions: sessionmaker[Session], data: bytes, *, settings: Any, today: dt.date,
                     filename: str) -> Any:
    """Import `data` (a CSV file's bytes) of `kind` ("accounts" or "payments"); the ImportReport.
    ImportFileError and the others propagate as they do in the CLI."""
    if not _offload:
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(_import_here, kind, sessions, settings, data, today, filename)
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(_process_pool(), _import_in_child, kind, _database_url(sessions), settings, data,
                                          today, filename)
    except concurrent.futures.process.BrokenProcessPool:
        # the import process died (killed, out of memory): a new one next time, this one fails
        log.error("the import process died; the next import starts a new one")
        shutdown()
        raise
