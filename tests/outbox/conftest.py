"""`pg_db`: the PostgreSQL half of `any_db` alone, for what only PostgreSQL does (SKIP LOCKED)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.db.seed import seed
from ivr.wiring import Database
from tests.conftest import _make_db


@pytest.fixture
def pg_db(tmp_path: Path) -> Iterator[Database]:
    for database in _make_db("postgres", tmp_path):
        with database.sessions.begin() as s:
            seed(s)
        yield database
