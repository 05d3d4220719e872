"""Amounts and dates as sequences of recorded fragments (a voice pack), per language.

Pure functions: an amount or a date goes in, a list of fragment ids comes out; the words each id
says come from the same tables as ivr.prompts.words, so joining the fragments' words gives
exactly what money_words()/date_words() say (tests/prompts/test_fragments.py checks it for every
form). The renderer (ivr.voice.compose) plays the recorded file of each id and falls back to the
synthetic voice only for ids the pack lacks.

Why these fragments (what a speaker records once per language):
- numbers: 0; 1 and 2 in the masculine and the feminine ("один рубль", "одна копейка/тысяча",
  "два рубля", "две копейки"; uk "одна/дві"); 3-19; the tens; the hundreds. Every amount up to
  999 999 999 999 is built from them, as people say it.
- scale words in their three forms: "тысяча/тысячи/тысяч" (and millions, billions).
- currency nouns in their three forms: rouble/kopeck, hryvnia/kopiyka, dollar/cent, euro/cent.
- day ordinals 1-20 and 30 in the nominative ("двадцать пятое") and the genitive ("до двадцать
  пятого"); 21-29 and 31 are "двадцать"/"тридцать" + the unit's ordinal, as they are said.
- months in the genitive ("ноября"): a date is always "day month-genitive".
- the joining word "и" / "та" between the main unit and the cents, for a pack whose manifest
  asks for it ("... рублей и пятьдесят копеек"); without it the amount is said as money_words().
English has no pack (its amounts and dates are always synthetic).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from types import ModuleType
from typing import Any

from ivr.prompts import words, words_ru, words_uk

PACK_LANGUAGES = ("ru", "uk")
_TABLES: dict[str, ModuleType] = {"ru": words_ru, "uk": words_uk}
FORMS = ("one", "few", "many")
SCALE_IDS = ("thousand", "million", "billion")
# currency -> (main unit id, fraction id); the ids are words, the same for every language
CURRENCY_IDS: dict[str, tuple[str, str]] = {
    "RUB": ("rouble", "kopeck"),
    "UAH": ("hryvnia", "kopeck"),
    "USD": ("dollar", "cent"),
    "EUR": ("euro", "cent"),
}
AND_ID = "and"
_AND_TEXT = {"ru": "и", "uk": "та"}
# day ordinals recorded whole; 21-29 and 31 are composed from a tens cardinal and a unit ordinal
WHOLE_DAY_ORDINALS = (*range(1, 21), 30)


def _table(language: str) -> ModuleType:
    try:
        return _TABLES[language]
    except KeyError:
        raise ValueError(f"no voice-pack fragments for language {language!r} (have {', '.join(PACK_LANGUAGES)})") from None


def _unit_id(n: int, gender: str) -> str:
    """1..9: 1 and 2 carry the gender (m/f); 3..9 are the same for both."""
    if n in (1, 2):
        return f"num_{n}_{gender}"
    return f"num_{n}"


def _below_1000(n: int, gender: str) -> list[str]:
    hundreds, rest = divmod(n, 100)
    out = [f"num_{hundreds * 100}"] if hundreds else []
    if 10 <= rest <= 19:
        out.append(f"num_{rest}")
    else:
        tens, units = divmod(rest, 10)
        if tens:
            out.append(f"num_{tens * 10}")
        if units:
            out.append(_unit_id(units, gender))
    return out


def form_of(n: int) -> str:
    """"one", "few" or "many": the noun form that agrees with n in Russian and Ukrainian."""
    return words.plural_form(n, FORMS, "ru")


def number_fragments(n: int, language: str, gender: str = "m") -> list[str]:
    """A cardinal 0..999 999 999 999 as fragment ids; gender "m" or "f" agrees 1 and 2 with
    the noun that follows ("один рубль", "две копейки")."""
    t = _table(language)
    if gender not in ("m", "f"):
        raise ValueError(f"gender must be 'm' or 'f' for fragments, got {gender!r}")
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= words.MAX_NUMBER:
        raise ValueError(f"number out of range 0..{words.MAX_NUMBER}: {n!r}")
    if n == 0:
        return ["num_0"]
    groups: list[int] = []
    while n:
        n, group = divmod(n, 1000)
        groups.append(group)
    out: list[str] = []
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if not group:
            continue
        if index == 0:
            out += _below_1000(group, gender)
        else:
            _forms, scale_gender = t.SCALES[index - 1]
            out += _below_1000(group, scale_gender)
            out.append(f"{SCALE_IDS[index - 1]}_{form_of(group)}")
    return out


def money_fragments(amount: Decimal | int | float | str, currency: str, language: str, *, conjunction: bool = False) -> list[str]:
    """The amount as fragment ids, in the same shape as words.money_words(): units with their
    noun, then the cents with theirs; zero cents are not said, below one unit only the cents.
    conjunction=True puts "и"/"та" between the two."""
    t = _table(language)
    units, cents = words._split_money(Decimal(str(amount)), currency, language)
    (_forms, gender), (_cent_forms, cent_gender) = t.CURRENCIES[currency]
    unit_id, cent_id = CURRENCY_IDS[currency]
    main = [*number_fragments(units, language, gender), f"{unit_id}_{form_of(units)}"]
    small = [*number_fragments(cents, language, cent_gender), f"{cent_id}_{form_of(cents)}"]
    if units and cents:
        return [*main, AND_ID, *small] if conjunction else [*main, *small]
    return small if cents else main


def date_fragments(day: dt.date, language: str, case: str = "nom") -> list[str]:
    """A date as words.date_words() says it (no year): the day's ordinal in `case` ("nom":
    "двадцать пятое", "gen": "двадцать пятого") and the month in the genitive."""
    _table(language)
    if case not in words.CASES:
        raise ValueError(f"case must be one of {words.CASES}, got {case!r}")
    d = day.day
    if d in WHOLE_DAY_ORDINALS:
        out = [f"ord_{d}_{case}"]
    else:
        tens, units = divmod(d, 10)
        out = [f"num_{tens * 10}", f"ord_{units}_{case}"]
    return [*out, f"month_{day.month}"]


def catalogue(language: str) -> dict[str, str]:
    """Every fragment id of a language -> the words it says, in recording order."""
    t = _table(language)
    out: dict[str, str] = {"num_0": t.ZERO}
    for n in range(1, 10):
        if n in (1, 2):
            out[f"num_{n}_m"] = t.UNITS["m"][n]
            out[f"num_{n}_f"] = t.UNITS["f"][n]
        else:
            out[f"num_{n}"] = t.UNITS["m"][n]
    for n in range(10, 20):
        out[f"num_{n}"] = t.TEENS[n - 10]
    for n in range(2, 10):
        out[f"num_{n * 10}"] = t.TENS[n]
    for n in range(1, 10):
        out[f"num_{n * 100}"] = t.HUNDREDS[n]
    for scale_id, (forms, _gender) in zip(SCALE_IDS, t.SCALES, strict=True):
        for form, text in zip(FORMS, forms, strict=True):
            out[f"{scale_id}_{form}"] = text
    for currency, (unit_id, cent_id) in CURRENCY_IDS.items():
        (forms, _g), (cent_forms, _cg) = t.CURRENCIES[currency]
        for form, text in zip(FORMS, forms, strict=True):
            out.setdefault(f"{unit_id}_{form}", text)
        for form, text in zip(FORMS, cent_forms, strict=True):
            out.setdefault(f"{cent_id}_{form}", text)
    for case in words.CASES:
        for d in WHOLE_DAY_ORDINALS:
            out[f"ord_{d}_{case}"] = words.ordinal_words(d, language, case)
    for month in range(1, 13):
        out[f"month_{month}"] = t.MONTHS_GEN[month - 1]
    out[AND_ID] = _AND_TEXT[language]
    return out


def fragment_words(ids: list[str], language: str) -> str:
    """What a fragment sequence says (KeyError for an id outside the catalogue)."""
    table = catalogue_cached(language)
    return " ".join(table[i] for i in ids)


_CATALOGUES: dict[str, dict[str, str]] = {}


def catalogue_cached(language: str) -> dict[str, str]:
    if language not in _CATALOGUES:
        _CATALOGUES[language] = catalogue(language)
    return _CATALOGUES[language]


# context variable prefixes that hold a date (see ivr.prompts.context._date_vars)
DATE_PREFIXES = ("due_date", "block_date", "deadline", "promise_date")


def spans_from_context(context: Mapping[str, Any], *, conjunction: bool = False) -> dict[str, list[str]]:
    """The phrases of a render context a voice pack can say: spoken text -> fragment ids.

    The amount ("amount_words") and every date in both cases ("*_words", "*_words_gen",
    "today_words"). The renderer finds these texts in the rendered phrase; a template that
    says them with a filter ({{ amount | money_words }}) produces the same text and is found
    too. Empty for a language without a pack (English)."""
    language = str(context.get("language", ""))
    if language not in PACK_LANGUAGES:
        return {}
    spans: dict[str, list[str]] = {}
    amount, currency = context.get("amount"), context.get("currency")
    words_text = context.get("amount_words")
    if amount is not None and currency in CURRENCY_IDS and words_text:
        spans[str(words_text)] = money_fragments(amount, str(currency), language, conjunction=conjunction)
    dates: list[tuple[str, Any]] = [(p, context.get(p)) for p in DATE_PREFIXES]
    dates.append(("today", context.get("today")))
    for prefix, value in dates:
        if not isinstance(value, dt.date):
            continue
        for suffix, case in (("_words", "nom"), ("_words_gen", "gen")):
            text = context.get(prefix + suffix)
            if text:
                spans[str(text)] = date_fragments(value, language, case)
    return spans
