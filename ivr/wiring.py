"""Build the collaborators from Settings. Only CLI entry points call this; everything else gets
its session factory, settings and clock passed in."""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ivr.config import Settings
from ivr.db.base import make_engine, make_session_factory
from ivr.errors import StartupError

log = logging.getLogger(__name__)


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for PostgreSQL and in-memory SQLite."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.database.startswith("file:"):  # URI form: leave it to the admin
        return None
    return Path(parsed.database)


def create_private(path: Path) -> None:
    """Create the SQLite file 0600 before SQLite does: it would create it world-readable (0644
    under the usual umask), and the database holds names, phone numbers and debts. SQLite gives
    its -wal and -shm files the database file's mode. An existing file is left alone, with a
    warning when others can read it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            log.warning("database file %s is readable by others (mode %o); chmod 600 it", path, mode)
        return
    os.close(fd)


def open_engine(url: str) -> Engine:
    """The engine for `url`; a SQLite file that does not exist yet is created 0600 first."""
    path = sqlite_file(url)
    if path is not None:
        create_private(path)
    return make_engine(url)


def open_database(settings: Settings, *, migrate: bool = True, seed_defaults: bool = True) -> Database:
    """Engine, migrations and seed; an unreachable database is a StartupError naming it (with
    the password hidden), not a traceback."""
    engine = open_engine(settings.database_url)
    try:
        if migrate:
            # imported here: Alembic is a tenth of a classic AGI process's start-up, which never migrates
            from ivr.db.migrate import upgrade

            upgrade(engine)
        sessions = make_session_factory(engine)
        if seed_defaults:
            from ivr.db.seed import seed

            with sessions.begin() as session:
                seed(session)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig or exc).strip().splitlines()[0] if (exc.orig or exc) else type(exc).__name__
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        raise StartupError(f"database {where} is unreachable: {reason} (check IVR_DATABASE_URL)") from None
    return Database(engine, sessions)
