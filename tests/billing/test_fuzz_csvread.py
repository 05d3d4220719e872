"""Fuzzing the CSV reader: any bytes give rows or a CsvFileError, never another exception; good
rows mixed with junk (stray quotes, huge fields, odd text) are all read, on their own lines."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.billing.csvread import BrokenRecord, CsvFileError, open_csv

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DELIMITERS = (";", ",", "\t", "|")
ENCODINGS = ("utf-8", "utf-8-sig", "cp1251")
# text of one physical line: no line breaks (the reader's only line ends are CR and LF)
CYRILLIC = "".join(chr(c) for c in range(0x410, 0x450)) + "ёЁ"
LINE_TEXT = st.text(alphabet=st.sampled_from('abcXYZ019 .-+=@"\';,|\t' + CYRILLIC + "№«»"), max_size=40)


def read_all(data: bytes) -> list[tuple[int, list[str] | BrokenRecord]]:
    src = open_csv(io.BytesIO(data))
    try:
        return list(src.rows())
    finally:
        src.close()


@FUZZ
@given(st.binary(max_size=3000))
def test_any_bytes_give_rows_or_a_file_error(data: bytes) -> None:
    try:
        rows = read_all(data)
    except CsvFileError as exc:
        assert str(exc)  # a reason the admin can read
        return
    lines = [line for line, _fields in rows]
    assert lines == sorted(lines) and len(set(lines)) == len(lines)


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=60), LINE_TEXT.map(str.encode)), max_size=40),
       st.sampled_from([b"\n", b"\r\n", b"\r"]))
def test_lines_of_any_bytes_after_a_header_never_raise(lines: list[bytes], newline: bytes) -> None:
    try:
        read_all(newline.join([b"id;name;amount", *lines]))
    except CsvFileError as exc:
        assert str(exc)


@dataclass(frozen=True)
class Junk:
    text: str
    lines: int = 1  # physical lines it spans


def _huge(size: int) -> Junk:
    return Junk("1;" + "x" * size + ";2")


JUNK = st.one_of(
    LINE_TEXT.map(Junk),
    LINE_TEXT.map(lambda t: Junk('"' + t)),  # a stray quote at the start of a record
    LINE_TEXT.map(lambda t: Junk('x;"' + t)),  # ... or of a field
    st.integers(min_value=131_073, max_value=140_000).map(_huge),  # over csv's field limit
    st.just(Junk('q;"a\nb";c', 2)),  # a legitimate quoted field with a line break in it
)


@st.composite
def mixed_files(draw: st.DrawFn) -> tuple[bytes, str, list[tuple[int, list[str]]]]:
    """A file of good rows and junk lines in random order; returns it, its encoding and the
    good rows with the line each starts on."""
    encoding = draw(st.sampled_from(ENCODINGS))
    delimiter = draw(st.sampled_from(DELIMITERS))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    width = draw(st.integers(min_value=2, max_value=5))
    field = LINE_TEXT.filter(lambda t: not t.startswith(" "))
    good_rows = draw(st.lists(st.lists(field, min_size=width, max_size=width).filter(lambda r: any(r)),
                              min_size=1, max_size=12))
    junk = draw(st.lists(JUNK, max_size=10))
    order = draw(st.permutations([("good", i) for i in range(len(good_rows))] + [("junk", i) for i in range(len(junk))]))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    writer.writerow([f"col{i}" for i in range(width)])
    line = 2
    expected: list[tuple[int, list[str]]] = []
    for kind, index in order:
        if kind == "good":
            writer.writerow(good_rows[index])
            expected.append((line, good_rows[index]))
            line += 1
        else:
            out.write(junk[index].text.replace("\n", newline) + newline)
            line += junk[index].lines
    return out.getvalue().encode(encoding), encoding, expected


@FUZZ
@given(mixed_files())
def test_every_good_row_of_a_mixed_file_is_read_on_its_line(case: tuple[bytes, str, list[tuple[int, list[str]]]]) -> None:
    data, encoding, expected = case
    try:
        rows = read_all(data)
    except CsvFileError as exc:
        # a junk line of Windows-1251 may happen to be valid UTF-8: the file is then refused
        # as mixed, naming lines, and nothing at all is read (so nothing is read garbled)
        assert encoding == "cp1251" and "mixes encodings" in str(exc), str(exc)
        return
    got = {line: fields for line, fields in rows if isinstance(fields, list)}
    for line, fields in expected:
        assert got.get(line) == fields, (line, fields, got.get(line))
