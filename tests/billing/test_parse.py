"""Validation of single rows: every rejection names the line, the value and the reason."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ivr.billing.columns import ColumnMap
from ivr.billing.csvread import ValueProblem
from ivr.billing.parse import (
    AccountParser,
    PaymentParser,
    normalize_currency,
    normalize_language,
    normalize_timezone,
    parse_phones,
)

HEADER = ["Лицевой счёт", "ФИО", "Телефон", "Сумма долга", "Валюта", "Дата платежа",
          "Дата блокировки", "Часовой пояс", "Язык", "Услуга", "Тариф"]
GOOD = ["1001", "Иванов Иван Иванович", "8 (916) 123-45-67", "1 800,50", "RUB", "10.11.2026",
        "25.11.2026", "", "", "Охрана квартиры", "Базовый"]


@pytest.fixture
def parser() -> AccountParser:
    cols = ColumnMap.default().resolve("accounts", HEADER)
    return AccountParser(cols, region="RU", default_currency="RUB", default_language="ru")


def row_with(**changes: str) -> list[str]:
    fields = list(GOOD)
    for name, value in changes.items():
        fields[{"id": 0, "holder": 1, "phone": 2, "balance": 3, "currency": 4, "due": 5, "block": 6,
                "tz": 7, "lang": 8, "service": 9}[name]] = value
    return fields


def test_good_row(parser):
    row, problems = parser.parse(2, row_with())
    assert problems == []
    assert row is not None
    assert row.external_id == "1001" and row.holder_name == "Иванов Иван Иванович"
    assert row.balance == Decimal("1800.50") and row.currency == "RUB"
    assert row.due_date == dt.date(2026, 11, 10) and row.block_date == dt.date(2026, 11, 25)
    assert row.phones == ("+79161234567",) and row.country == "RU"
    assert row.timezone is None and row.language == "ru"


@pytest.mark.parametrize(("changes", "reason", "field"), [
    ({"id": ""}, "missing id", "external_id"),
    ({"id": "x" * 65}, "bad id 'xxxxxxxxxxxxxxxxxxxx...' (longer than 64 characters)", "external_id"),
    ({"holder": "  "}, "missing holder name", "holder_name"),
    ({"balance": ""}, "missing amount", "balance"),
    ({"balance": "много"}, "bad amount 'много' (not a number)", "balance"),
    ({"currency": "XYZ"}, "bad currency 'XYZ' (unknown currency)", "currency"),
    ({"due": "32.11.2026"}, "bad date '32.11.2026' (no such date)", "due_date"),
    ({"block": "25-11-2026"}, "bad date '25-11-2026' (expected DD.MM.YYYY or YYYY-MM-DD)", "block_date"),
    ({"tz": "Europe/Moskow"}, "unknown time zone 'Europe/Moskow' (not a zone name such as Europe/Moscow, МСК+4 or UTC+7)", "timezone"),
    ({"lang": "de"}, "unknown language 'de' (expected one of ru, uk, en)", "language"),
    ({"phone": ""}, "missing phone", "phones"),
    ({"phone": "12345"}, "bad phone '12345' (too short)", "phones"),
    ({"phone": "нет"}, "bad phone 'нет' (not a phone number)", "phones"),
])
def test_rejections(parser, changes, reason, field):
    row, problems = parser.parse(17, row_with(**changes))
    assert row is None
    assert [(p.line, p.reason, p.field) for p in problems] == [(17, reason, field)]
    assert str(problems[0]) == f"line 17: {reason}"


def test_wrong_column_count(parser):
    row, problems = parser.parse(5, GOOD[:9])
    assert row is None and problems[0].reason == "wrong column count: expected 11, got 9"
    row, problems = parser.parse(6, [*GOOD, "extra"])
    assert row is None and problems[0].reason == "wrong column count: expected 11, got 12"
    # trailing empty fields (a delimiter at the end of every row) are tolerated
    row, problems = parser.parse(7, [*GOOD, "", ""])
    assert row is not None and problems == []


def test_a_bad_phone_among_good_ones_is_a_warning(parser):
    row, problems = parser.parse(9, row_with(phone="8 916 123 45 67; 12345, +380441234567"))
    assert row is not None
    assert row.phones == ("+79161234567", "+380441234567")
    assert [(p.line, p.reason) for p in problems] == [
        (9, "bad phone '12345' (too short); the account's other numbers were kept")]


def test_defaults_and_aliases(parser):
    row, _ = parser.parse(2, row_with(currency="руб.", lang="укр", tz="МСК+4", due="", block=""))
    assert row is not None
    assert (row.currency, row.language, row.timezone) == ("RUB", "uk", "Asia/Krasnoyarsk")
    assert row.due_date is None and row.block_date is None
    row, _ = parser.parse(2, row_with(currency="", lang="", tz="Asia/Novosibirsk"))
    assert row is not None
    assert (row.currency, row.language, row.timezone) == ("RUB", "ru", "Asia/Novosibirsk")
    row, _ = parser.parse(2, row_with(holder="  Иванов   Иван\tИванович "))
    assert row is not None and row.holder_name == "Иванов Иван Иванович"


def test_country_from_the_first_phone(parser):
    row, _ = parser.parse(2, row_with(phone="+380 44 123 45 67, 89161234567"))
    assert row is not None and row.country == "UA"


@pytest.mark.parametrize(("text", "numbers", "bad"), [
    ("89161234567", ["+79161234567"], []),
    ("8 916 123 45 67", ["+79161234567"], []),
    ("89161234567, 84951234567", ["+79161234567", "+74951234567"], []),
    ("89161234567;84951234567", ["+79161234567", "+74951234567"], []),
    ("89161234567 84951234567", ["+79161234567", "+74951234567"], []),
    ("8 916 123 45 67 8 495 123 45 67", ["+79161234567", "+74951234567"], []),
    ("89161234567, 89161234567", ["+79161234567"], []),  # the same number twice is kept once
    ("89161234567, 123", ["+79161234567"], [("123", "too short")]),
    ("12345", [], [("12345", "too short")]),
    (";;", [], []),
])
def test_phone_lists(text, numbers, bad):
    good, problems = parse_phones(text, "RU")
    assert [n for n, _c in good] == numbers
    assert problems == bad


def test_value_normalizers():
    assert normalize_currency("₽", "RUB") == "RUB"
    assert normalize_currency("грн", "RUB") == "UAH"
    assert normalize_currency("usd", "RUB") == "USD"
    assert normalize_language("English", "ru") == "en"
    assert normalize_timezone("UTC+7") == "Etc/GMT-7"  # POSIX sign
    assert normalize_timezone("МСК") == "Europe/Moscow"
    assert normalize_timezone("MSK-1") == "Europe/Kaliningrad"
    assert normalize_timezone("UTC") == "UTC"
    for bad in ("UTC+25", "МСК+15", "Moscow", "Europe/Atlantis"):
        with pytest.raises(ValueProblem):
            normalize_timezone(bad)


def test_payment_rows():
    cols = ColumnMap.default().resolve("payments", ["Номер платежа", "Лицевой счёт", "Сумма", "Дата платежа", "Валюта"])
    parser = PaymentParser(cols)
    row, problems = parser.parse(2, ["P-1", "1001", "1 800,50", "12.11.2026", ""])
    assert problems == [] and row is not None
    assert (row.payment_id, row.account, row.amount, row.paid_on, row.currency) == (
        "P-1", "1001", Decimal("1800.50"), dt.date(2026, 11, 12), None)
    for fields, reason in [
        (["", "1001", "10", "12.11.2026", ""], "missing payment id"),
        (["P-2", "", "10", "12.11.2026", ""], "missing account id"),
        (["P-2", "1001", "-10", "12.11.2026", ""], "bad amount '-10' (a payment must be positive)"),
        (["P-2", "1001", "0", "12.11.2026", ""], "bad amount '0' (a payment must be positive)"),
        (["P-2", "1001", "10", "", ""], "missing payment date"),
        (["P-2", "1001", "10", "2026-02-30", ""], "bad date '2026-02-30' (no such date)"),
        (["P-2", "1001", "10", "12.11.2026", "ZZZ"], "bad currency 'ZZZ' (unknown currency)"),
    ]:
        row, problems = parser.parse(3, fields)
        assert row is None and [p.reason for p in problems] == [reason]


def test_premium_rate_numbers_are_refused_by_line(parser):
    # +7 809 ... is premium rate in Russia: a call there would pay the number's owner
    row, problems = parser.parse(7, row_with(phone="8 809 123-45-67, 8 (916) 123-45-67"))
    assert row is not None and row.phones == ("+79161234567",)
    assert [(p.line, p.reason) for p in problems] == [
        (7, "bad phone '+78091234567' (premium-rate number: the robot does not call it); "
            "the account's other numbers were kept")]
    row, problems = parser.parse(8, row_with(phone="+7 809 123 45 67"))
    assert row is None
    assert [p.reason for p in problems] == ["bad phone '+78091234567' (premium-rate number: the robot does not call it)"]
