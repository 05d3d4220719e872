"""Shared fixtures.

`db` is a fresh SQLite database per test (fast). `any_db` runs the test twice: on SQLite and on
PostgreSQL (IVR_TEST_PG_URL, started by .ci/run). In CI a missing PostgreSQL is an error, never a
skip; on a developer machine without it the PostgreSQL half is skipped with a loud reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ivr.db.base import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.scratch import scratch_schema
from ivr.db.seed import seed
from ivr.wiring import Database

REPO = Path(__file__).resolve().parent.parent
TRANSCRIPTS = (REPO.parent / "shared" / "asterisk-transcripts")
if not TRANSCRIPTS.is_dir():  # a clone elsewhere: shared/ beside the checkout
    TRANSCRIPTS = Path(os.environ.get("IVR_TRANSCRIPTS", str(TRANSCRIPTS)))


def _pg_url() -> str | None:
    url = os.environ.get("IVR_TEST_PG_URL")
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail("IVR_TEST_PG_URL is not set in CI: .ci/run must start PostgreSQL")
    return None


def _make_db(kind: str, tmp_path: Path) -> Iterator[Database]:
    if kind == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'test.sqlite3'}")
        upgrade(engine)
        yield Database(engine, make_session_factory(engine))
        engine.dispose()
        return
    url = _pg_url()
    if url is None:
        pytest.skip("PostgreSQL not available (set IVR_TEST_PG_URL); CI always runs it")
    # one schema per test keeps tests independent and lets them run in parallel
    with scratch_schema(url, "t") as (engine, _schema):
        upgrade(engine)
        yield Database(engine, make_session_factory(engine))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A migrated, seeded SQLite database."""
    for database in _make_db("sqlite", tmp_path):
        with database.sessions.begin() as s:
            seed(s)
        yield database


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The same test on SQLite and on PostgreSQL."""
    for database in _make_db(request.param, tmp_path):
        with database.sessions.begin() as s:
            seed(s)
        yield database


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    with db.sessions() as s:
        yield s


@pytest.fixture
def sessions(db: Database) -> sessionmaker[Session]:
    return db.sessions


@pytest.fixture
def transcripts() -> Path:
    if not TRANSCRIPTS.is_dir():
        pytest.fail(f"Asterisk transcripts not found at {TRANSCRIPTS} (set IVR_TRANSCRIPTS)")
    return TRANSCRIPTS
