"""Broken records and broken encodings through the importer and `ivr import`: a broken record is
reported by line and every good row after it is kept; a file no single encoding reads is refused
naming the lines, and nothing garbled is stored."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from ivr.billing.importer import ImportFileError, import_accounts, import_payments
from ivr.db.models import Account, Payment
from tests.billing.conftest import NOW, TODAY

HEADER = "Лицевой счёт;ФИО;Телефон;Сумма долга"
STRAY_QUOTE = f"""{HEADER}
B-1;Иванов Иван;89161110001;100,00
B-2;"Петров Пётр;89161110002;200,00
B-3;Сидоров Олег;89161110003;300,00
B-4;Орлова Вера;89161110004;400,00
"""
HUGE_FIELD = f"{HEADER}\nB-1;{'Я' * 200_000};89161110001;100,00\nB-2;Петров Пётр;89161110002;200,00\n"


def ids(sessions_):
    with sessions_() as s:
        return sorted(s.scalars(select(Account.external_id)))


@pytest.mark.parametrize("parallel", [False, True])
def test_a_stray_quote_costs_one_row(db, write_file, settings, parallel):
    report = import_accounts(db.sessions, write_file("q.csv", STRAY_QUOTE), settings=settings, today=TODAY,
                             now=NOW, parallel=parallel)
    assert [(e.line, e.reason.split(" (")[0]) for e in report.errors] == [
        (3, "unreadable record: a quote opened on this line is never closed")]
    assert report.errors[0].value == 'B-2;"Петров Пётр;89161110002;200,00'
    assert (report.rows_total, report.rows_ok) == (4, 3)
    assert ids(db.sessions) == ["B-1", "B-3", "B-4"]


def test_a_huge_field_costs_one_row(db, write_file, settings):
    report = import_accounts(db.sessions, write_file("h.csv", HUGE_FIELD, encoding="utf-8"), settings=settings,
                             today=TODAY, now=NOW)
    assert [(e.line, e.reason) for e in report.errors] == [(2, "unreadable record: a field longer than 128 KB")]
    assert ids(db.sessions) == ["B-2"]


def test_payments_keep_going_after_a_broken_record(db, write_file, settings):
    import_accounts(db.sessions, write_file("a.csv", STRAY_QUOTE.replace('"', "")), settings=settings,
                    today=TODAY, now=NOW)
    payments = 'payment_id;account;amount;paid_on\nP-1;B-1;10;12.11.2026\nP-2;"B-2;10;12.11.2026\nP-3;B-3;10;12.11.2026\n'
    report = import_payments(db.sessions, write_file("p.csv", payments), settings=settings, now=NOW)
    assert [e.line for e in report.errors] == [3]
    with db.sessions() as s:
        assert sorted(s.scalars(select(Payment.external_id))) == ["P-1", "P-3"]


# --- encodings ------------------------------------------------------------------------------------

def utf8_file_with_one_cp1251_line() -> bytes:
    good = [f"M-{n};Иванов Иван {n};8916111{n:04d};100,00" for n in range(1, 30)]
    lines = [HEADER.encode("utf-8")] + [g.encode("utf-8") for g in good]
    lines.insert(5, "M-99;Сидоров Олег;89162220099;100,00".encode("cp1251"))  # line 6
    return b"\r\n".join(lines) + b"\r\n"


def test_one_cp1251_line_in_a_utf8_file_refuses_the_file_naming_the_line(db, settings):
    with pytest.raises(ImportFileError) as caught:
        import_accounts(db.sessions, io.BytesIO(utf8_file_with_one_cp1251_line()), settings=settings,
                        today=TODAY, now=NOW)
    message = str(caught.value)
    assert "mixes encodings" in message and "line(s) 6 are not UTF-8" in message and "30 other" in message  # the header is UTF-8 too
    assert ids(db.sessions) == []  # nothing stored, so nothing garbled


def test_one_utf8_line_in_a_cp1251_file_is_named(db, settings):
    lines = [HEADER.encode("cp1251")] + [f"W-{n};Петров Пётр;8916333{n:04d};1,00".encode("cp1251") for n in range(9)]
    lines.append("W-9;Сидоров Олег;89163330099;1,00".encode())  # line 11
    with pytest.raises(ImportFileError, match=r"line\(s\) 11 are UTF-8 while 10 other line\(s\) are Windows-1251"):
        import_accounts(db.sessions, io.BytesIO(b"\n".join(lines)), settings=settings, today=TODAY, now=NOW)


def test_a_byte_windows_1251_lacks_is_a_clear_file_error(db, settings):
    data = f"{HEADER}\nX-1;Иванов".encode("cp1251") + b"\x98;89161110001;1,00\n"
    with pytest.raises(ImportFileError, match=r"line\(s\) 2 have byte 0x98"):
        import_accounts(db.sessions, io.BytesIO(data), settings=settings, today=TODAY, now=NOW)


def test_double_encoded_names_are_rejected_not_stored(db, write_file, settings):
    # UTF-8 read as Windows-1251 and saved again as UTF-8 somewhere before the file reached us:
    # valid UTF-8, but the robot would read "РРІР°РЅРѕРІ" aloud
    garbled = "Семёнов Олег".encode().decode("cp1251")
    text = f"{HEADER}\nG-1;{garbled};89161110001;1,00\nG-2;Петров Пётр;89161110002;1,00\n"
    report = import_accounts(db.sessions, write_file("g.csv", text, encoding="utf-8"), settings=settings,
                             today=TODAY, now=NOW)
    assert [(e.line, e.field) for e in report.errors] == [(2, "holder_name")]
    assert "'Семёнов Олег'" in report.errors[0].reason  # what it should have been
    assert ids(db.sessions) == ["G-2"]


def test_a_file_replaced_under_the_parser_process_is_a_file_error(write_file):
    from ivr.billing.columns import ColumnMap
    from ivr.billing.csvread import open_csv
    from ivr.billing.pipeline import parallel_batches

    path = write_file("a.csv", STRAY_QUOTE)
    src = open_csv(path)
    cols = ColumnMap.default().resolve("accounts", src.header)
    src.close()
    kw = {"region": "RU", "default_currency": "RUB", "default_language": "ru"}
    with pytest.raises(ImportFileError, match="the file changed while it was being imported"):
        list(parallel_batches(path, (src.encoding, src.sha256, src.size + 1), cols, kw, 10, "sqlite"))


def test_a_nul_character_past_the_first_megabyte_costs_one_row(any_db, settings):
    # over a megabyte of rows with long (rejected) names first, so that the NUL is not in the
    # first chunk, which refuses a binary file as a whole
    padding = "".join(f"L-{n};{'я' * 100_000};89161110001;1,00\n" for n in range(6))
    text = f"{HEADER}\n{padding}N-1;Нулев\x00ой;89161110002;1,00\nN-2;Петров Пётр;89161110003;1,00\n"
    report = import_accounts(any_db.sessions, io.BytesIO(text.encode()), settings=settings, today=TODAY, now=NOW)
    assert (report.errors[-1].line, report.errors[-1].reason) == (8, "unreadable record: binary data (a NUL character) in the line")
    assert ids(any_db.sessions) == ["N-2"]
