"""Numbers, money and dates in words: table tests per language."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from ivr.prompts.words import (
    date_text,
    date_words,
    money_text,
    money_words,
    number_words,
    ordinal_words,
    plural_form,
)

NBSP = "\u00a0"

RU_NUMBERS = [
    (0, "ноль"),
    (1, "один"),
    (2, "два"),
    (5, "пять"),
    (11, "одиннадцать"),
    (12, "двенадцать"),
    (13, "тринадцать"),
    (14, "четырнадцать"),
    (15, "пятнадцать"),
    (19, "девятнадцать"),
    (20, "двадцать"),
    (21, "двадцать один"),
    (22, "двадцать два"),
    (25, "двадцать пять"),
    (40, "сорок"),
    (90, "девяносто"),
    (100, "сто"),
    (101, "сто один"),
    (111, "сто одиннадцать"),
    (112, "сто двенадцать"),
    (200, "двести"),
    (999, "девятьсот девяносто девять"),
    (1000, "одна тысяча"),
    (1001, "одна тысяча один"),
    (1800, "одна тысяча восемьсот"),
    (2000, "две тысячи"),
    (2001, "две тысячи один"),
    (4000, "четыре тысячи"),
    (5000, "пять тысяч"),
    (11000, "одиннадцать тысяч"),
    (12000, "двенадцать тысяч"),
    (21000, "двадцать одна тысяча"),
    (22000, "двадцать две тысячи"),
    (100000, "сто тысяч"),
    (111111, "сто одиннадцать тысяч сто одиннадцать"),
    (1000000, "один миллион"),
    (2000000, "два миллиона"),
    (5000000, "пять миллионов"),
    (21000000, "двадцать один миллион"),
    (1001001, "один миллион одна тысяча один"),
    (1000000000, "один миллиард"),
    (3000000000, "три миллиарда"),
    (999999999999, "девятьсот девяносто девять миллиардов девятьсот девяносто девять миллионов "
                   "девятьсот девяносто девять тысяч девятьсот девяносто девять"),
]

UK_NUMBERS = [
    (0, "нуль"),
    (1, "один"),
    (2, "два"),
    (5, "п'ять"),
    (11, "одинадцять"),
    (12, "дванадцять"),
    (13, "тринадцять"),
    (14, "чотирнадцять"),
    (15, "п'ятнадцять"),
    (19, "дев'ятнадцять"),
    (20, "двадцять"),
    (21, "двадцять один"),
    (22, "двадцять два"),
    (25, "двадцять п'ять"),
    (101, "сто один"),
    (111, "сто одинадцять"),
    (112, "сто дванадцять"),
    (200, "двісті"),
    (1000, "одна тисяча"),
    (1001, "одна тисяча один"),
    (2000, "дві тисячі"),
    (2001, "дві тисячі один"),
    (5000, "п'ять тисяч"),
    (11000, "одинадцять тисяч"),
    (21000, "двадцять одна тисяча"),
    (1000000, "один мільйон"),
    (2000000, "два мільйони"),
    (5000000, "п'ять мільйонів"),
    (2000000000, "два мільярди"),
]

EN_NUMBERS = [
    (0, "zero"),
    (1, "one"),
    (2, "two"),
    (5, "five"),
    (11, "eleven"),
    (12, "twelve"),
    (13, "thirteen"),
    (14, "fourteen"),
    (15, "fifteen"),
    (19, "nineteen"),
    (20, "twenty"),
    (21, "twenty-one"),
    (22, "twenty-two"),
    (25, "twenty-five"),
    (101, "one hundred one"),
    (111, "one hundred eleven"),
    (112, "one hundred twelve"),
    (1000, "one thousand"),
    (1001, "one thousand one"),
    (1800, "one thousand eight hundred"),
    (2000, "two thousand"),
    (2001, "two thousand one"),
    (5000, "five thousand"),
    (11000, "eleven thousand"),
    (21000, "twenty-one thousand"),
    (1000000, "one million"),
    (1000000000, "one billion"),
]


@pytest.mark.parametrize(("n", "expected"), RU_NUMBERS)
def test_russian_numbers(n: int, expected: str) -> None:
    assert number_words(n, "ru") == expected


@pytest.mark.parametrize(("n", "expected"), UK_NUMBERS)
def test_ukrainian_numbers(n: int, expected: str) -> None:
    assert number_words(n, "uk") == expected


@pytest.mark.parametrize(("n", "expected"), EN_NUMBERS)
def test_english_numbers(n: int, expected: str) -> None:
    assert number_words(n, "en") == expected


@pytest.mark.parametrize(
    ("n", "language", "gender", "expected"),
    [
        (1, "ru", "f", "одна"),
        (2, "ru", "f", "две"),
        (1, "ru", "n", "одно"),
        (21, "ru", "f", "двадцать одна"),
        (22, "ru", "f", "двадцать две"),
        (1, "uk", "f", "одна"),
        (2, "uk", "f", "дві"),
        (1, "uk", "n", "одне"),
        (2002, "uk", "f", "дві тисячі дві"),
        (12, "ru", "f", "двенадцать"),  # teens have no gender
        (1, "en", "f", "one"),
    ],
)
def test_gender_agreement(n: int, language: str, gender: str, expected: str) -> None:
    assert number_words(n, language, gender) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, "рублей"), (1, "рубль"), (2, "рубля"), (4, "рубля"), (5, "рублей"), (11, "рублей"), (12, "рублей"),
     (13, "рублей"), (14, "рублей"), (15, "рублей"), (20, "рублей"), (21, "рубль"), (22, "рубля"), (25, "рублей"),
     (101, "рубль"), (111, "рублей"), (112, "рублей"), (1000, "рублей"), (1001, "рубль"), (1800, "рублей")],
)
def test_plural_form_russian(n: int, expected: str) -> None:
    assert plural_form(n, ("рубль", "рубля", "рублей"), "ru") == expected


def test_plural_form_english_uses_singular_only_for_one() -> None:
    forms = ("dollar", "dollars", "dollars")
    assert [plural_form(n, forms, "en") for n in (0, 1, 2, 21)] == ["dollars", "dollar", "dollars", "dollars"]


@pytest.mark.parametrize(
    ("amount", "currency", "language", "words", "text"),
    [
        ("1", "RUB", "ru", "один рубль", "1 рубль"),
        ("2", "RUB", "ru", "два рубля", "2 рубля"),
        ("5", "RUB", "ru", "пять рублей", "5 рублей"),
        ("11", "RUB", "ru", "одиннадцать рублей", "11 рублей"),
        ("14", "RUB", "ru", "четырнадцать рублей", "14 рублей"),
        ("21", "RUB", "ru", "двадцать один рубль", "21 рубль"),
        ("22", "RUB", "ru", "двадцать два рубля", "22 рубля"),
        ("1800.50", "RUB", "ru", "одна тысяча восемьсот рублей пятьдесят копеек", f"1{NBSP}800 рублей 50 копеек"),
        ("2001.02", "RUB", "ru", "две тысячи один рубль две копейки", f"2{NBSP}001 рубль 2 копейки"),
        ("0.01", "RUB", "ru", "одна копейка", "1 копейка"),
        ("0.21", "RUB", "ru", "двадцать одна копейка", "21 копейка"),
        ("0", "RUB", "ru", "ноль рублей", "0 рублей"),
        ("1000000", "RUB", "ru", "один миллион рублей", f"1{NBSP}000{NBSP}000 рублей"),
        ("11000.11", "RUB", "ru", "одиннадцать тысяч рублей одиннадцать копеек", f"11{NBSP}000 рублей 11 копеек"),
        ("1.005", "RUB", "ru", "один рубль одна копейка", "1 рубль 1 копейка"),  # half-up to kopecks
        ("21", "USD", "ru", "двадцать один доллар", "21 доллар"),
        ("5", "EUR", "ru", "пять евро", "5 евро"),
        ("1", "UAH", "uk", "одна гривня", "1 гривня"),
        ("2", "UAH", "uk", "дві гривні", "2 гривні"),
        ("5", "UAH", "uk", "п'ять гривень", "5 гривень"),
        ("12", "UAH", "uk", "дванадцять гривень", "12 гривень"),
        ("21.01", "UAH", "uk", "двадцять одна гривня одна копійка", "21 гривня 1 копійка"),
        ("22.02", "UAH", "uk", "двадцять дві гривні дві копійки", "22 гривні 2 копійки"),
        ("1800.50", "UAH", "uk", "одна тисяча вісімсот гривень п'ятдесят копійок", f"1{NBSP}800 гривень 50 копійок"),
        ("2", "RUB", "uk", "два рублі", "2 рублі"),
        ("1", "USD", "en", "one dollar", "1 dollar"),
        ("2", "USD", "en", "two dollars", "2 dollars"),
        ("0.01", "USD", "en", "one cent", "1 cent"),
        ("1800.50", "USD", "en", "one thousand eight hundred dollars and fifty cents", "1,800 dollars and 50 cents"),
        ("1800.50", "RUB", "en", "one thousand eight hundred roubles and fifty kopecks", "1,800 roubles and 50 kopecks"),
        ("1.01", "EUR", "en", "one euro and one cent", "1 euro and 1 cent"),
    ],
)
def test_money(amount: str, currency: str, language: str, words: str, text: str) -> None:
    assert money_words(Decimal(amount), currency, language) == words
    assert money_text(Decimal(amount), currency, language) == text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((Decimal("-1"), "RUB", "ru"), "negative"),
        ((Decimal("1"), "GBP", "ru"), "unsupported currency 'GBP'"),
        ((Decimal("1"), "RUB", "de"), "unsupported language 'de'"),
        ((Decimal("NaN"), "RUB", "ru"), "not a number"),
        ((Decimal("1000000000000"), "RUB", "ru"), "out of range"),
    ],
)
def test_money_refuses_what_it_cannot_say(args: tuple[Decimal, str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        money_words(*args)


def test_number_words_range_and_type() -> None:
    with pytest.raises(ValueError, match="out of range"):
        number_words(-1, "ru")
    with pytest.raises(TypeError):
        number_words(1.5, "ru")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gender"):
        number_words(1, "ru", "x")


@pytest.mark.parametrize(
    ("n", "language", "case", "expected"),
    [
        (1, "ru", "nom", "первое"),
        (3, "ru", "nom", "третье"),
        (3, "ru", "gen", "третьего"),
        (11, "ru", "gen", "одиннадцатого"),
        (20, "ru", "nom", "двадцатое"),
        (23, "ru", "gen", "двадцать третьего"),
        (31, "ru", "nom", "тридцать первое"),
        (2000, "ru", "gen", "двухтысячного"),
        (2025, "ru", "gen", "две тысячи двадцать пятого"),
        (2100, "ru", "gen", "две тысячи сотого"),
        (3, "uk", "nom", "третє"),
        (3, "uk", "gen", "третього"),
        (25, "uk", "nom", "двадцять п'яте"),
        (2000, "uk", "gen", "двохтисячного"),
        (1, "en", "nom", "first"),
        (2, "en", "nom", "second"),
        (3, "en", "nom", "third"),
        (12, "en", "nom", "twelfth"),
        (20, "en", "nom", "twentieth"),
        (22, "en", "nom", "twenty-second"),
        (31, "en", "nom", "thirty-first"),
    ],
)
def test_ordinals(n: int, language: str, case: str, expected: str) -> None:
    assert ordinal_words(n, language, case) == expected


@pytest.mark.parametrize(
    ("d", "language", "kwargs", "expected"),
    [
        (date(2025, 11, 25), "ru", {}, "двадцать пятое ноября"),
        (date(2025, 11, 25), "ru", {"case": "gen"}, "двадцать пятого ноября"),
        (date(2025, 11, 25), "ru", {"with_year": True}, "двадцать пятое ноября две тысячи двадцать пятого года"),
        (date(2025, 1, 1), "ru", {}, "первое января"),
        (date(2025, 3, 3), "ru", {"case": "gen"}, "третьего марта"),
        (date(2025, 5, 13), "ru", {}, "тринадцатое мая"),
        (date(2000, 12, 31), "ru", {"with_year": True}, "тридцать первое декабря двухтысячного года"),
        (date(2025, 11, 25), "uk", {}, "двадцять п'яте листопада"),
        (date(2025, 11, 25), "uk", {"case": "gen"}, "двадцять п'ятого листопада"),
        (date(2025, 2, 3), "uk", {"with_year": True}, "третє лютого дві тисячі двадцять п'ятого року"),
        (date(2025, 11, 25), "en", {}, "November twenty-fifth"),
        (date(2025, 11, 25), "en", {"case": "gen"}, "November twenty-fifth"),
        (date(2025, 7, 1), "en", {"with_year": True}, "July first, twenty twenty-five"),
        (date(2005, 7, 2), "en", {"with_year": True}, "July second, two thousand five"),
        (date(2000, 7, 3), "en", {"with_year": True}, "July third, two thousand"),
    ],
)
def test_date_words(d: date, language: str, kwargs: dict[str, object], expected: str) -> None:
    assert date_words(d, language, **kwargs) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("d", "language", "with_year", "expected"),
    [
        (date(2025, 11, 25), "ru", False, "25 ноября"),
        (date(2025, 11, 25), "ru", True, "25 ноября 2025 г."),
        (date(2025, 11, 25), "uk", False, "25 листопада"),
        (date(2025, 11, 25), "en", False, "November 25"),
        (date(2025, 11, 25), "en", True, "November 25, 2025"),
    ],
)
def test_date_text(d: date, language: str, with_year: bool, expected: str) -> None:
    assert date_text(d, language, with_year) == expected


def test_every_day_of_a_year_has_words_in_every_language() -> None:
    day = date(2024, 1, 1)  # a leap year: 366 days, every day number 1..31
    seen = set()
    while day.year == 2024:
        for language in ("ru", "uk", "en"):
            for case in ("nom", "gen"):
                text = date_words(day, language, case=case)
                assert text and "  " not in text and not any(ch.isdigit() for ch in text)
                seen.add(text)
        day = date.fromordinal(day.toordinal() + 1)
    assert len(seen) == 366 * 5  # ru and uk have two distinct cases, en one
