"""Phone normalization: the fast path, the phonenumbers fallback and their agreement."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.phone import (
    PhoneError,
    _slow,
    country_for_phone,
    normalize_phone,
    normalize_with_country,
    timezone_for_phone,
)

GOOD = [
    # RU mobile in every form billing systems and people write it
    ("8 (916) 123-45-67", "RU", "+79161234567"),
    ("+7 916 1234567", "RU", "+79161234567"),
    ("+7 (916) 123 45 67", "RU", "+79161234567"),
    ("79161234567", "RU", "+79161234567"),
    ("89161234567", "RU", "+79161234567"),
    ("9161234567", "RU", "+79161234567"),
    ("916.123.45.67", "RU", "+79161234567"),
    ("  8-916-123-45-67\u00a0", "RU", "+79161234567"),
    # RU landlines and toll-free
    ("8 (495) 123-45-67", "RU", "+74951234567"),
    ("(383) 212-34-56", "RU", "+73832123456"),
    ("8 800 555 35 35", "RU", "+78005553535"),
    ("8005553535", "RU", "+78005553535"),
    # foreign numbers with their country code
    ("+380 44 123 45 67", "RU", "+380441234567"),
    ("+380501234567", "RU", "+380501234567"),
    ("+1 212 555 0123", "RU", "+12125550123"),
    ("+49 30 12345678", "RU", "+493012345678"),
    ("+7 701 123 4567", "RU", "+77011234567"),  # Kazakhstan shares +7
    ("8 10 380 44 123 45 67", "RU", "+380441234567"),  # Russian international prefix 810
    # other default regions
    ("044 123 45 67", "UA", "+380441234567"),
    ("0501234567", "UA", "+380501234567"),
    ("(212) 555-0123", "US", "+12125550123"),
    ("8 701 123 4567", "KZ", "+77011234567"),
]

BAD = [
    ("12345", "too short"),
    ("", "empty"),
    ("   ", "empty"),
    ("8 916 123", "too short (no area code)"),
    ("123-45-67", "too short (no area code)"),
    ("8916123456789012", "too long"),
    ("+7 916 123 45 67 доб. 12", "not a phone number"),
    ("abc", "not a phone number"),
    ("+999 1234567890", "unknown country code"),
    ("8 (000) 123-45-67", "not a valid number for RU"),
    ("+7 (111) 123 45 67", "not a valid number for RU"),
    ("+7 916 123 45 67 8 (916) 123-45-68 +7 999", "too long"),
]


@pytest.mark.parametrize(("raw", "region", "expected"), GOOD)
def test_normalize_accepts_common_forms(raw, region, expected):
    assert normalize_phone(raw, region) == expected
    # and phonenumbers agrees with every answer
    assert phonenumbers.format_number(phonenumbers.parse(raw.strip(), region),
                                      phonenumbers.PhoneNumberFormat.E164) == expected


@pytest.mark.parametrize(("raw", "reason"), BAD)
def test_normalize_rejects_with_reason(raw, reason):
    with pytest.raises(PhoneError) as info:
        normalize_phone(raw, "RU")
    assert str(info.value) == reason
    assert isinstance(info.value, ValueError)


def test_country_comes_with_the_number():
    assert normalize_with_country("8 916 123 45 67") == ("+79161234567", "RU")
    assert normalize_with_country("+380441234567") == ("+380441234567", "UA")
    assert normalize_with_country("+7 701 123 4567") == ("+77011234567", "KZ")
    # +7 800 is valid in KZ as well, but belongs to RU
    assert normalize_with_country("8 800 555 35 35", "KZ") == ("+78005553535", "RU")
    assert country_for_phone("+79161234567") == "RU"
    assert country_for_phone("+380441234567") == "UA"
    assert country_for_phone("+77011234567") == "KZ"
    assert country_for_phone("+999123") is None


def test_timezone_from_geographic_numbers_only():
    assert timezone_for_phone("+74951234567", "Asia/Omsk") == "Europe/Moscow"
    assert timezone_for_phone("+73832123456", "Europe/Moscow") == "Asia/Novosibirsk"
    assert timezone_for_phone("+73432123456", "Europe/Moscow") == "Asia/Yekaterinburg"
    # a Russian mobile may be anywhere in eleven zones: the default decides
    assert timezone_for_phone("+79161234567", "Europe/Samara") == "Europe/Samara"
    assert timezone_for_phone("+79161234567", "Europe/Moscow") == "Europe/Moscow"
    assert timezone_for_phone("not a number", "Europe/Moscow") == "Europe/Moscow"


def _reference(text: str, region: str) -> tuple[str, str | None] | str:
    try:
        return _slow(text.strip(), region)
    except PhoneError as exc:
        return f"error: {exc}"


def _ours(text: str, region: str) -> tuple[str, str | None] | str:
    try:
        return normalize_with_country(text, region)
    except PhoneError as exc:
        return f"error: {exc}"


digits = st.text(alphabet="0123456789", min_size=4, max_size=16)


@st.composite
def phone_like(draw):
    body = draw(digits)
    if draw(st.booleans()):
        body = draw(st.sampled_from(["7", "8", "9", "79", "89", "380", "0", "1", "77", "49"])) + body
    if draw(st.booleans()) and len(body) > 6:
        body = f"{body[:1]} ({body[1:4]}) {body[4:7]}-{body[7:]}"
    return ("+" if draw(st.booleans()) else "") + body


@settings(max_examples=800, deadline=None)
@given(text=phone_like(), region=st.sampled_from(["RU", "UA", "KZ", "US", "DE", "BY"]))
def test_fast_path_agrees_with_phonenumbers(text, region):
    ours, ref = _ours(text, region), _reference(text, region)
    if isinstance(ref, str):
        assert isinstance(ours, str), (text, region, ours, ref)
    else:
        assert ours == ref, (text, region)


def test_costs_extra_agrees_with_phonenumbers_on_every_example_number():
    import phonenumbers
    from phonenumbers import PhoneNumberType as T

    from ivr.phone import costs_extra

    labels = {T.PREMIUM_RATE: "premium-rate number", T.SHARED_COST: "shared-cost number"}
    checked = 0
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in (T.PREMIUM_RATE, T.SHARED_COST, T.MOBILE, T.FIXED_LINE, T.TOLL_FREE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            assert costs_extra(e164) == labels.get(phonenumbers.number_type(example)), (region, kind, e164)
            checked += 1
    assert checked > 500


def _zone_by_phonenumbers(e164: str, default: str) -> str:
    """What timezone_for_phone answered before its shortcut: phonenumbers all the way."""
    from phonenumbers import timezone as pn_timezone

    try:
        zones = pn_timezone.time_zones_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return default
    if len(zones) != 1 or zones[0] == pn_timezone.UNKNOWN_TIMEZONE:
        return default
    try:
        ZoneInfo(zones[0])
    except (KeyError, ValueError, OSError):  # as timezone_for_phone: a zone the tz database lacks
        return default
    return zones[0]


def test_timezone_shortcut_agrees_with_phonenumbers_on_every_example_number():
    """The shortcut (no parse) answers what phonenumbers would, over every region's example
    numbers of every type, and it answers for many of them."""
    from phonenumbers import PhoneNumberType as T

    from ivr.phone import _zones_without_parsing

    fired = checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (T.FIXED_LINE, T.MOBILE, T.FIXED_LINE_OR_MOBILE, T.TOLL_FREE, T.PREMIUM_RATE,
                     T.SHARED_COST, T.VOIP, T.PERSONAL_NUMBER, T.PAGER, T.UAN, T.VOICEMAIL):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            checked += 1
            if _zones_without_parsing(e164) is not None:
                fired += 1
            assert timezone_for_phone.__wrapped__(e164, "Default/Zone") == _zone_by_phonenumbers(
                e164, "Default/Zone"), (region, kind, e164)
    assert checked > 1000 and fired > 500


@st.composite
def e164_like(draw):
    prefix = draw(st.sampled_from(["79", "7", "749", "7495", "7812", "7383", "7800", "7700", "77", "380", "375",
                                   "1", "49", "86", "55", "52", "44", "998"]))
    return "+" + prefix + draw(st.text(alphabet="0123456789", min_size=0, max_size=11))


@settings(max_examples=3000, deadline=None)
@given(e164=e164_like())
def test_timezone_shortcut_agrees_with_phonenumbers_on_any_digits(e164):
    assert timezone_for_phone.__wrapped__(e164, "Default/Zone") == _zone_by_phonenumbers(e164, "Default/Zone")


def test_timezone_shortcut_answers_for_russian_numbers_and_leaves_the_rest_to_phonenumbers():
    from ivr.phone import _zones_without_parsing

    assert len(_zones_without_parsing("+79161234567")) > 10  # a mobile: Russia's zones, so the default
    assert _zones_without_parsing("+74951234567") == ("Europe/Moscow",)  # a landline: its area's zone
    assert _zones_without_parsing("+73832123456") == ("Asia/Novosibirsk",)
    assert _zones_without_parsing("+77011234567") is None  # Kazakhstan shares +7: phonenumbers decides
    assert _zones_without_parsing("+7916123456") is None  # too short to be valid: phonenumbers decides
    assert _zones_without_parsing("79161234567") is None and _zones_without_parsing("+") is None


def test_timezone_shortcut_agrees_with_phonenumbers_near_every_example_number():
    """Example numbers with their last 1-6 digits drawn at random (fixed seed): mostly valid
    numbers of every region and type, where the shortcut answers most."""
    import random

    from phonenumbers import PhoneNumberType as T

    from ivr.phone import _zones_without_parsing

    rnd = random.Random(11)
    examples = [phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
                for region in sorted(phonenumbers.SUPPORTED_REGIONS)
                for kind in (T.FIXED_LINE, T.MOBILE, T.TOLL_FREE, T.PREMIUM_RATE, T.VOIP, T.SHARED_COST, T.UAN)
                if (n := phonenumbers.example_number_for_type(region, kind)) is not None]
    fired = 0
    for _ in range(20000):
        e164 = rnd.choice(examples)
        k = rnd.randint(1, 6)
        e164 = e164[:-k] + "".join(rnd.choice("0123456789") for _ in range(k))
        fired += _zones_without_parsing(e164) is not None
        assert timezone_for_phone.__wrapped__(e164, "Default/Zone") == _zone_by_phonenumbers(
            e164, "Default/Zone"), e164
    assert fired > 10000


def test_timezone_shortcut_leaves_non_ascii_digits_to_phonenumbers():
    from ivr.phone import _zones_without_parsing

    arabic_indic = "+" + "".join(chr(0x0660 + int(d)) for d in "79161234567")
    assert _zones_without_parsing(arabic_indic) is None
    assert timezone_for_phone(arabic_indic, "Default/Zone") == _zone_by_phonenumbers(arabic_indic, "Default/Zone")
