"""Imports on SQLite let a waiting writer (the call facts) in between their transactions: each
batch's commit is followed by ivr.db.sqlite_lock.yield_write_lock, outside any transaction.
The mechanism itself is tested in tests/db/test_sqlite_lock.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import ivr.billing.importer as importer
from ivr.db.models import Account, Payment
from tests.billing.conftest import NOW, TODAY


def _record_yields(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool, int]]:
    """(was a transaction open, accounts committed) at each yield."""
    seen: list[tuple[bool, int]] = []
    real = importer.yield_write_lock

    def spy(bind: Any, **kw: Any) -> float:
        engine = getattr(bind, "engine", bind)
        dbapi = bind.connection.dbapi_connection if hasattr(bind, "connection") else None
        with engine.connect() as other:  # what another connection sees: committed rows only
            committed = other.execute(select(func.count()).select_from(Account)).scalar_one()
        seen.append((bool(dbapi is not None and dbapi.in_transaction), committed))
        return real(bind, **kw)

    monkeypatch.setattr(importer, "yield_write_lock", spy)
    return seen


def test_the_account_import_yields_after_every_batch(db, tmp_path: Path, settings, monkeypatch) -> None:
    seen = _record_yields(monkeypatch)
    before = len(_accounts(db))
    path = tmp_path / "accounts.csv"
    rows = [f"Y{i:04d};Иванов Иван;+7916{i:07d};100,00;10.11.2026" for i in range(25)]
    path.write_text("Лицевой счёт;ФИО;Телефон;Сумма долга;Дата платежа\n" + "\n".join(rows) + "\n", encoding="utf-8")
    report = importer.import_accounts(db.sessions, path, settings=settings, now=NOW, today=TODAY, batch_size=10,
                                      parallel=False)
    assert report.rows_ok == 25
    # three batches (10, 10, 5): a yield after each commit, never inside a transaction
    assert seen == [(False, before + 10), (False, before + 20), (False, before + 25)]


def test_the_payment_import_yields_after_every_batch(db, tmp_path: Path, settings, monkeypatch) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("Лицевой счёт;ФИО;Телефон;Сумма долга;Дата платежа\n"
                    "P1;Иванов Иван;+79160000001;1000,00;10.11.2026\n", encoding="utf-8")
    importer.import_accounts(db.sessions, path, settings=settings, now=NOW, today=TODAY)
    seen = _record_yields(monkeypatch)
    pays = tmp_path / "payments.csv"
    pays.write_text("Номер платежа;Лицевой счёт;Сумма;Дата платежа\n"
                    + "".join(f"PAY-{i};P1;10,00;{TODAY - dt.timedelta(days=1):%d.%m.%Y}\n" for i in range(5)),
                    encoding="utf-8")
    report = importer.import_payments(db.sessions, pays, settings=settings, now=NOW, today=TODAY, batch_size=2)
    assert report.created == 5
    assert len(seen) == 3 and not any(open_ for open_, _ in seen)
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Payment)) == 5


def _accounts(db) -> list[str]:
    with db.sessions() as s:
        return list(s.scalars(select(Account.external_id)))
