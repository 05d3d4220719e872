"""Imports started from the web UI or the API run in a separate process when the web UI shares
its process with the calls (ivr.jobs, issue 12)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from ivr import jobs
from ivr.billing.importer import ImportFileError
from ivr.billing.wizard import FixedColumns, build_resolved
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


def test_the_wizards_confirmed_file_imports_in_the_import_process_with_its_mapping(
        db: Database, offloaded: None, tmp_path: Path) -> None:
    """The import wizard's confirm (ivr.web.admin_import) goes through jobs.import_file: its
    chosen mapping (FixedColumns) crosses to the import process and is applied there."""
    path = tmp_path / "upload.csv"
    # the file's own column names, mapped by hand: "Абонент" is the name, "Моб." the phone
    path.write_text("ЛС;Абонент;Моб.;Долг\nW-1;Сидоров;+79161234569;500\n", encoding="utf-8")
    header = ["ЛС", "Абонент", "Моб.", "Долг"]
    resolved, twice = build_resolved("accounts", header, {"external_id": ["ЛС"], "holder_name": ["Абонент"],
                                                          "phones": ["Моб."], "balance": ["Долг"]})
    assert not twice
    report = jobs.import_file("accounts", db.sessions, path, settings=Settings(), today=dt.date(2026, 11, 22),
                              columns=FixedColumns(resolved, header), filename="upload.csv",
                              on_progress=lambda done, size: None)
    assert (report.rows_ok, report.created) == (1, 1)
    with db.sessions() as s:
        assert s.scalar(select(Account.external_id)) == "W-1"
    assert jobs._pool is not None and os.getpid() not in list(jobs._pool._processes)  # type: ignore[union-attr]


def test_ivr_runs_ladder_pass_runs_in_the_import_process_and_stages_the_new_cases(db: Database, tmp_path: Path) -> None:
    """`ivr run` (start_services(isolate=True)) hands every ladder pass to the import process: after
    a big import it examines every new case, ORM work that would hold the calls' GIL."""
    from ivr.billing.importer import import_accounts
    from ivr.db.models import DebtCase
    from tests.service.harness import accounts_csv

    today = dt.date.today()
    path = tmp_path / "accounts.csv"
    accounts_csv(path, 3, today=today)
    import_accounts(db.sessions, path, settings=Settings(), today=today)
    with db.sessions.begin() as s:  # the importer staged them; unstaged, the pass has work to do
        s.execute(update(DebtCase).values(stage_code=None))
    try:
        run = jobs.ladder_runner(db.sessions, "Europe/Moscow")
        report = run(dt.datetime.now(dt.UTC))
        assert jobs._pool is not None and os.getpid() not in list(jobs._pool._processes)  # type: ignore[union-attr]
    finally:
        jobs.shutdown()
    assert report.examined >= 3 and report.changed == 3 and report.failed == 0
    with db.sessions() as s:
        staged = s.scalar(select(func.count()).select_from(DebtCase).where(DebtCase.stage_code.is_not(None)))
    assert staged == 3


def test_ivr_runs_minute_outlook_is_computed_in_the_import_process(db: Database, tmp_path: Path) -> None:
    """The monitor's outlook counts every case (about 1 s of CPU at 400,000): `ivr run` has it
    computed in the import process; the same figures come back."""
    from ivr.billing.importer import import_accounts
    from ivr.dialer.outlook import outlook
    from ivr.dialer.policy import load_rules
    from tests.service.harness import accounts_csv

    today = dt.date.today()
    path = tmp_path / "accounts.csv"
    accounts_csv(path, 4, today=today)
    import_accounts(db.sessions, path, settings=Settings(), today=today)
    now = dt.datetime.now(dt.UTC)
    try:
        there = jobs.outlook_runner(db.sessions, "Europe/Moscow")(now)
        assert jobs._pool is not None and os.getpid() not in list(jobs._pool._processes)  # type: ignore[union-attr]
    finally:
        jobs.shutdown()
    with db.sessions() as s:
        here = outlook(s, load_rules(s, "Europe/Moscow"), now)
    assert there.open_cases == 4 and there == here
