"""Phone numbers: normalization to E.164, time zone and country of a number.

`phonenumbers` costs ~20-50 µs per number, too slow for a million-row billing import, so the
common forms of the default region ("8 (916) 123-45-67", "+7 916 1234567", "79161234567",
"9161234567") take a fast path: strip the separators, try the region's national prefix / country
code / bare national number, and check the result against the region's own number patterns,
which we take from phonenumbers' metadata (so validity is exactly phonenumbers' validity).
Anything the fast path does not recognise goes to phonenumbers, which also explains why a number
is bad. tests/test_phone.py checks that both paths always agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberFormat, ValidationResult
from phonenumbers import timezone as pn_timezone
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

__all__ = ["PhoneError", "costs_extra", "normalize_phone", "timezone_for_phone", "country_for_phone"]

# Digits, blanks and the punctuation people type around numbers; a leading '+'.
_ALLOWED = re.compile(r"\+?[\d\s()./\-\u00a0\u202f]+")
# what people put between digits; deleted before the digit-only fast path
_SEPARATORS = str.maketrans("", "", " ()-./\t\u00a0\u202f")
_MAX_RAW = 40
# Number types that make a number "valid" for phonenumbers (is_valid_number).
_TYPES = (
    "mobile", "fixed_line", "toll_free", "premium_rate", "shared_cost",
    "personal_number", "voip", "pager", "uan", "voicemail",
)
_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
_POSSIBLE_REASONS = {
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    ValidationResult.INVALID_LENGTH: "wrong number of digits",
}


class PhoneError(ValueError):
    """The text is not a valid phone number; the message says why ("too short", ...)."""


@dataclass(frozen=True)
class _Region:
    code: str
    cc: str
    national_prefix: str | None
    # the main region of its country code (RU for +7): a valid number of it is its own
    main: bool
    general: re.Pattern[str]
    general_lengths: frozenset[int]
    max_len: int
    # one pattern for "valid": the general pattern and length, and any number type's pattern
    # with that type's lengths (what phonenumbers.is_valid_number checks, in one regex call)
    valid_re: re.Pattern[str]
    # phonenumbers' number_type, as far as the time zone needs it: "matches the fixed-line
    # description", and "matches one of the types it checks before fixed line" (premium rate,
    # toll free, ...), each with the description's own lengths; None: never matches
    fixed_re: re.Pattern[str] | None = None
    before_fixed_re: re.Pattern[str] | None = None

    def valid(self, nsn: str) -> bool:
        return self.valid_re.fullmatch(nsn) is not None

    def geographic_type(self, nsn: str, mobiles_geographic: bool) -> bool:
        """For a valid `nsn`: is its phonenumbers type a geographic one (fixed line, fixed line or
        mobile, and mobile where mobiles are)? Mirrors phonenumbers' number_type: the types it
        checks before fixed line win; a valid number matching none of them nor fixed line is a mobile."""
        if self.before_fixed_re is not None and self.before_fixed_re.fullmatch(nsn) is not None:
            return False
        if self.fixed_re is not None and self.fixed_re.fullmatch(nsn) is not None:
            return True
        return mobiles_geographic


def _lengths(lengths: frozenset[int]) -> str:
    return "(?=(?:" + "|".join(rf"\d{{{n}}}" for n in sorted(lengths)) + r")\Z)"


@lru_cache(maxsize=64)
def _region(code: str) -> _Region | None:
    """Fast-path metadata for a region, or None when its rules are too unusual to mirror."""
    meta = PhoneMetadata.metadata_for_region(code.upper())
    if meta is None or meta.national_prefix_transform_rule or meta.country_code is None:
        return None
    gdesc = meta.general_desc
    if gdesc is None or gdesc.national_number_pattern is None:
        return None
    npp = meta.national_prefix_for_parsing
    if npp is not None and not npp.isdigit():
        return None  # regex prefixes (e.g. BY "0|80?"): leave them to phonenumbers
    general_lengths = frozenset(gdesc.possible_length or ())
    types = []
    for name in _TYPES:
        desc = getattr(meta, name)
        if desc is None or desc.national_number_pattern is None:
            continue
        lengths = frozenset(desc.possible_length or ()) or general_lengths
        if lengths == frozenset({-1}):
            continue
        types.append(f"{_lengths(lengths)}(?:{desc.national_number_pattern})")
    if not types or not general_lengths:
        return None
    general = gdesc.national_number_pattern
    fixed_re = _desc_re([meta.fixed_line])
    before_fixed_re = _desc_re([meta.premium_rate, meta.toll_free, meta.shared_cost, meta.voip,
                                meta.personal_number, meta.pager, meta.uan, meta.voicemail])
    valid_re = re.compile(f"{_lengths(general_lengths)}(?=(?:{general})\\Z)(?:{'|'.join(types)})")
    return _Region(
        code=code.upper(),
        cc=str(meta.country_code),
        national_prefix=npp or meta.national_prefix,
        main=phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(meta.country_code, ("",))[0] == code.upper(),
        general=re.compile(gdesc.national_number_pattern),
        general_lengths=general_lengths,
        max_len=max(general_lengths),
        valid_re=valid_re,
        fixed_re=fixed_re,
        before_fixed_re=before_fixed_re,
    )


def _desc_re(descs: list[Any]) -> re.Pattern[str] | None:
    """One regex for "matches any of these descriptions" as phonenumbers' _is_number_matching_desc
    decides it: the description's own lengths when it has some (-1: none), then its pattern."""
    parts = []
    for desc in descs:
        if desc is None or desc.national_number_pattern is None:
            continue
        lengths = frozenset(desc.possible_length or ())
        if -1 in lengths:
            continue
        parts.append((_lengths(lengths) if lengths else "") + f"(?:{desc.national_number_pattern})")
    return re.compile("|".join(f"(?:{part})" for part in parts)) if parts else None


def _fast(digits: str, plus: bool, info: _Region) -> str | None:
    """The national significant number if one of the region's common forms matches, else None.

    Mirrors phonenumbers.parse for these forms: with '+' the country code must lead; without,
    a leading country code is taken off when the whole string is not a national number itself
    (or is too long to be one), then the national prefix when what remains is still valid.
    """
    cc = info.cc
    if plus:
        if digits.startswith(cc):
            rest = digits[len(cc):]
            if info.valid(rest):
                return rest
        return None
    if digits.startswith(cc) and len(digits) > len(cc):
        rest = digits[len(cc):]
        if (not info.general.fullmatch(digits) and info.general.fullmatch(rest)) or len(digits) > info.max_len:
            # phonenumbers commits to dropping the country code here; a national prefix
            # after it is a rarer form that we leave to phonenumbers
            np_ = info.national_prefix
            return rest if info.valid(rest) and not (np_ and rest.startswith(np_)) else None
    np_ = info.national_prefix
    if np_ and digits.startswith(np_):
        rest = digits[len(np_):]
        if info.valid(rest):
            return rest
    if info.valid(digits):
        return digits
    return None


def _slow(text: str, region: str) -> tuple[str, str | None]:
    try:
        parsed = phonenumbers.parse(text, region.upper())
    except NumberParseException as exc:
        raise PhoneError(_PARSE_REASONS.get(exc.error_type, "not a phone number")) from None
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible == ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        raise PhoneError("too short (no area code)")
    if possible != ValidationResult.IS_POSSIBLE:
        raise PhoneError(_POSSIBLE_REASONS.get(possible, "not a valid number"))
    if not phonenumbers.is_valid_number(parsed):
        where = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
        raise PhoneError(f"not a valid number for {where}" if where != "ZZ" else "not a valid number")
    country = phonenumbers.region_code_for_number(parsed)
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164), country


def normalize_with_country(raw: str, region: str = "RU") -> tuple[str, str | None]:
    """Like normalize_phone, also returning the number's country (ISO 3166 alpha-2)."""
    text = raw.strip()
    plus = text[:1] == "+"
    digits = (text[1:] if plus else text).translate(_SEPARATORS)
    if digits.isdigit() and digits.isascii() and len(text) <= _MAX_RAW:
        info = _region(region)
        if info is not None:
            nsn = _fast(digits, plus, info)
            if nsn is not None:
                e164 = f"+{info.cc}{nsn}"
                # +7 800 ... is valid in KZ too, but phonenumbers assigns it to RU: ask the main region
                return e164, info.code if info.main else country_for_phone(e164)
    if not text:
        raise PhoneError("empty")
    if len(text) > _MAX_RAW:
        raise PhoneError("too long")
    if not _ALLOWED.fullmatch(text):
        raise PhoneError("not a phone number")
    return _slow(text, region)


def normalize_phone(raw: str, region: str = "RU") -> str:
    """Return the E.164 form ("+79161234567") of a number as people and billing systems write it.

    Numbers without a country code are read as numbers of `region`. Raises PhoneError saying
    why the text is not a valid number.
    """
    return normalize_with_country(raw, region)[0]


# Numbers whose call costs the caller extra: a debt-reminder robot never dials them (the billing
# export may hold one by mistake, or planted: every call would pay its owner).
_EXTRA_COST = {
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium-rate number",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared-cost number",
}


@lru_cache(maxsize=256)
def _extra_cost_re(country_code: str) -> re.Pattern[str] | None:
    """One regex for the premium-rate and shared-cost patterns of every region of a country code
    (a cheap first look; phonenumbers has the last word)."""
    patterns = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(country_code), ()):
        meta = PhoneMetadata.metadata_for_region(region)
        for desc in (meta.premium_rate, meta.shared_cost) if meta is not None else ():
            if desc is not None and desc.national_number_pattern:
                patterns.append(f"(?:{desc.national_number_pattern})")
    return re.compile("|".join(patterns)) if patterns else None


def costs_extra(e164: str) -> str | None:
    """'premium-rate number' / 'shared-cost number' when calling `e164` costs extra, else None."""
    for size in (1, 2, 3):
        cc, nsn = e164[1:1 + size], e164[1 + size:]
        if cc.isdigit() and int(cc) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    pattern = _extra_cost_re(cc)
    if pattern is None or pattern.fullmatch(nsn) is None:
        return None  # the common case, without phonenumbers
    try:
        kind = phonenumbers.number_type(phonenumbers.parse(e164, None))
    except NumberParseException:
        return None
    return _EXTRA_COST.get(kind)


@lru_cache(maxsize=65536)
def timezone_for_phone(e164: str, default: str) -> str:
    """The number's time zone when it has exactly one (a landline's area code), else `default`.

    Russian mobile numbers span a dozen zones, so they fall back to `default`."""
    zones = _zones_without_parsing(e164)
    if zones is None:
        try:
            parsed = phonenumbers.parse(e164, None)
        except NumberParseException:
            return default
        zones = pn_timezone.time_zones_for_number(parsed)
    if len(zones) != 1 or zones[0] == pn_timezone.UNKNOWN_TIMEZONE:
        return default
    try:
        ZoneInfo(zones[0])
    except (KeyError, ValueError, OSError):  # a zone name the local tz database lacks
        return default
    return zones[0]


@lru_cache(maxsize=256)
def _country_code_facts(cc: str) -> tuple[_Region, re.Pattern[str] | None, bool, tuple[str, ...] | None] | None:
    """For the shortcut: the main region of country code `cc` (None when the shortcut cannot
    mirror phonenumbers for it), its leading digits, whether its mobiles are geographic, and the
    zones phonenumbers gives a number of a non-geographic type (cc's, or the first two digits' of
    a three-digit one)."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(cc))
    if not regions:
        return None
    info = _region(regions[0])
    meta = PhoneMetadata.metadata_for_region(regions[0])
    if info is None or not info.main or meta is None:
        return None
    # phonenumbers gives a number to the first region of the code whose leading digits start it
    # (RU: 3, 4, 8, 9), or without leading digits, that finds it valid
    leading = re.compile(meta.leading_digits) if meta.leading_digits is not None else None
    zones = TIMEZONE_DATA.get(cc) or (TIMEZONE_DATA.get(cc[:2]) if len(cc) == 3 else None)
    mobiles = phonenumbers.is_number_type_geographical(phonenumbers.PhoneNumberType.MOBILE, int(cc))
    return info, leading, mobiles, None if zones is None else tuple(zones)


def _zones_without_parsing(e164: str) -> tuple[str, ...] | None:
    """The zones phonenumbers' time_zones_for_number gives this number, found without parsing it
    (parse, number_type and the lookup cost ~60 us a number, most of what staging a million-row
    import's cases cost); None when the shortcut cannot tell (then phonenumbers decides).

    It tells when the number is valid in its country code's main region and that region's leading
    digits (if any) start it: phonenumbers then keeps it as written and types it with that
    region's metadata. A geographic type gets the zones of the longest prefix of the number in
    phonenumbers' map, any other type its country's zones. tests/test_phone.py checks it against
    phonenumbers on every example number, numbers near them and random digits."""
    digits = e164[1:]
    if len(e164) < 4 or e164[0] != "+" or not (digits.isascii() and digits.isdigit()):
        return None
    for n in (1, 2, 3):
        if int(e164[1:1 + n]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    facts = _country_code_facts(e164[1:1 + n])
    if facts is None:
        return None
    info, leading, mobiles_geographic, country_zones = facts
    nsn = e164[1 + n:]
    if (leading is not None and leading.match(nsn) is None) or not info.valid(nsn):
        return None
    if not info.geographic_type(nsn, mobiles_geographic):
        return country_zones or _NO_ZONE
    for length in range(TIMEZONE_LONGEST_PREFIX, 0, -1):
        zones = TIMEZONE_DATA.get(digits[:length])
        if zones is not None:
            return tuple(zones)
    return _NO_ZONE


_NO_ZONE = (pn_timezone.UNKNOWN_TIMEZONE,)


@lru_cache(maxsize=65536)
def _slow_country(e164: str) -> str | None:
    try:
        parsed = phonenumbers.parse(e164, None)
    except NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed)
    return region if region and region != "ZZ" else None


def country_for_phone(e164: str) -> str | None:
    """ISO 3166 alpha-2 country of an E.164 number ("RU", "UA", ...), None if unknown."""
    info = _region("RU")
    if info is not None and e164.startswith("+7") and info.valid(e164[2:]):
        return "RU"  # the common case, without phonenumbers
    return _slow_country(e164)
