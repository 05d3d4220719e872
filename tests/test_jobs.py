"""Imports started from the web UI or the API run in a separate process when the web UI shares
its process with the calls (ivr.jobs, issue 12)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from ivr import jobs
from ivr.billing.importer import ImportFileError
from ivr.config import Settings
from ivr.db.models import Account, ImportRun
from ivr.wiring import Database

CSV = "Лицевой счёт;ФИО;Телефон;Сумма долга\nJ-1;Иванов Иван;+79161234567;1800,50\nJ-2;Петров Пётр;+79161234568;990\n"


@pytest.fixture
def offloaded() -> Iterator[None]:
    jobs.offload_imports()
    try:
        yield
    finally:
        jobs.offload_imports(False)
        jobs.shutdown()


async def test_an_offloaded_import_runs_in_another_process_and_writes_the_same_rows(db: Database, offloaded: None) -> None:
    report = await jobs.run_import("accounts", db.sessions, CSV.encode(), settings=Settings(),
                                   today=dt.date(2026, 11, 22), filename="web.csv")
    assert (report.rows_ok, report.created, report.rows_bad) == (2, 2, 0)
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Account)) == 2
        run = s.scalar(select(ImportRun))
        assert run is not None and run.filename == "web.csv"
    assert jobs._pool is not None
    child_pids = list(jobs._pool._processes)  # type: ignore[union-attr]
    assert child_pids and os.getpid() not in child_pids


async def test_an_unreadable_file_fails_as_in_the_cli(db: Database, offloaded: None) -> None:
    with pytest.raises(ImportFileError):
        await jobs.run_import("accounts", db.sessions, b"no;known;columns\n1;2;3\n", settings=Settings(),
                              today=dt.date(2026, 11, 22), filename="bad.csv")


async def test_without_offloading_the_import_runs_here(db: Database) -> None:
    assert not jobs.offloading()
    report = await jobs.run_import("accounts", db.sessions, CSV.encode(), settings=Settings(),
                                   today=dt.date(2026, 11, 22), filename="web.csv")
    assert report.created == 2 and jobs._pool is None
