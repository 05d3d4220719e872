"""Reading CSV exports: encodings, delimiters, line numbers, amounts and dates."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest

from ivr.billing.csvread import CsvFileError, ValueProblem, open_csv, parse_amount, parse_date

TEXT = "Лицевой счёт;ФИО;Сумма\n1001;Иванов Иван;1 800,50\n1002;Петрова Анна;90,00"


@pytest.mark.parametrize(
    ("data", "encoding", "label"),
    [
        (TEXT.encode("cp1251"), "cp1251", "Windows-1251"),
        (TEXT.encode("utf-8"), "utf-8", "UTF-8"),
        (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "utf-8-sig", "UTF-8 (BOM)"),
    ],
)
def test_encoding_is_detected(data, encoding, label):
    src = open_csv(io.BytesIO(data))
    assert (src.encoding, src.encoding_label) == (encoding, label)
    assert src.header == ["Лицевой счёт", "ФИО", "Сумма"]  # no BOM left in the first name
    assert [f for _line, f in src.rows()][1] == ["1002", "Петрова Анна", "90,00"]


def test_cp1251_that_happens_to_start_like_utf8_is_still_cp1251():
    # valid UTF-8 for the first megabyte, then a cp1251 byte: the whole file is checked
    data = ("a;b\n" + "1;x\n" * 300_000).encode() + "2;Щ\n".encode("cp1251")
    src = open_csv(io.BytesIO(data))
    assert src.encoding == "cp1251"
    assert list(src.rows())[-1] == (300_002, ["2", "Щ"])


@pytest.mark.parametrize(("header", "delimiter"), [
    ("a;b;c", ";"), ("a,b,c", ","), ("a\tb\tc", "\t"), ('"x, y";b;c', ";"), ("a|b|c", "|"),
])
def test_delimiter_is_sniffed_from_header(header, delimiter):
    assert open_csv(io.BytesIO(f"{header}\n1{delimiter}2{delimiter}3\n".encode())).delimiter == delimiter


def test_rows_carry_the_line_they_start_on():
    data = (
        "\r\n"                          # 1: blank line before the header
        "id;note;x\r\n"                 # 2: header
        "1;plain;a\r\n"                 # 3
        "\r\n"                          # 4: blank: skipped
        '2;"two\r\nlines";b\r\n'        # 5-6: a quoted field with a line break
        "3;after;c\r\n"                 # 7
        ";;\r\n"                        # 8: empty fields are a row (reported by the parser)
    ).encode("cp1251")
    src = open_csv(io.BytesIO(data))
    assert src.header_line == 2
    assert [(line, f[0]) for line, f in src.rows()] == [(3, "1"), (5, "2"), (7, "3"), (8, "")]


def test_unreadable_files_raise_clear_errors(tmp_path):
    with pytest.raises(CsvFileError, match="empty"):
        open_csv(io.BytesIO(b""))
    with pytest.raises(CsvFileError, match="Excel"):
        open_csv(io.BytesIO(b"PK\x03\x04rest of a zip"))
    with pytest.raises(CsvFileError, match="binary"):
        open_csv(io.BytesIO(b"id;name\n\x00\x01\x02"))
    with pytest.raises(CsvFileError, match="no header"):
        open_csv(io.BytesIO(b"\r\n\r\n"))
    with pytest.raises(CsvFileError, match="cannot open"):
        open_csv(tmp_path / "missing.csv")


def test_sha256_is_of_the_bytes():
    import hashlib

    data = TEXT.encode("cp1251")
    assert open_csv(io.BytesIO(data)).sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(("raw", "value"), [
    ("1800", "1800.00"), ("1800,5", "1800.50"), ("1800.50", "1800.50"), ("1 800,50", "1800.50"),
    ("1\u00a0800,50", "1800.50"), ("1\u202f800,50", "1800.50"), ("1,800.50", "1800.50"),
    ("1.800,50", "1800.50"), ("1 234 567,89", "1234567.89"), ("-150,00", "-150.00"),
    ("0", "0.00"), ("  90,00 ", "90.00"), ("1 800,00 руб.", "1800.00"), ("1800₽", "1800.00"),
    ("1,800", "1800.00"), ("12.345", "12345.00"), ("12'345.60", "12345.60"),
])
def test_amounts(raw, value):
    assert parse_amount(raw) == Decimal(value)


@pytest.mark.parametrize(("raw", "reason"), [
    ("", "empty"), ("abc", "not a number"), ("1 8OO,00", "not an amount"), ("12.3456", "not an amount"),
    ("1,2,3", "not an amount"), ("1e5", "not an amount"), ("1000000000000", "too large"),
])
def test_bad_amounts(raw, reason):
    with pytest.raises(ValueProblem) as info:
        parse_amount(raw)
    assert str(info.value) == reason


@pytest.mark.parametrize(("raw", "value"), [
    ("25.11.2026", dt.date(2026, 11, 25)), ("2026-11-25", dt.date(2026, 11, 25)),
    ("25/11/2026", dt.date(2026, 11, 25)), ("25.11.2026 00:00:00", dt.date(2026, 11, 25)),
    ("2026-11-25T10:00:00", dt.date(2026, 11, 25)), ("", None), ("  ", None),
])
def test_dates(raw, value):
    assert parse_date(raw) == value


@pytest.mark.parametrize(("raw", "reason"), [
    ("31.02.2026", "no such date"), ("2026-13-01", "no such date"),
    ("1.11.2026", "expected DD.MM.YYYY or YYYY-MM-DD"), ("11/25/26", "expected DD.MM.YYYY or YYYY-MM-DD"),
    ("завтра", "expected DD.MM.YYYY or YYYY-MM-DD"),
])
def test_bad_dates(raw, reason):
    with pytest.raises(ValueProblem) as info:
        parse_date(raw)
    assert str(info.value) == reason
