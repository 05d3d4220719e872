"""Turning one CSV record into a validated account or payment row, or the reasons it is bad.

Pure functions of the text (no database): every check the importer applies to a single row
lives here, with the message an admin reads ("bad phone '12345' (too short)").

Decisions (documented for admins in `ivr import --help`):
- An account with several phones where some are bad keeps the good ones; each bad one is
  reported as a warning for that line (the row still counts as stored). An account with no
  usable phone is rejected.
- Empty currency / language take the defaults from Settings; empty time zone stays empty (the
  dialer derives it from the phone number); empty dates are allowed.
- Unknown currency, language or time zone reject the row: the robot could not speak the amount
  or would call at the wrong hours.
- Text that is UTF-8 decoded with a one-byte code page somewhere before the file reached us
  ("Р˜РІР°РЅРѕРІ" for "Иванов") rejects the row: the robot would read the garbage aloud.
- A date outside the years of IVR_IMPORT_YEARS (default 2000-2100) rejects the row: 01.01.0001
  or 31.12.9999 is a billing typo or placeholder, and the ladder's date arithmetic (block date
  minus days, promise horizons) would leave the calendar.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from sys import intern
from typing import NamedTuple
from zoneinfo import ZoneInfo

from ivr.billing.columns import Resolved
from ivr.billing.csvread import BrokenRecord, ValueProblem, parse_amount, parse_date
from ivr.billing.mojibake import garbled
from ivr.billing.phones import parse_phones

__all__ = [
    "AccountParser",
    "AccountRow",
    "PaymentParser",
    "PaymentRow",
    "RowError",
    "broken_record_error",
    "normalize_currency",
    "normalize_language",
    "normalize_timezone",
    "parse_phones",
]

LANGUAGES = ("ru", "uk", "en")
_LANGUAGE_ALIASES = {
    "ru": "ru", "rus": "ru", "рус": "ru", "русский": "ru", "russian": "ru", "ру": "ru",
    "uk": "uk", "ua": "uk", "ukr": "uk", "укр": "uk", "украинский": "uk", "українська": "uk",
    "ukrainian": "uk",
    "en": "en", "eng": "en", "англ": "en", "английский": "en", "english": "en",
}
# Currencies the voice can say an amount in (see the prompt grammar); others are rejected.
CURRENCIES = frozenset({
    "RUB", "UAH", "KZT", "BYN", "USD", "EUR", "GBP", "CNY", "AMD", "GEL", "AZN", "UZS", "KGS",
    "TJS", "TMT", "MDL", "PLN", "CZK", "TRY", "CHF",
})
_CURRENCY_ALIASES = {
    "руб": "RUB", "руб.": "RUB", "р": "RUB", "р.": "RUB", "₽": "RUB", "rur": "RUB",
    "рубль": "RUB", "рублей": "RUB", "рубли": "RUB",
    "грн": "UAH", "грн.": "UAH", "₴": "UAH", "гривна": "UAH", "гривня": "UAH",
    "тенге": "KZT", "₸": "KZT", "$": "USD", "€": "EUR", "byr": "BYN",
}
# "МСК+4" as Russian billing writes it; offsets from Moscow to a representative zone.
_MSK_ZONES = {
    -1: "Europe/Kaliningrad", 0: "Europe/Moscow", 1: "Europe/Samara", 2: "Asia/Yekaterinburg",
    3: "Asia/Omsk", 4: "Asia/Krasnoyarsk", 5: "Asia/Irkutsk", 6: "Asia/Yakutsk",
    7: "Asia/Vladivostok", 8: "Asia/Magadan", 9: "Asia/Kamchatka",
}
_MSK_RE = re.compile(r"(?:мск|msk)\s*(?:([+-])\s*(\d{1,2}))?")
_UTC_RE = re.compile(r"(?:utc|gmt)?\s*([+-])\s*(\d{1,2})(?::?00)?")
DEFAULT_YEARS = (2000, 2100)
_WS = re.compile(r"\s+")


@dataclass
class RowError:
    """One problem with one line of an import file."""

    line: int
    reason: str
    field: str | None = None
    value: str | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class AccountRow(NamedTuple):
    line: int
    external_id: str
    holder_name: str
    service_name: str
    tariff: str
    balance: Decimal
    currency: str
    due_date: dt.date | None
    block_date: dt.date | None
    timezone: str | None
    language: str
    country: str
    phones: tuple[str, ...]
    # issue 16: optional "keep this month's price until" date (the templates' deadline phrase)
    keep_price_until: dt.date | None = None


class PaymentRow(NamedTuple):
    line: int
    payment_id: str
    account: str
    amount: Decimal
    paid_on: dt.date
    currency: str | None


def normalize_currency(raw: str, default: str) -> str:
    text = raw.strip()
    if not text:
        return default
    if text in CURRENCIES:
        return text
    code = _CURRENCY_ALIASES.get(text.casefold(), text.upper())
    if code not in CURRENCIES:
        raise ValueProblem("unknown currency")
    return code


def normalize_language(raw: str, default: str) -> str:
    text = raw.strip().casefold()
    if not text:
        return default
    lang = _LANGUAGE_ALIASES.get(text)
    if lang is None:
        raise ValueProblem(f"expected one of {', '.join(LANGUAGES)}")
    return lang


_TZ_CACHE: dict[str, str] = {}


def normalize_timezone(raw: str) -> str | None:
    """IANA name ("Asia/Novosibirsk"), "МСК+4", "UTC+7" -> IANA name; '' -> None."""
    text = raw.strip()
    if not text:
        return None
    cached = _TZ_CACHE.get(text)
    if cached is not None:
        return cached
    key = text.casefold().replace(" ", "")
    zone: str | None = None
    m = _MSK_RE.fullmatch(key)
    if m:
        offset = int(m.group(2) or 0) * (-1 if m.group(1) == "-" else 1)
        zone = _MSK_ZONES.get(offset)
    elif (u := _UTC_RE.fullmatch(key)) and (key.startswith(("utc", "gmt", "+", "-"))):
        hours = int(u.group(2))
        if hours <= 14:
            # POSIX Etc/ zones have the sign reversed: UTC+7 is Etc/GMT-7
            zone = "Etc/GMT" + ("" if hours == 0 else ("-" if u.group(1) == "+" else "+") + str(hours))
    elif "/" in text or text.upper() == "UTC":
        try:
            ZoneInfo(text)
            zone = text
        except (KeyError, ValueError, OSError):
            zone = None
    if zone is None:
        raise ValueProblem("not a zone name such as Europe/Moscow, МСК+4 or UTC+7")
    _TZ_CACHE[text] = zone
    return zone


def _garbled_error(line: int, field: str, what: str, value: str) -> RowError | None:
    fixed = garbled(value)
    if fixed is None:
        return None
    return _bad(line, field, what, value, f"garbled: UTF-8 text decoded in a one-byte encoding before this file "
                                          f"was written; it should read {fixed!r}")


def broken_record_error(line: int, record: BrokenRecord) -> RowError:
    """The report line of a record the CSV reader could not read (a stray quote, a huge field)."""
    return RowError(line, f"unreadable record: {record.reason}", None, record.text or None)


def _bad(line: int, field: str, what: str, value: str, why: str) -> RowError:
    return RowError(line, f"{what} {value!r} ({why})", field, value)


class _RowParser:
    def __init__(self, cols: Resolved, years: tuple[int, int] = DEFAULT_YEARS) -> None:
        self.cols = cols
        self.width = cols.width
        self.first_day = dt.date(years[0], 1, 1)
        self.last_day = dt.date(years[1], 12, 31)
        self._years_text = f"outside the years {years[0]}-{years[1]} (IVR_IMPORT_YEARS)"

    def _checked_date(self, raw: str) -> dt.date | None:
        """A date of the accepted years; ValueProblem otherwise (parse_date is cached, so the
        range is checked here, per parser)."""
        day = parse_date(raw)
        if day is not None and not self.first_day <= day <= self.last_day:
            raise ValueProblem(self._years_text)
        return day

    def _width_error(self, line: int, fields: list[str]) -> RowError | None:
        n = len(fields)
        if n == self.width:
            return None
        if n > self.width and not any(f.strip() for f in fields[self.width:]):
            del fields[self.width:]  # trailing delimiters some exports add to every row
            return None
        return RowError(line, f"wrong column count: expected {self.width}, got {n}")

    def _opt(self, fields: list[str], name: str) -> str:
        pos = self.cols.index.get(name)
        return fields[pos].strip() if pos is not None else ""


class AccountParser(_RowParser):
    """Validates account rows of one file (column positions resolved from its header)."""

    def __init__(self, cols: Resolved, *, region: str, default_currency: str, default_language: str,
                 years: tuple[int, int] = DEFAULT_YEARS) -> None:
        super().__init__(cols, years)
        self.region = region
        self.default_currency = default_currency
        self.default_language = default_language
        ix = cols.index
        self._id = ix["external_id"]
        self._holder = ix["holder_name"]
        self._balance = ix["balance"]
        self._phones = cols.phones
        self._single_phone = len(cols.phones) == 1
        self._cur = ix.get("currency")
        self._due = ix.get("due_date")
        self._block = ix.get("block_date")
        self._tz = ix.get("timezone")
        self._lang = ix.get("language")
        self._service = ix.get("service_name")
        self._tariff = ix.get("tariff")
        self._keep_price = ix.get("keep_price_until")

    def parse(self, line: int, fields: list[str]) -> tuple[AccountRow | None, list[RowError]]:
        """The row (None when rejected) and its problems (warnings when the row is kept).

        Runs a million times per big import: optional columns are read through positions
        resolved once, and every check is inline."""
        if len(fields) != self.width:
            err = self._width_error(line, fields)
            if err:
                return None, [err]
        external_id = fields[self._id].strip()
        if not external_id:
            return None, [RowError(line, "missing id", "external_id", "")]
        if len(external_id) > 64:
            return None, [_bad(line, "external_id", "bad id", external_id[:20] + "...", "longer than 64 characters")]
        holder = fields[self._holder].strip()
        if not holder:
            return None, [RowError(line, "missing holder name", "holder_name", "")]
        if "  " in holder or "\n" in holder or "\t" in holder:
            holder = _WS.sub(" ", holder)
        if len(holder) > 200:
            return None, [_bad(line, "holder_name", "bad holder name", holder[:20] + "...", "longer than 200 characters")]
        raw = fields[self._balance].strip()
        if not raw:
            return None, [RowError(line, "missing amount", "balance", "")]
        try:
            balance = parse_amount(raw)
        except ValueProblem as exc:
            return None, [_bad(line, "balance", "bad amount", raw, str(exc))]

        pos = self._cur
        raw = fields[pos].strip() if pos is not None else ""
        if raw == self.default_currency or not raw:
            currency = self.default_currency
        else:
            try:
                currency = normalize_currency(raw, self.default_currency)
            except ValueProblem as exc:
                return None, [_bad(line, "currency", "bad currency", raw, str(exc))]
        pos = self._due
        raw = fields[pos].strip() if pos is not None else ""
        try:
            due = self._checked_date(raw) if raw else None
        except ValueProblem as exc:
            return None, [_bad(line, "due_date", "bad date", raw, str(exc))]
        pos = self._block
        raw = fields[pos].strip() if pos is not None else ""
        try:
            block = self._checked_date(raw) if raw else None
        except ValueProblem as exc:
            return None, [_bad(line, "block_date", "bad date", raw, str(exc))]
        pos = self._tz
        raw = fields[pos].strip() if pos is not None else ""
        try:
            timezone = normalize_timezone(raw) if raw else None
        except ValueProblem as exc:
            return None, [_bad(line, "timezone", "unknown time zone", raw, str(exc))]
        pos = self._lang
        raw = fields[pos].strip() if pos is not None else ""
        try:
            language = normalize_language(raw, self.default_language) if raw else self.default_language
        except ValueProblem as exc:
            return None, [_bad(line, "language", "unknown language", raw, str(exc))]
        pos = self._service
        # a handful of services and tariffs repeat on every row: one string object each (less
        # memory, and the parser process pickles each only once per batch)
        service = intern(fields[pos].strip()) if pos is not None else ""
        pos = self._tariff
        tariff = intern(fields[pos].strip()) if pos is not None else ""
        if len(service) > 200 or len(tariff) > 100:
            return None, [RowError(line, "service or tariff name too long (max 200 / 100 characters)", "service_name")]
        for field_name, what, value in (("holder_name", "bad holder name", holder),
                                        ("service_name", "bad service name", service), ("tariff", "bad tariff", tariff)):
            if not value.isascii() and (err := _garbled_error(line, field_name, what, value)) is not None:
                return None, [err]

        errors: list[RowError] = []
        if self._single_phone:
            text = fields[self._phones[0]]
            if not text.strip():
                return None, [RowError(line, "missing phone", "phones", "")]
            good, bad = parse_phones(text, self.region)
        else:
            good, bad = self._several_phones(fields)
            if not good and not bad:
                return None, [RowError(line, "missing phone", "phones", "")]
        if not good:
            raw_bad, why = bad[0]
            return None, [_bad(line, "phones", "bad phone", raw_bad, why)]
        for raw_bad, why in bad:
            errors.append(RowError(line, f"bad phone {raw_bad!r} ({why}); the account's other numbers were kept",
                                   "phones", raw_bad))
        keep_price = None
        pos = self._keep_price
        raw = fields[pos].strip() if pos is not None else ""
        if raw:
            try:
                keep_price = self._checked_date(raw)
            except ValueProblem as exc:
                # an optional phrase: a bad date drops the phrase, never the account's calls
                errors.append(RowError(line, f"bad date {raw!r} ({exc}); the phrase is left out, the other values were kept",
                                       "keep_price_until", raw))
        row = AccountRow(
            line, external_id, holder, service, tariff, balance, currency, due, block, timezone,
            language, good[0][1] or self.region,
            (good[0][0],) if len(good) == 1 else tuple(n for n, _c in good), keep_price,
        )
        return row, errors

    def _several_phones(self, fields: list[str]) -> tuple[list[tuple[str, str | None]], list[tuple[str, str]]]:
        good: list[tuple[str, str | None]] = []
        bad: list[tuple[str, str]] = []
        for pos in self._phones:
            text = fields[pos]
            if not text.strip():
                continue
            g, b = parse_phones(text, self.region)
            have = {n for n, _c in good}  # the same number in two columns is kept once
            good.extend(x for x in g if x[0] not in have)
            bad.extend(b)
        return good, bad


class PaymentParser(_RowParser):
    def __init__(self, cols: Resolved, years: tuple[int, int] = DEFAULT_YEARS) -> None:
        super().__init__(cols, years)
        ix = cols.index
        self._id = ix["payment_id"]
        self._account = ix["account"]
        self._amount = ix["amount"]
        self._date = ix["paid_on"]

    def parse(self, line: int, fields: list[str]) -> tuple[PaymentRow | None, list[RowError]]:
        err = self._width_error(line, fields)
        if err:
            return None, [err]
        payment_id = fields[self._id].strip()
        if not payment_id:
            return None, [RowError(line, "missing payment id", "payment_id", "")]
        if len(payment_id) > 64:
            return None, [_bad(line, "payment_id", "bad payment id", payment_id[:20] + "...", "longer than 64 characters")]
        account = fields[self._account].strip()
        if not account:
            return None, [RowError(line, "missing account id", "account", "")]
        raw_amount = fields[self._amount].strip()
        if not raw_amount:
            return None, [RowError(line, "missing amount", "amount", "")]
        try:
            amount = parse_amount(raw_amount)
        except ValueProblem as exc:
            return None, [_bad(line, "amount", "bad amount", raw_amount, str(exc))]
        if amount <= 0:
            return None, [_bad(line, "amount", "bad amount", raw_amount, "a payment must be positive")]
        raw_date = fields[self._date].strip()
        if not raw_date:
            return None, [RowError(line, "missing payment date", "paid_on", "")]
        try:
            paid_on = self._checked_date(raw_date)
        except ValueProblem as exc:
            return None, [_bad(line, "paid_on", "bad date", raw_date, str(exc))]
        assert paid_on is not None
        raw_cur = self._opt(fields, "currency")
        try:
            currency = normalize_currency(raw_cur, "") if raw_cur else None
        except ValueProblem as exc:
            return None, [_bad(line, "currency", "bad currency", raw_cur, str(exc))]
        return PaymentRow(line, payment_id, account, amount, paid_on, currency), []
