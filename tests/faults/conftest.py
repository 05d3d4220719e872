"""Fault scenarios (issue 15) on the simulator: each runs the product as `ivr run` assembles it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.db.seed import seed
from ivr.wiring import Database
from tests.conftest import _make_db


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ivr.dialer")


@pytest.fixture
def pg_db(tmp_path: Path) -> Iterator[Database]:
    """A migrated, seeded PostgreSQL database (own schema); missing PostgreSQL as in tests/conftest."""
    for database in _make_db("postgres", tmp_path):
        with database.sessions.begin() as s:
            seed(s)
        yield database
