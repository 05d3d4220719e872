"""API token scopes: import tokens push, export tokens read, each refused the other's endpoints;
tokens from before scopes existed keep both."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from ivr.db.base import make_engine
from ivr.db.migrate import upgrade
from ivr.db.models import Account, ApiToken
from ivr.web import auth
from ivr.wiring import Database

ROW = {"external_id": "S-1", "holder_name": "Иванов Иван", "phones": "+79161112233", "balance": "100",
       "due_date": "2025-11-10"}


@pytest.fixture
def client_for(app: Any, db: Database) -> Iterator[Any]:
    from starlette.testclient import TestClient

    clients: list[Any] = []

    def make(scopes: str) -> Any:
        with db.sessions.begin() as s:
            token = auth.create_api_token(s, f"t-{scopes}", scopes)[1]
        client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.close()


def test_export_token_reads_but_cannot_import(client_for: Any, db: Database) -> None:
    reader = client_for("export")
    for path in ("/api/v1/outcomes", "/api/v1/blocklist", "/api/v1/callbacks"):
        assert reader.get(path).status_code == 200, path
    refused = reader.post("/api/v1/accounts", json=[ROW])
    assert refused.status_code == 403
    assert "import" in refused.json()["error"]
    assert reader.post("/api/v1/payments", json=[{"payment_id": "P", "account": "S-1", "amount": "1"}]).status_code == 403
    with db.sessions() as s:
        assert s.scalars(select(Account)).all() == []  # nothing was written


def test_import_token_pushes_but_cannot_read(client_for: Any, db: Database) -> None:
    writer = client_for("import")
    assert writer.post("/api/v1/accounts", json=[ROW]).status_code == 200
    for path in ("/api/v1/outcomes", "/api/v1/blocklist", "/api/v1/callbacks"):
        refused = writer.get(path)
        assert refused.status_code == 403, path
        assert "export" in refused.json()["error"]


def test_token_with_both_scopes_does_both(client_for: Any) -> None:
    both = client_for("import,export")
    assert both.post("/api/v1/accounts", json=[ROW]).status_code == 200
    assert both.get("/api/v1/outcomes").json()["count"] == 0


def test_scopes_are_validated(db: Database) -> None:
    with db.sessions.begin() as s:
        for bad in ("", "admin", "import,delete"):
            with pytest.raises(auth.AuthError, match="scopes"):
                auth.create_api_token(s, "x", bad)
        row, _token = auth.create_api_token(s, "y", ["EXPORT", " import "])
        assert row.scopes == "import,export"


def test_tokens_from_before_scopes_keep_both(tmp_path: Path) -> None:
    """The migration gives existing tokens import and export: what they could do before."""
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO api_tokens (name, token_hash, created_at) VALUES ('old', 'h', :t)"),
                     {"t": dt.datetime(2025, 1, 1)})
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(select(ApiToken.scopes).where(ApiToken.name == "old")).scalar_one() == "import,export"
    engine.dispose()
