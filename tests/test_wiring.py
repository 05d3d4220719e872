"""Building the database from settings: a new SQLite file is private to its owner."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.config import Settings
from ivr.wiring import open_database


@pytest.fixture
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)  # what most shells have: SQLite alone would create the file 0644
    yield
    os.umask(old)


def test_new_sqlite_file_and_its_wal_are_0600(tmp_path: Path, usual_umask: None) -> None:
    path = tmp_path / "ivr.sqlite3"
    db = open_database(Settings(database_url=f"sqlite:///{path}"))
    try:
        with db.engine.connect() as conn:  # WAL mode: -wal and -shm exist while connected
            conn.exec_driver_sql("SELECT count(*) FROM users")
            made = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
            assert path in made and len(made) == 3
            for file in made:
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    finally:
        db.engine.dispose()


def test_db_upgrade_command_creates_a_private_file(tmp_path: Path, usual_umask: None,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from ivr.cli import main

    path = tmp_path / "fresh.sqlite3"
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{path}")
    assert main(["--env-file", str(tmp_path / "none.env"), "db", "upgrade"]) == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_existing_readable_file_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "old.sqlite3"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING, logger="ivr.wiring"):
        open_database(Settings(database_url=f"sqlite:///{path}")).engine.dispose()
    assert "readable by others" in caplog.text and str(path) in caplog.text
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the admin's file: reported, not changed
