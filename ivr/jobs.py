"""Heavy work the web UI and the API start, kept away from the calls (issue 12).

In `ivr run` the web UI shares its process with the FastAGI server. A billing import of hundreds
of thousands of rows is seconds of pure-Python CPU: in a worker thread it still holds the GIL,
and every call's next command waits behind it (a 50,000-row upload raised the call turnaround
p99 from 49 ms to 2.0 s). So when `offload_imports()` was called (runtime.start_services does it
when the web UI and FastAGI share a process), imports run in a separate **process** (one,
spawned once and reused; spawn, not fork: nothing of the parent's event loop, threads or
database connections is inherited) with its own database engine. `ivr web` alone and the tests
keep the in-process thread pool: there are no calls to protect there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import io
import logging
import multiprocessing
import threading
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

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


def _process_pool() -> concurrent.futures.ProcessPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ProcessPoolExecutor(max_workers=1,
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
