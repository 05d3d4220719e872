"""A throw-away PostgreSQL schema, for tests and benchmarks that must not touch real data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Engine

from ivr.db.base import make_engine


@contextmanager
def scratch_schema(url: str, prefix: str) -> Iterator[tuple[Engine, str]]:
    """An engine whose search_path is a new schema `<prefix>_<random>`; the schema and everything
    in it is dropped on exit."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
        try:
            yield engine, schema
        finally:
            engine.dispose()
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()
