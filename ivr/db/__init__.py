"""Storage: SQLAlchemy 2 models and session helpers."""

from ivr.db.base import Base, create_all, make_engine, make_session_factory

__all__ = ["Base", "make_engine", "make_session_factory", "create_all"]
