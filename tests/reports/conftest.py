"""Fixtures: the known history of tests/reports/history.py on SQLite only, or on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from ivr.wiring import Database
from tests.reports.history import History, build_history


@pytest.fixture
def history_db(db: Database) -> Database:
    """The known history on SQLite."""
    with db.sessions.begin() as s:
        build_history(s)
    return db


@pytest.fixture
def any_history_db(any_db: Database) -> Database:
    """The known history on SQLite and on PostgreSQL."""
    with any_db.sessions.begin() as s:
        build_history(s)
    return any_db


@pytest.fixture
def hs(history_db: Database) -> Iterator[Session]:
    """A session on the SQLite history."""
    with history_db.sessions() as s:
        yield s


@pytest.fixture
def any_hs(any_history_db: Database) -> Iterator[Session]:
    """A session on the history, once per database."""
    with any_history_db.sessions() as s:
        yield s


__all__ = ["History"]
