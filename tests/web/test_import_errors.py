"""Files the importer cannot read are a clear 400/422 on the upload form and in the API (never a
500), and a broken record in a readable file is one bad row, with every good row kept."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from ivr.db.models import Account
from ivr.wiring import Database
from tests.billing.test_import_broken import STRAY_QUOTE, utf8_file_with_one_cp1251_line

from .conftest import Browser
from .test_import_api import _upload, api, token  # noqa: F401 (fixtures)

UNREADABLE = [
    pytest.param(b"", 400, "файл пустой", id="empty"),
    pytest.param("Лицевой счёт;ФИО\n1;Иванов\n".encode("utf-16"), 400, "UTF-16", id="utf16"),
    pytest.param(b"PK\x03\x04" + bytes(range(256)) * 4, 400, "Excel workbook", id="xlsx"),
    pytest.param(utf8_file_with_one_cp1251_line(), 400, "line(s) 6 are not UTF-8", id="mixed-encodings"),
]


@pytest.mark.parametrize(("content", "status", "message"), UNREADABLE)
def test_upload_of_an_unreadable_file_shows_why_on_the_form(db: Database, as_admin: Browser, content: bytes,
                                                            status: int, message: str) -> None:
    response = _upload(as_admin, "accounts", content, filename="billing.xlsx")
    assert response.status_code == status
    assert 'role="alert"' in response.text and "billing.xlsx: ничего не загружено" in response.text
    assert message in response.text.replace("&#39;", "'")
    assert 'id="import-form"' in response.text  # the form is there to try again


def test_upload_without_known_columns_asks_for_them_in_the_preview(db: Database, as_admin: Browser) -> None:
    """A header the defaults do not know is no refusal any more (issue 14): the preview names the
    fields still without a column, and the import cannot be confirmed until they have one."""
    response = _upload(as_admin, "accounts", b"foo;bar\n1;2\n")
    assert response.status_code == 200 and 'id="preview-form"' in response.text
    assert "Не выбран столбец для: Лицевой счёт, ФИО абонента, Телефон, Сумма долга." in response.text
    assert 'id="confirm" disabled' in response.text
    with db.sessions() as s:
        assert list(s.scalars(select(Account.external_id))) == []


def test_upload_with_a_stray_quote_keeps_the_rows_after_it(db: Database, as_admin: Browser) -> None:
    response = _upload(as_admin, "accounts", STRAY_QUOTE.encode("cp1251"))
    assert response.status_code == 200
    assert '<dd id="rows-ok">3</dd>' in response.text and '<dd id="rows-bad">1</dd>' in response.text
    table = response.text.split('id="bad-rows"')[1].split("</table>")[0]
    assert '<td class="num">3</td>' in table and "кавычка открыта и не закрыта" in table
    with db.sessions() as s:
        assert sorted(s.scalars(select(Account.external_id))) == ["B-1", "B-3", "B-4"]


@pytest.mark.parametrize("kind", ["accounts", "payments"])
def test_api_objects_without_known_fields_are_a_json_422(api: Any, kind: str) -> None:  # noqa: F811
    response = api.post(f"/api/v1/{kind}", json=[{"foo": "1"}])
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"].startswith(f"nothing imported: missing required column(s) for {kind}")


def test_api_binary_value_is_a_json_400(api: Any) -> None:  # noqa: F811
    response = api.post("/api/v1/accounts", json=[{"external_id": "X\u0000", "holder_name": "x", "phones": "1",
                                                   "balance": "1"}])
    assert response.status_code == 400 and "NUL" in response.json()["error"]


def test_api_huge_value_is_one_bad_row(api: Any, db: Database) -> None:  # noqa: F811
    rows = [
        {"external_id": "H-1", "holder_name": "Я" * 200_000, "phones": "+79161112233", "balance": "10"},
        {"external_id": "H-2", "holder_name": "Петров Пётр", "phones": "+79161112234", "balance": "10"},
    ]
    response = api.post("/api/v1/accounts", json=rows)
    assert response.status_code == 422
    body = response.json()
    assert [(e["line"], e["reason"]) for e in body["errors"]] == [(2, "unreadable record: a field longer than 128 KB")]
    assert body["rows_ok"] == 1
    with db.sessions() as s:
        assert list(s.scalars(select(Account.external_id))) == ["H-2"]
