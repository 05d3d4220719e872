"""Build the collaborators from Settings. Only CLI entry points call this; everything else gets
its session factory, settings and clock passed in."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from ivr.config import Settings
from ivr.db.base import make_engine, make_session_factory
from ivr.db.migrate import upgrade
from ivr.db.seed import seed


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]


def open_database(settings: Settings, *, migrate: bool = True, seed_defaults: bool = True) -> Database:
    engine = make_engine(settings.database_url)
    if migrate:
        upgrade(engine)
    sessions = make_session_factory(engine)
    if seed_defaults:
        with sessions.begin() as session:
            seed(session)
    return Database(engine, sessions)
