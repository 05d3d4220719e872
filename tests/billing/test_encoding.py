"""The encoding is decided from every line of the file, never from a sample."""

from __future__ import annotations

import io

import pytest

from ivr.billing.csvread import CsvFileError, open_csv
from ivr.billing.encoding import CHUNK, scan

NAMES = ("Иванов Иван", "Семёнов Пётр", "Їжак Євген", "Ёлкина Анна")


def rows(n: int, encoding: str) -> list[bytes]:
    return [f"{i};{NAMES[i % len(NAMES)]};100".encode(encoding) for i in range(n)]


@pytest.mark.parametrize("encoding", ["utf-8", "cp1251"])
def test_a_clean_file_is_read_in_its_encoding(encoding):
    data = b"\n".join([b"id;name;amount", *rows(50, encoding)]) + b"\n"
    assert scan(io.BytesIO(data)).encoding == encoding
    src = open_csv(io.BytesIO(data))
    assert [f[1] for _line, f in src.rows()][:4] == list(NAMES)  # type: ignore[index]


def test_a_cp1251_name_that_is_partly_valid_utf8_is_still_cp1251():
    # 'Рё' in Windows-1251 is the UTF-8 of 'и'; the rest of the line is not UTF-8
    data = "id;name\n1;Фёдор Рёмин\n".encode("cp1251")
    assert scan(io.BytesIO(data)).encoding == "cp1251"


def test_the_disagreeing_lines_are_found_across_chunk_boundaries():
    # a file of several chunks; one odd line straddles the first chunk edge, one is far after it
    good = "1;Иванов Иван;100\n".encode()
    odd = "2;Петров Пётр;100\n".encode("cp1251")
    data = bytearray(b"id;name;amount\n")
    while len(data) + len(good) <= CHUNK - 5:
        data += good
    gap = CHUNK - 5 - len(data)
    if gap:
        data += b"x" * (gap - 1) + b"\n"
    first_odd = data.count(b"\n") + 1
    data += odd  # bytes CHUNK-5 .. CHUNK+12
    data += good * 100_000
    second_odd = data.count(b"\n") + 1
    data += odd + good * 10
    assert data.index(odd) == CHUNK - 5 and len(data) > 3 * CHUNK
    with pytest.raises(CsvFileError) as caught:
        scan(io.BytesIO(bytes(data)))
    assert f"line(s) {first_odd}, {second_odd} are not UTF-8" in str(caught.value)


def test_many_disagreeing_lines_are_listed_briefly():
    good = rows(12, "utf-8")
    bad = rows(30, "cp1251")
    data = b"\n".join([b"id;name;amount", *good, *bad])  # mostly Windows-1251: the UTF-8 lines disagree
    with pytest.raises(CsvFileError, match=r"line\(s\) 2, 3, 4, .*, 11 and 2 more are UTF-8 while 30 other"):
        scan(io.BytesIO(data))


def test_utf16_and_workbooks_are_named_before_any_encoding_guess():
    with pytest.raises(CsvFileError, match="UTF-16"):
        open_csv(io.BytesIO("id;name\n1;Иванов\n".encode("utf-16")))
    with pytest.raises(CsvFileError, match="UTF-16"):
        open_csv(io.BytesIO("id;name\n1;x\n".encode("utf-16-le")))
    with pytest.raises(CsvFileError, match="Excel"):
        open_csv(io.BytesIO(b"PK\x03\x04" + bytes(range(256)) * 10))
