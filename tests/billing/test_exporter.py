"""Exports back to billing: outcomes, the block list and callbacks, as CSV and JSON."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from sqlalchemy import select

from ivr.billing.exporter import (
    BLOCKLIST_FIELDS,
    CALLBACK_FIELDS,
    OUTCOME_FIELDS,
    export_blocklist,
    export_callbacks,
    export_outcomes,
    write_csv,
    write_json,
)
from ivr.db.models import (
    Account,
    BlockListEntry,
    CallAttempt,
    CallbackTask,
    DebtCase,
    Outcome,
    Reason,
    User,
)

T0 = dt.datetime(2026, 11, 10, 9, 0)
T1 = dt.datetime(2026, 11, 12, 9, 0)


def fill(session) -> None:
    """Two accounts, an outcome and a callback on each of two days, one blocked account."""
    reason = session.scalar(select(Reason).where(Reason.code == "service_quality"))
    operator = User(username="olga", password_hash="x", role="operator")
    session.add(operator)
    for n, when in ((1, T0), (2, T1)):
        acc = Account(external_id=f"A-{n}", holder_name=f"Абонент {n}", balance=Decimal("1800.50"),
                      block_date=dt.date(2026, 11, 25), language="ru")
        session.add(acc)
        session.flush()
        case = DebtCase(account_id=acc.id, opened_on=dt.date(2026, 11, 1), amount_initial=Decimal("1800.50"),
                        amount_owed=Decimal("1800.50"), stage_code="reminder")
        session.add(case)
        session.flush()
        attempt = CallAttempt(debt_case_id=case.id, account_id=acc.id, phone=f"+7916123456{n}",
                              stage_code="reminder", action_id=f"act-{n}", state="done", result="answered",
                              created_at=when, answered_at=when + dt.timedelta(seconds=20))
        session.add(attempt)
        session.flush()
        session.add(Outcome(attempt_id=attempt.id, debt_case_id=case.id, identity="confirmed",
                            kind="promise" if n == 1 else "reason", promise_date=dt.date(2026, 11, 20) if n == 1 else None,
                            reason_id=None if n == 1 else reason.id, created_at=when, updated_at=when))
        session.add(CallbackTask(account_id=acc.id, debt_case_id=case.id, attempt_id=attempt.id,
                                 reason_id=reason.id, queue=reason.route or "service", created_at=when, due_at=when,
                                 state="done" if n == 1 else "claimed", claimed_by=operator.id if n == 2 else None,
                                 result="resolved" if n == 1 else None, done_at=T1 + dt.timedelta(hours=1) if n == 1 else None))
        if n == 2:
            session.add(BlockListEntry(account_id=acc.id, debt_case_id=case.id, stage_code="blocked",
                                       amount_owed=Decimal("1800.50"), added_at=when))
    session.flush()


def test_outcomes_rows_and_since(any_db):
    with any_db.sessions.begin() as s:
        fill(s)
    with any_db.sessions() as s:
        rows = export_outcomes(s, None)
        assert [r["account"] for r in rows] == ["A-1", "A-2"]
        first, second = rows
        assert list(first) == list(OUTCOME_FIELDS)
        assert (first["phone"], first["kind"], first["promise_date"], first["identity"]) == (
            "+79161234561", "promise", dt.date(2026, 11, 20), "confirmed")
        assert first["called_at"] == T0 + dt.timedelta(seconds=20)
        assert first["amount_owed"] == Decimal("1800.50") and first["stage"] == "reminder"
        assert second["reason_code"] == "service_quality"
        assert second["reason"] == s.scalar(select(Reason.labels).where(Reason.code == "service_quality"))["ru"]
        assert [r["account"] for r in export_outcomes(s, T0 + dt.timedelta(days=1))] == ["A-2"]


def test_blocklist_and_callbacks(db):
    with db.sessions.begin() as s:
        fill(s)
    with db.sessions() as s:
        blocked = export_blocklist(s)
        assert [(b["account"], b["amount_owed"], b["stage"], b["removed_at"]) for b in blocked] == [
            ("A-2", Decimal("1800.50"), "blocked", None)]
        assert export_blocklist(s, T1 + dt.timedelta(minutes=1)) == []
        entry = s.scalar(select(BlockListEntry))
        entry.removed_at = T1 + dt.timedelta(days=1)  # paid: billing may lift the restriction
        s.flush()
        assert export_blocklist(s) == []
        assert [b["account"] for b in export_blocklist(s, T1 + dt.timedelta(hours=2))] == ["A-2"]

        tasks = export_callbacks(s)
        assert [(t["account"], t["state"], t["claimed_by"]) for t in tasks] == [("A-1", "done", None), ("A-2", "claimed", "olga")]
        # since T1: A-2 was created then, A-1 was finished then
        assert len(export_callbacks(s, T1)) == 2
        assert [t["account"] for t in export_callbacks(s, T1 + dt.timedelta(minutes=30))] == ["A-1"]
        assert export_callbacks(s, T1 + dt.timedelta(hours=2)) == []


def test_csv_and_json_writers():
    rows = [{"account": "A-1", "amount": Decimal("1800.5"), "day": dt.date(2026, 11, 20),
             "at": dt.datetime(2026, 11, 10, 9, 0, 5), "flag": True, "none": None, "name": "Иванов, Иван"}]
    buf = io.StringIO()
    assert write_csv(rows, buf, delimiter=";") == 1
    assert buf.getvalue() == ("account;amount;day;at;flag;none;name\r\n"
                              "A-1;1800.50;2026-11-20;2026-11-10 09:00:05;1;;Иванов, Иван\r\n")
    parsed = list(csv.DictReader(io.StringIO(buf.getvalue()), delimiter=";"))
    assert parsed[0]["name"] == "Иванов, Иван"
    buf = io.StringIO()
    assert write_json(rows, buf) == 1
    assert json.loads(buf.getvalue()) == [{"account": "A-1", "amount": "1800.50", "day": "2026-11-20",
                                          "at": "2026-11-10T09:00:05Z", "flag": True, "none": None,
                                          "name": "Иванов, Иван"}]
    buf = io.StringIO()
    assert write_csv([], buf, fields=BLOCKLIST_FIELDS) == 0
    assert buf.getvalue().strip() == ",".join(BLOCKLIST_FIELDS)
    assert write_csv([], io.StringIO()) == 0
    with pytest.raises(TypeError):
        write_json([{"x": object()}], io.StringIO())
    assert "task_id" in CALLBACK_FIELDS
