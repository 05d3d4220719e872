"""Mojibake is recognised (and what it should read is given); real names never are."""

from __future__ import annotations

import pytest

from ivr.billing.mojibake import garbled

REAL = ["Семёнов Пётр", "Иванов Иван Иванович", "Їжак Євген", "Ёлкина «Анна» №5", "José Müller",
        "O'Brien", "Ґалаґан Ірина", "Фёдор Рёмин", "Ш", "ИП «Ромашка» — охрана"]


def _mojibake() -> list[tuple[str, str]]:
    """(name, mojibake) for each name and code page that has a character for every byte of it."""
    cases = []
    for name in REAL:
        for codec in ("cp1251", "cp1252", "latin-1"):
            try:
                mojibake = name.encode("utf-8").decode(codec)
            except UnicodeDecodeError:  # cp1251 lacks 0x98, so "И" (D0 98) cannot be garbled there
                continue
            if mojibake != name:
                cases.append((name, mojibake))
    return cases


@pytest.mark.parametrize(("name", "mojibake"), _mojibake())
def test_utf8_decoded_with_a_one_byte_code_page_is_recognised(name, mojibake):
    assert garbled(mojibake) == name


@pytest.mark.parametrize("name", REAL)
def test_real_names_are_not_mojibake(name):
    assert garbled(name) is None
