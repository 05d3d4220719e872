"""Column maps: default Russian/English headers, loose matching, user overrides."""

from __future__ import annotations

import pytest

from ivr.billing.columns import ColumnError, ColumnMap, ColumnMapError, normalize_header


def test_russian_headers_resolve():
    header = ["Лицевой счёт", "ФИО", "Телефон", "Сумма долга", "Валюта", "Дата платежа",
              "Дата блокировки", "Часовой пояс", "Язык", "Услуга", "Тариф"]
    cols = ColumnMap.default().resolve("accounts", header)
    assert cols.index == {
        "external_id": 0, "holder_name": 1, "phones": 2, "balance": 3, "currency": 4, "due_date": 5,
        "block_date": 6, "timezone": 7, "language": 8, "service_name": 9, "tariff": 10,
    }
    assert cols.phones == (2,) and cols.width == 11


def test_english_headers_and_loose_matching():
    header = ["EXTERNAL_ID", "holder", " Phones ", "balance", "due-date", "Block Date", "extra"]
    cols = ColumnMap.default().resolve("accounts", header)
    assert cols.index["external_id"] == 0 and cols.index["due_date"] == 4 and cols.index["block_date"] == 5
    assert "extra" not in cols.index.values()
    assert normalize_header("Лицевой  СЧЕТ") == normalize_header("лицевой_счёт") == "лицевой счет"


def test_several_phone_columns_in_priority_order():
    header = ["account", "ФИО", "Телефон 2", "Сумма долга", "Телефон 1", "phone3"]
    cols = ColumnMap.default().resolve("accounts", header)
    # by the alias order ("Телефон" before "phone"), then by the number in the header
    assert cols.phones == (4, 2, 5)
    cols = ColumnMap.default().resolve("accounts", ["id", "ФИО", "Тел.", "Сумма долга", "Тел. 2"])
    assert cols.phones == (2, 4)


def test_missing_required_columns_are_named():
    with pytest.raises(ColumnError) as info:
        ColumnMap.default().resolve("accounts", ["Лицевой счёт", "ФИО", "Адрес"])
    text = str(info.value)
    assert "phones" in text and "balance" in text and "Адрес" in text and "--columns" in text


def test_payments_headers():
    cols = ColumnMap.default().resolve("payments", ["Номер платежа", "Лицевой счет", "Сумма", "Дата платежа"])
    assert cols.index == {"payment_id": 0, "account": 1, "amount": 2, "paid_on": 3}


def test_toml_override_replaces_names_for_that_field(tmp_path):
    path = tmp_path / "columns.toml"
    path.write_text(
        '[accounts]\nexternal_id = "Договор №"\nphones = ["Моб. телефон", "Дом. телефон"]\n'
        '[payments]\npayment_id = "Документ"\n',
        encoding="utf-8",
    )
    cmap = ColumnMap.from_file(path)
    header = ["Дом. телефон", "Договор №", "ФИО", "Моб. телефон", "Сумма долга", "Лицевой счёт"]
    cols = cmap.resolve("accounts", header)
    assert cols.index["external_id"] == 1  # not "Лицевой счёт": the user named the column
    assert cols.phones == (3, 0)  # the order the user gave: mobile first
    assert cmap.resolve("payments", ["Документ", "Лицевой счёт", "Сумма", "Дата"]).index["payment_id"] == 0


def test_json_override_and_shared_keys(tmp_path):
    path = tmp_path / "columns.json"
    path.write_text('{"currency": "Код валюты", "payments": {"amount": ["Оплачено"]}}', encoding="utf-8")
    cmap = ColumnMap.from_file(path)
    assert cmap.fields["accounts"]["currency"] == ("Код валюты",)
    assert cmap.fields["payments"]["currency"] == ("Код валюты",)
    assert cmap.fields["payments"]["amount"] == ("Оплачено",)


@pytest.mark.parametrize(("text", "message"), [
    ('[accounts]\nfoo = "x"\n', "unknown field 'foo'"),
    ('[accounts]\nexternal_id = 5\n', "expected a column name"),
    ("[accounts\n", "columns.toml"),
    ('accounts = "x"\n', "must be a table"),
])
def test_bad_column_maps(tmp_path, text, message):
    path = tmp_path / "columns.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ColumnMapError, match=message):
        ColumnMap.from_file(path)


def test_missing_column_map_file(tmp_path):
    with pytest.raises(ColumnMapError, match="cannot read"):
        ColumnMap.from_file(tmp_path / "nope.toml")
