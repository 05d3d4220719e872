"""The voice pack's grammar: amount -> fragment ids and date -> fragment ids, per language.

The expected sequences are written out by hand from Russian and Ukrainian grammar (the units,
thousands and currency forms below), not computed by the code under test; every sequence is also
checked to say exactly what ivr.prompts.words says (the words the synthetic voice would read) and
to be played entirely from recordings when the pack is complete."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from ivr.prompts import fragments, words
from ivr.prompts.context import sample_context
from ivr.voice.compose import RECORDED, plan_phrase
from ivr.voice.pack import manifest_text

# units (whole roubles / hryvnias) -> the number's fragments and the noun form, by the gender of
# the currency: RUB is masculine ("один рубль", "два рубля"), UAH feminine ("одна гривня", "дві").
UNITS_TABLE: dict[int, tuple[list[str], list[str], str]] = {
    # n: (fragments with a masculine noun, fragments with a feminine noun, noun form)
    0: (["num_0"], ["num_0"], "many"),
    1: (["num_1_m"], ["num_1_f"], "one"),
    2: (["num_2_m"], ["num_2_f"], "few"),
    3: (["num_3"], ["num_3"], "few"),
    4: (["num_4"], ["num_4"], "few"),
    5: (["num_5"], ["num_5"], "many"),
    10: (["num_10"], ["num_10"], "many"),
    11: (["num_11"], ["num_11"], "many"),
    12: (["num_12"], ["num_12"], "many"),
    13: (["num_13"], ["num_13"], "many"),
    14: (["num_14"], ["num_14"], "many"),
    19: (["num_19"], ["num_19"], "many"),
    20: (["num_20"], ["num_20"], "many"),
    21: (["num_20", "num_1_m"], ["num_20", "num_1_f"], "one"),
    22: (["num_20", "num_2_m"], ["num_20", "num_2_f"], "few"),
    25: (["num_20", "num_5"], ["num_20", "num_5"], "many"),
    99: (["num_90", "num_9"], ["num_90", "num_9"], "many"),
    100: (["num_100"], ["num_100"], "many"),
    101: (["num_100", "num_1_m"], ["num_100", "num_1_f"], "one"),
    111: (["num_100", "num_11"], ["num_100", "num_11"], "many"),
    112: (["num_100", "num_12"], ["num_100", "num_12"], "many"),
    122: (["num_100", "num_20", "num_2_m"], ["num_100", "num_20", "num_2_f"], "few"),
    999: (["num_900", "num_90", "num_9"], ["num_900", "num_90", "num_9"], "many"),
    # thousands are feminine in both languages: "одна тысяча", "две тысячи", "пять тысяч"
    1000: (["num_1_f", "thousand_one"], ["num_1_f", "thousand_one"], "many"),
    1001: (["num_1_f", "thousand_one", "num_1_m"], ["num_1_f", "thousand_one", "num_1_f"], "one"),
    1800: (["num_1_f", "thousand_one", "num_800"], ["num_1_f", "thousand_one", "num_800"], "many"),
    2000: (["num_2_f", "thousand_few"], ["num_2_f", "thousand_few"], "many"),
    2002: (["num_2_f", "thousand_few", "num_2_m"], ["num_2_f", "thousand_few", "num_2_f"], "few"),
    4000: (["num_4", "thousand_few"], ["num_4", "thousand_few"], "many"),
    5000: (["num_5", "thousand_many"], ["num_5", "thousand_many"], "many"),
    11000: (["num_11", "thousand_many"], ["num_11", "thousand_many"], "many"),
    12000: (["num_12", "thousand_many"], ["num_12", "thousand_many"], "many"),
    21000: (["num_20", "num_1_f", "thousand_one"], ["num_20", "num_1_f", "thousand_one"], "many"),
    22000: (["num_20", "num_2_f", "thousand_few"], ["num_20", "num_2_f", "thousand_few"], "many"),
    25000: (["num_20", "num_5", "thousand_many"], ["num_20", "num_5", "thousand_many"], "many"),
    100000: (["num_100", "thousand_many"], ["num_100", "thousand_many"], "many"),
    101000: (["num_100", "num_1_f", "thousand_one"], ["num_100", "num_1_f", "thousand_one"], "many"),
    999999: (["num_900", "num_90", "num_9", "thousand_many", "num_900", "num_90", "num_9"],
             ["num_900", "num_90", "num_9", "thousand_many", "num_900", "num_90", "num_9"], "many"),
    # millions are masculine: "один миллион", "два миллиона"
    1000000: (["num_1_m", "million_one"], ["num_1_m", "million_one"], "many"),
}
# kopecks (копейка / копійка, feminine in both languages) -> fragments and noun form
CENTS_TABLE: dict[int, tuple[list[str], str]] = {
    1: (["num_1_f"], "one"),
    2: (["num_2_f"], "few"),
    5: (["num_5"], "many"),
    11: (["num_11"], "many"),
    21: (["num_20", "num_1_f"], "one"),
    50: (["num_50"], "many"),
    99: (["num_90", "num_9"], "many"),
}
# language, currency, main noun id, is the main noun feminine
CASES = [("ru", "RUB", "rouble", False), ("uk", "UAH", "hryvnia", True),
         ("ru", "UAH", "hryvnia", True), ("uk", "RUB", "rouble", False)]


def expected(units: int, cents: int, unit_id: str, feminine: bool) -> list[str]:
    masc, fem, form = UNITS_TABLE[units]
    main = [*(fem if feminine else masc), f"{unit_id}_{form}"]
    if not cents:
        return main
    cent_ids, cent_form = CENTS_TABLE[cents]
    small = [*cent_ids, f"kopeck_{cent_form}"]
    return [*main, *small] if units else small


@pytest.mark.parametrize(("language", "currency", "unit_id", "feminine"), CASES)
def test_every_boundary_form_of_an_amount(language: str, currency: str, unit_id: str, feminine: bool) -> None:
    everything = set(fragments.catalogue(language))
    checked = 0
    for units in UNITS_TABLE:
        for cents in (0, *CENTS_TABLE):
            amount = Decimal(units) + Decimal(cents) / 100
            ids = fragments.money_fragments(amount, currency, language)
            assert ids == expected(units, cents, unit_id, feminine), f"{language} {currency} {amount}"
            assert fragments.fragment_words(ids, language) == words.money_words(amount, currency, language)
            text = words.money_words(amount, currency, language)
            parts = plan_phrase(text, language, {text: ids}, everything)
            assert [p.fragment for p in parts] == ids and all(p.kind == RECORDED for p in parts)
            checked += 1
    assert checked == len(UNITS_TABLE) * (1 + len(CENTS_TABLE))


def test_concrete_sequences_read_as_people_say_them() -> None:
    assert fragments.fragment_words(fragments.money_fragments(Decimal("21001.21"), "RUB", "ru"), "ru") == (
        "двадцать одна тысяча один рубль двадцать одна копейка")
    assert fragments.fragment_words(fragments.money_fragments(Decimal("2002.02"), "UAH", "uk"), "uk") == (
        "дві тисячі дві гривні дві копійки")
    assert fragments.fragment_words(fragments.money_fragments(Decimal("5000.05"), "UAH", "uk"), "uk") == (
        "п'ять тисяч гривень п'ять копійок")
    assert fragments.fragment_words(fragments.money_fragments(Decimal("1000000"), "RUB", "ru"), "ru") == (
        "один миллион рублей")


@pytest.mark.parametrize("language", ["ru", "uk"])
@pytest.mark.parametrize("currency", ["RUB", "UAH"])
def test_dense_sample_0_to_a_million_says_what_the_words_say(language: str, currency: str) -> None:
    """Every whole amount to 3000, then every 997th to a million, each with 0/1/2/5/11/21/50
    kopecks: the sequence says money_words() word for word and uses only catalogued fragments."""
    everything = set(fragments.catalogue(language))
    units = [*range(0, 3001), *range(3001, 1_000_000, 997), 1_000_000]
    for n in units:
        for cents in (0, 1, 2, 5, 11, 21, 50):
            amount = Decimal(n) + Decimal(cents) / 100
            ids = fragments.money_fragments(amount, currency, language)
            assert set(ids) <= everything
            assert fragments.fragment_words(ids, language) == words.money_words(amount, currency, language), amount


def test_the_joining_word_between_units_and_cents() -> None:
    ru = fragments.money_fragments(Decimal("1800.50"), "RUB", "ru", conjunction=True)
    assert ru == ["num_1_f", "thousand_one", "num_800", "rouble_many", "and", "num_50", "kopeck_many"]
    assert fragments.fragment_words(ru, "ru") == "одна тысяча восемьсот рублей и пятьдесят копеек"
    uk = fragments.money_fragments(Decimal("1.01"), "UAH", "uk", conjunction=True)
    assert fragments.fragment_words(uk, "uk") == "одна гривня та одна копійка"
    # no "and" when one of the two is not said
    assert "and" not in fragments.money_fragments(Decimal("18"), "RUB", "ru", conjunction=True)
    assert "and" not in fragments.money_fragments(Decimal("0.18"), "RUB", "ru", conjunction=True)


def test_rounding_and_refusals_follow_money_words() -> None:
    assert fragments.money_fragments(Decimal("0.005"), "RUB", "ru") == ["num_1_f", "kopeck_one"]  # half-up
    with pytest.raises(ValueError):
        fragments.money_fragments(Decimal("-1"), "RUB", "ru")
    with pytest.raises(ValueError):
        fragments.money_fragments(Decimal("1"), "GBP", "ru")
    with pytest.raises(ValueError, match="no voice-pack fragments"):
        fragments.money_fragments(Decimal("1"), "USD", "en")


@pytest.mark.parametrize("language", ["ru", "uk"])
@pytest.mark.parametrize("case", ["nom", "gen"])
def test_every_day_of_every_month(language: str, case: str) -> None:
    day = dt.date(2024, 1, 1)  # a leap year: 29 February too
    seen = 0
    while day.year == 2024:
        ids = fragments.date_fragments(day, language, case)
        if day.day <= 20 or day.day == 30:
            want = [f"ord_{day.day}_{case}", f"month_{day.month}"]
        else:
            tens, units = divmod(day.day, 10)
            want = [f"num_{tens * 10}", f"ord_{units}_{case}", f"month_{day.month}"]
        assert ids == want, day
        assert fragments.fragment_words(ids, language) == words.date_words(day, language, case=case)
        day += dt.timedelta(days=1)
        seen += 1
    assert seen == 366


def test_dates_read_as_people_say_them() -> None:
    assert fragments.fragment_words(fragments.date_fragments(dt.date(2025, 11, 25), "ru", "gen"), "ru") == "двадцать пятого ноября"
    assert fragments.fragment_words(fragments.date_fragments(dt.date(2025, 3, 1), "ru", "nom"), "ru") == "первое марта"
    assert fragments.fragment_words(fragments.date_fragments(dt.date(2025, 8, 31), "uk", "gen"), "uk") == "тридцять першого серпня"
    assert fragments.fragment_words(fragments.date_fragments(dt.date(2025, 2, 23), "uk", "nom"), "uk") == "двадцять третє лютого"


def test_catalogue_is_the_same_list_in_both_languages() -> None:
    ru, uk = fragments.catalogue("ru"), fragments.catalogue("uk")
    assert list(ru) == list(uk)
    assert len(ru) == 121
    assert ru["num_2_f"] == "две" and uk["num_2_f"] == "дві"
    assert ru["thousand_few"] == "тысячи" and uk["hryvnia_many"] == "гривень" and uk["kopeck_one"] == "копійка"
    assert ru["month_5"] == "мая" and uk["month_5"] == "травня"
    assert ru["and"] == "и" and uk["and"] == "та"


def test_committed_manifest_lists_the_catalogue() -> None:
    """ivr/data/voice_pack/manifest.toml is generated (scripts/make_voice_pack.py --manifest)."""
    committed = (Path(__file__).resolve().parents[2] / "ivr" / "data" / "voice_pack" / "manifest.toml").read_text(encoding="utf-8")
    assert committed == manifest_text("synthetic espeak-ng")


def test_spans_from_a_render_context() -> None:
    context = sample_context("ru")
    spans = fragments.spans_from_context(context)
    assert spans[context["amount_words"]] == fragments.money_fragments(Decimal("1800.50"), "RUB", "ru")
    assert spans[context["due_date_words_gen"]] == fragments.date_fragments(context["due_date"], "ru", "gen")
    assert spans[context["promise_date_words"]] == fragments.date_fragments(context["promise_date"], "ru", "nom")
    assert spans[context["today_words"]] == fragments.date_fragments(context["today"], "ru", "nom")
    assert fragments.spans_from_context(sample_context("en")) == {}
    sparse = fragments.spans_from_context(sample_context("uk", sparse=True))
    assert set(sparse) == {sample_context("uk")["amount_words"], sample_context("uk")["today_words"]}
