"""Numbers, money and dates as words, for speech (TTS) and as digits with the right noun forms,
for display. Pure functions; Russian, Ukrainian and English.

Why words and not digits for TTS: a speech engine reads "1 800 рублей" as it likes (espeak-ng
says "один восемьсот" for a space-grouped number and never inflects the noun to match), so the
text handed to the engine is fully in words and grammatically agreed: "одна тысяча восемьсот
рублей пятьдесят копеек". The *_text variants ("1 800 рублей 50 копеек") are for screens.

Dates for speech use the day as an ordinal in words, as people say them on the phone. Russian and
Ukrainian need two grammatical cases: the nominative names a date ("двадцать пятое ноября"),
the genitive is what follows "до", "не позднее" and what means "on that date" ("оплатить
двадцать пятого ноября"). English has one form ("November twenty-fifth").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from types import ModuleType

from ivr.prompts import words_en, words_ru, words_uk

LANGUAGES = ("ru", "uk", "en")
MAX_NUMBER = 999_999_999_999
GENDERS = ("m", "f", "n")
CASES = ("nom", "gen")
CURRENCIES = ("RUB", "UAH", "USD", "EUR")

_SLAVIC: dict[str, ModuleType] = {"ru": words_ru, "uk": words_uk}


def _check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r} (supported: {', '.join(LANGUAGES)})")
    return language


def _check_number(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"expected an int, got {n!r}")
    if not 0 <= n <= MAX_NUMBER:
        raise ValueError(f"number out of range 0..{MAX_NUMBER}: {n}")


def plural_form(n: int, forms: tuple[str, str, str], language: str) -> str:
    """The noun form that agrees with the number n.

    ru/uk: forms = (one, few, many): 1, 21, 101 -> one; 2-4, 22-24 -> few; 0, 5-20, 11-14, 25 -> many.
    en: forms[0] for exactly 1, forms[2] (the plural) otherwise.
    """
    _check_language(language)
    n = abs(n)
    if language == "en":
        return forms[0] if n == 1 else forms[2]
    if 11 <= n % 100 <= 14:
        return forms[2]
    last = n % 10
    if last == 1:
        return forms[0]
    if 2 <= last <= 4:
        return forms[1]
    return forms[2]


def _slavic_below_1000(n: int, gender: str, t: ModuleType) -> list[str]:
    hundreds, rest = divmod(n, 100)
    words = [t.HUNDREDS[hundreds]] if hundreds else []
    if 10 <= rest <= 19:
        words.append(t.TEENS[rest - 10])
    else:
        tens, units = divmod(rest, 10)
        if tens:
            words.append(t.TENS[tens])
        if units:
            words.append(t.UNITS[gender][units])
    return words


def _slavic_cardinal(n: int, gender: str, t: ModuleType) -> str:
    if n == 0:
        return str(t.ZERO)
    groups: list[int] = []
    while n:
        n, group = divmod(n, 1000)
        groups.append(group)
    words: list[str] = []
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if not group:
            continue
        if index == 0:
            words += _slavic_below_1000(group, gender, t)
        else:
            forms, scale_gender = t.SCALES[index - 1]
            words += _slavic_below_1000(group, scale_gender, t)
            words.append(plural_form(group, forms, "ru"))
    return " ".join(words)


def number_words(n: int, language: str, gender: str = "m") -> str:
    """Cardinal number in words, 0..999 999 999 999.

    gender (ru/uk) agrees "one" and "two" with the noun: m "один/два", f "одна/две" (ru) or
    "одна/дві" (uk), n "одно/два" (ru) or "одне/два" (uk). Ignored in English.
    """
    _check_language(language)
    _check_number(n)
    if gender not in GENDERS:
        raise ValueError(f"gender must be one of {GENDERS}, got {gender!r}")
    if language == "en":
        return words_en.cardinal(n)
    return _slavic_cardinal(n, gender, _SLAVIC[language])


def ordinal_words(n: int, language: str, case: str = "nom") -> str:
    """Ordinal in words, 1..9999: ru "двадцать пятое"/"двадцать пятого" (neuter nominative /
    genitive, the forms a date needs), uk "двадцять п'яте"/"двадцять п'ятого", en "twenty-fifth"."""
    _check_language(language)
    if case not in CASES:
        raise ValueError(f"case must be one of {CASES}, got {case!r}")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 9999:
        raise ValueError(f"ordinal out of range 1..9999: {n!r}")
    if language == "en":
        return words_en.ordinal(n)
    t = _SLAVIC[language]
    thousands, rest = divmod(n, 1000)
    if rest == 0:  # "тысячное", "двухтысячного": one fused word
        return (t.THOUSAND_PREFIX[thousands] if thousands > 1 else "") + t.ORD_THOUSAND[case]
    words = [_slavic_cardinal(thousands * 1000, "m", t)] if thousands else []
    hundreds, tail = divmod(rest, 100)
    if tail == 0:
        words.append(t.ORD_HUNDREDS[case][hundreds])
        return " ".join(words)
    if hundreds:
        words.append(t.HUNDREDS[hundreds])
    tens, units = divmod(tail, 10)
    if 10 <= tail <= 19:
        words.append(t.ORD_TEENS[case][tail - 10])
    elif units == 0:
        words.append(t.ORD_TENS[case][tens])
    else:
        if tens:
            words.append(t.TENS[tens])
        words.append(t.ORD_UNITS[case][units])
    return " ".join(words)


# -- money -------------------------------------------------------------------------------------

def _split_money(amount: Decimal, currency: str, language: str) -> tuple[int, int]:
    _check_language(language)
    if currency not in CURRENCIES:
        raise ValueError(f"unsupported currency {currency!r} (supported: {', '.join(CURRENCIES)})")
    if not isinstance(amount, Decimal):
        amount = Decimal(str(amount))
    if not amount.is_finite():
        raise ValueError(f"amount is not a number: {amount}")
    if amount < 0:
        raise ValueError(f"amount must not be negative: {amount}")
    cents = int(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) * 100)
    units, fraction = divmod(cents, 100)
    _check_number(units)
    return units, fraction


def money_words(amount: Decimal, currency: str, language: str) -> str:
    """The amount fully in words, for speech: "одна тысяча восемьсот рублей пятьдесят копеек",
    "дві гривні одна копійка", "one thousand eight hundred dollars and fifty cents".

    Rounded half-up to cents. Zero cents are not said; an amount below one unit says only the
    cents ("одна копейка"); zero is "ноль рублей"."""
    t = _SLAVIC.get(language)

    def say(n: int, gender: str, _units: bool) -> str:
        return words_en.cardinal(n) if t is None else _slavic_cardinal(n, gender, t)

    return _money_phrase(amount, currency, language, say)


def group_digits(n: int, language: str) -> str:
    """1800 -> "1 800" (ru/uk, with a no-break space) or "1,800" (en)."""
    _check_language(language)
    text = f"{n:,}"
    return text if language == "en" else text.replace(",", "\u00a0")


def money_text(amount: Decimal, currency: str, language: str) -> str:
    """The amount in digits with agreed nouns, for display: "1 800 рублей 50 копеек",
    "1 рубль", "2 гривні", "1,800 dollars and 50 cents"."""
    return _money_phrase(amount, currency, language,
                         lambda n, _gender, units: group_digits(n, language) if units else str(n))


def _money_phrase(amount: Decimal, currency: str, language: str, say: Callable[[int, str, bool], str]) -> str:
    """Units and cents with their agreed nouns; `say(n, gender, is_units)` says one count (in
    words for speech, in digits for display). Zero cents are left out; below one unit only the
    cents are said."""
    units, cents = _split_money(amount, currency, language)
    if language == "en":
        (one, many), (cent_one, cent_many) = words_en.CURRENCIES[currency]
        main = f"{say(units, 'm', True)} {one if units == 1 else many}"
        small = f"{say(cents, 'm', False)} {cent_one if cents == 1 else cent_many}"
        joiner = " and "
    else:
        t = _SLAVIC[language]
        (forms, gender), (cent_forms, cent_gender) = t.CURRENCIES[currency]
        main = f"{say(units, gender, True)} {plural_form(units, forms, language)}"
        small = f"{say(cents, cent_gender, False)} {plural_form(cents, cent_forms, language)}"
        joiner = " "
    if cents and units:
        return f"{main}{joiner}{small}"
    return small if cents else main
    t = _SLAVIC[language]
    (forms, _gender), (cent_forms, _cent_gender) = t.CURRENCIES[currency]
    main = f"{group_digits(units, language)} {plural_form(units, forms, language)}"
    small = f"{cents} {plural_form(cents, cent_forms, language)}"
    if cents and units:
        return f"{main} {small}"
    return small if cents else main


# -- dates -------------------------------------------------------------------------------------

def date_words(d: date, language: str, with_year: bool = False, case: str = "nom") -> str:
    """A date for speech, the day as an ordinal in words.

    ru: "двадцать пятое ноября" (case="nom"), "двадцать пятого ноября" (case="gen");
        with_year adds the year in the genitive: "... две тысячи двадцать пятого года".
    uk: "двадцять п'яте листопада" / "двадцять п'ятого листопада" (+ "... року").
    en: "November twenty-fifth" (+ ", twenty twenty-five"); case makes no difference.
    """
    _check_language(language)
    if case not in CASES:
        raise ValueError(f"case must be one of {CASES}, got {case!r}")
    if language == "en":
        text = f"{words_en.MONTHS[d.month - 1]} {words_en.ordinal(d.day)}"
        return f"{text}, {words_en.year(d.year)}" if with_year else text
    t = _SLAVIC[language]
    text = f"{ordinal_words(d.day, language, case)} {t.MONTHS_GEN[d.month - 1]}"
    if with_year:
        text += f" {ordinal_words(d.year, language, 'gen')} {t.YEAR_WORD_GEN}"
    return text


def date_text(d: date, language: str, with_year: bool = False) -> str:
    """A date for display: "25 ноября", "25 листопада", "November 25" (+ " 2025 г.", ", 2025")."""
    _check_language(language)
    if language == "en":
        text = f"{words_en.MONTHS[d.month - 1]} {d.day}"
        return f"{text}, {d.year}" if with_year else text
    t = _SLAVIC[language]
    text = f"{d.day} {t.MONTHS_GEN[d.month - 1]}"
    return f"{text} {d.year} {t.YEAR_ABBR}" if with_year else text
