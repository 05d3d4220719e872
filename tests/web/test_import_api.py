"""Billing import by upload (bad-row report with line numbers) and the JSON API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from ivr.db.models import Account, BlockListEntry, CallbackTask, DebtCase, Payment, utcnow
from ivr.web import auth
from ivr.wiring import Database

from .conftest import Browser, make_account, make_robot_call, make_task

ACCOUNTS_CSV = (
    "Лицевой счёт;ФИО;Телефон;Сумма долга;Срок оплаты;Дата блокировки\n"
    "L-1;Иванов Иван;+7 916 111-22-33;1 800,50;10.11.2025;25.11.2025\n"
    "L-2;Петрова Анна;;950,00;10.11.2025;25.11.2025\n"
    "L-3;Сидоров Олег;+7 916 222-33-44;много;10.11.2025;25.11.2025\n"
    "L-4;Орлова Вера;+7 916 333-44-55;1200;31.02.2025;25.11.2025\n"
    "L-5;Козлов Илья;+7 916 444-55-66;700;10.11.2025;\n"
)


def _upload(b: Browser, kind: str, content: bytes, filename: str = "billing.csv") -> Any:
    # through the import wizard (issue 14): upload, preview as detected, confirm, wait
    from .test_import_wizard import upload_and_confirm

    return upload_and_confirm(b, kind, content, filename)


def test_upload_shows_bad_rows_with_line_numbers(db: Database, as_admin: Browser) -> None:
    response = _upload(as_admin, "accounts", ACCOUNTS_CSV.encode("cp1251"))
    assert response.status_code == 200
    page = response.text
    assert '<dd id="rows-ok">2</dd>' in page and '<dd id="rows-bad">3</dd>' in page
    table = page.split('id="bad-rows"')[1].split("</table>")[0]
    lines = [int(x) for x in __import__("re").findall(r'<td class="num">(\d+)</td>', table)]
    assert lines == [3, 4, 5]  # header is line 1
    assert "много" in table and "31.02.2025" in table
    with db.sessions() as s:  # good rows were kept
        assert sorted(s.scalars(select(Account.external_id))) == ["L-1", "L-5"]
    again = _upload(as_admin, "accounts", ACCOUNTS_CSV.encode("cp1251"))
    assert "уже загружали" in again.text  # same file again: nothing changes, and it says so


def test_upload_needs_a_file(as_admin: Browser) -> None:
    response = as_admin.client.post("/admin/import", data={"csrf": as_admin.csrf, "kind": "accounts"})
    assert response.status_code == 400 and "Выберите файл" in response.text
    assert _upload(as_admin, "clients", b"x").status_code == 400


def test_payments_upload(db: Database, as_admin: Browser) -> None:
    _upload(as_admin, "accounts", ACCOUNTS_CSV.encode("cp1251"))
    payments = "payment_id,account,amount,paid_on\nP-1,L-1,1800.50,2025-11-18\nP-2,NOPE,10,2025-11-18\n"
    page = _upload(as_admin, "payments", payments.encode()).text
    assert '<dd id="rows-ok">1</dd>' in page and '<dd id="rows-bad">1</dd>' in page
    with db.sessions() as s:
        assert s.scalars(select(Payment.amount)).one() == Decimal("1800.50")


# --- API ----------------------------------------------------------------------------------------

@pytest.fixture
def token(db: Database) -> str:
    with db.sessions.begin() as s:
        return auth.create_api_token(s, "billing")[1]


@pytest.fixture
def api(app: Any, token: str) -> Any:
    from starlette.testclient import TestClient

    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    yield client
    client.close()


def test_api_rejects_missing_wrong_and_revoked_tokens(app: Any, db: Database, token: str) -> None:
    from starlette.testclient import TestClient

    client = TestClient(app)
    assert client.get("/api/v1/outcomes").status_code == 401
    bad = client.get("/api/v1/outcomes", headers={"Authorization": "Bearer ivr_wrong"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    assert "error" in bad.json()
    assert client.get("/api/v1/outcomes", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with db.sessions.begin() as s:
        s.scalars(select(auth.ApiToken)).one().revoked_at = utcnow()
    assert client.get("/api/v1/outcomes", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    # a logged-in web session is not an API credential
    assert client.post("/api/v1/accounts", json=[]).status_code == 401


def test_api_post_accounts(api: Any, db: Database) -> None:
    rows = [
        {"external_id": "J-1", "holder_name": "Иванов Иван", "phones": ["+79161112233", "+74951112233"],
         "balance": "1800.50", "due_date": "2025-11-10", "block_date": "2025-11-25", "language": "ru"},
        {"external_id": "J-2", "holder_name": "Без Телефона", "phones": [], "balance": "10"},
        {"external_id": "J-3", "holder_name": "Плохая Сумма", "phones": "+79162223344", "balance": "lots"},
    ]
    response = api.post("/api/v1/accounts", json=rows)
    assert response.status_code == 422
    body = response.json()
    assert (body["rows_ok"], body["created"], body["rows_bad"]) == (1, 1, 2)
    assert [e["line"] for e in body["errors"]] == [3, 4]
    assert "2 row(s) rejected" in body["error"]
    with db.sessions() as s:
        account = s.scalars(select(Account).where(Account.external_id == "J-1")).one()
        assert [p.number for p in account.phones] == ["+79161112233", "+74951112233"]
        assert s.scalars(select(DebtCase.amount_owed).where(DebtCase.account_id == account.id)).one() == Decimal("1800.50")
    again = api.post("/api/v1/accounts", json=rows[:1])
    assert again.status_code == 200
    assert (again.json()["unchanged"], again.json()["created"]) == (1, 0)


def test_api_post_payments(api: Any, db: Database) -> None:
    api.post("/api/v1/accounts", json=[{"external_id": "J-1", "holder_name": "Иванов", "phones": "+79161112233",
                                        "balance": "100", "due_date": "2025-11-10"}])
    response = api.post("/api/v1/payments", json={"items": [
        {"payment_id": "PAY-1", "account": "J-1", "amount": "100.00", "paid_on": "2025-11-18"}]})
    assert response.status_code == 200, response.json()
    assert response.json()["created"] == 1
    with db.sessions() as s:
        assert s.scalars(select(Payment.external_id)).one() == "PAY-1"


@pytest.mark.parametrize(("body", "status"), [(b"not json", 400), (b'{"a": 1}', 400), (b"[]", 400),
                                              (b"[1, 2]", 400), (b'[{"external_id": {"x": 1}}]', 400)])
def test_api_bad_bodies(api: Any, body: bytes, status: int) -> None:
    response = api.post("/api/v1/accounts", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.json()["error"]


def test_api_exports(api: Any, db: Database) -> None:
    with db.sessions.begin() as s:
        account = make_account(s, "E-1")
        attempt = make_robot_call(s, account)
        task = make_task(s, account, attempt=attempt)
        task.created_at = dt.datetime(2025, 11, 19, 9, 0)
        s.add(BlockListEntry(account_id=account.id, debt_case_id=account.cases[0].id, stage_code="blocked",
                             amount_owed=Decimal("1800.50")))
    outcomes = api.get("/api/v1/outcomes").json()
    assert outcomes["count"] == 1
    item = outcomes["items"][0]
    assert (item["account"], item["reason_code"], item["identity"], item["amount_owed"]) == (
        "E-1", "service_quality", "confirmed", "1800.50")
    assert api.get("/api/v1/outcomes", params={"since": "2999-01-01"}).json()["count"] == 0
    assert api.get("/api/v1/outcomes", params={"since": "2000-01-01T00:00:00Z"}).json()["count"] == 1
    blocklist = api.get("/api/v1/blocklist").json()
    assert [b["account"] for b in blocklist["items"]] == ["E-1"]
    callbacks = api.get("/api/v1/callbacks", params={"since": "2025-11-19T08:00:00"}).json()
    assert [(c["account"], c["queue"], c["state"]) for c in callbacks["items"]] == [("E-1", "quality", "open")]
    assert api.get("/api/v1/callbacks", params={"since": "2025-11-20"}).json()["count"] == 0
    bad = api.get("/api/v1/callbacks", params={"since": "yesterday"})
    assert bad.status_code == 400 and "since" in bad.json()["error"]
    assert api.get("/api/v1/nothing").status_code == 404
    with db.sessions() as s:
        assert s.scalar(select(CallbackTask.id)) is not None
