"""Broken records (stray quotes, huge fields, endless lines) cost one record, never the file."""

from __future__ import annotations

import io

import pytest

from ivr.billing.csvread import BrokenRecord, open_csv
from ivr.billing.records import MAX_LINE_CHARS, MAX_RECORD_LINES


def records(text: str) -> list[tuple[int, object]]:
    src = open_csv(io.BytesIO(text.encode("utf-8")))
    return [(line, f.reason.split(" (")[0] if isinstance(f, BrokenRecord) else f) for line, f in src.rows()]


def test_a_stray_quote_costs_its_own_line_only():
    text = 'id;name;amt\n1;"Ivan;10\n2;Petr;20\n3;Olga;30\n'
    assert records(text) == [
        (2, "a quote opened on this line is never closed"),
        (3, ["2", "Petr", "20"]),
        (4, ["3", "Olga", "30"]),
    ]


def test_a_stray_quote_closed_by_a_later_quote_does_not_swallow_the_rows_between():
    text = 'id;name;amt\n1;"Ivan;10\n2;Petr;20\n3;"Olga";30\n4;Anna;40\n'
    got = records(text)
    assert got[0][0] == 2 and got[0][1] == "a quote opened on this line joins lines 2-4 into one record"
    assert got[1:] == [(3, ["2", "Petr", "20"]), (4, ["3", "Olga", "30"]), (5, ["4", "Anna", "40"])]


def test_quoted_fields_with_line_breaks_are_still_one_record():
    text = 'id;note;amt\n1;"two\r\nlines";10\n2;"a ""quoted"" word";20\n3;x;30'
    assert records(text) == [(2, ["1", "two\r\nlines", "10"]), (4, ["2", 'a "quoted" word', "20"]),
                             (5, ["3", "x", "30"])]


def test_a_field_over_the_csv_limit_is_one_bad_record():
    text = "id;name;amt\n1;" + "x" * 200_000 + ";10\n2;Petr;20\n"
    assert records(text) == [(2, "a field longer than 128 KB"), (3, ["2", "Petr", "20"])]


def test_an_unclosed_quote_gives_up_after_a_bounded_number_of_lines():
    text = 'id;name;amt\n1;"Ivan;10\n' + "".join(f"{n};Name {n};{n}\n" for n in range(2, 2 + MAX_RECORD_LINES + 50))
    got = records(text)
    assert got[0] == (2, f"a quote opened on this line is not closed within {MAX_RECORD_LINES} lines")
    assert [line for line, _f in got[1:]] == list(range(3, 3 + MAX_RECORD_LINES + 50))
    assert all(isinstance(f, list) and len(f) == 3 for _line, f in got[1:])


def test_an_endless_line_is_skipped_without_reading_it_into_memory():
    text = "id;name;amt\n1;x;10\n" + "y" * (2 * MAX_LINE_CHARS + 5) + "\n2;Petr;20\n"
    assert records(text) == [(2, ["1", "x", "10"]), (3, "line longer than 1 MB"), (4, ["2", "Petr", "20"])]


def test_an_endless_line_inside_a_stray_quote_is_reported_on_its_own_line():
    text = 'id;name;amt\n1;"x;10\n2;ok;20\n' + "y" * (MAX_LINE_CHARS + 5) + "\n3;Petr;30\n"
    got = records(text)
    assert [line for line, _f in got] == [2, 3, 4, 5]
    assert got[1] == (3, ["2", "ok", "20"]) and got[2] == (4, "line longer than 1 MB")
    assert got[3] == (5, ["3", "Petr", "30"])


@pytest.mark.parametrize("ending", ["", "\n", "\r\n"])
def test_last_line_with_or_without_a_line_break(ending):
    assert records("id;name\n1;a\n2;b" + ending) == [(2, ["1", "a"]), (3, ["2", "b"])]


def test_the_broken_record_shows_where_it_starts():
    src = open_csv(io.BytesIO(b'id;name;amt\n1;"Ivan;10\n'))
    ((line, broken),) = list(src.rows())
    assert line == 2 and isinstance(broken, BrokenRecord) and broken.text == '1;"Ivan;10'


def test_a_line_with_a_nul_character_is_one_bad_record_even_after_the_first_megabyte():
    # NUL in the first chunk refuses the file as binary; later, it is one line's problem
    filler = "".join(f"{n};name {n};{n}\n" for n in range(2, 70_000))
    text = "id;name;amt\n" + filler + "70000;bad\x00name;1\n70001;ok;2\n"
    got = records(text)
    assert got[-2:] == [(70_000, "binary data"), (70_001, ["70001", "ok", "2"])]
