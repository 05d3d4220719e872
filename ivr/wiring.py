"""Build the collaborators from Settings. Only CLI entry points call this; everything else gets
its session factory, settings and clock passed in."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ivr.config import Settings
from ivr.db.base import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.seed import seed
from ivr.errors import StartupError


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]


def open_database(settings: Settings, *, migrate: bool = True, seed_defaults: bool = True) -> Database:
    """Engine, migrations and seed; an unreachable database is a StartupError naming it (with
    the password hidden), not a traceback."""
    engine = make_engine(settings.database_url)
    try:
        if migrate:
            upgrade(engine)
        sessions = make_session_factory(engine)
        if seed_defaults:
            with sessions.begin() as session:
                seed(session)
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig or exc).strip().splitlines()[0] if (exc.orig or exc) else type(exc).__name__
        where = make_url(settings.database_url).render_as_string(hide_password=True)
        raise StartupError(f"database {where} is unreachable: {reason} (check IVR_DATABASE_URL)") from None
    return Database(engine, sessions)
