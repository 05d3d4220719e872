"""Storage: SQLAlchemy 2 models and session helpers."""

from ivr.db.base import Base, make_engine, make_session_factory, create_all

__all__ = ["Base", "make_engine", "make_session_factory", "create_all"]
