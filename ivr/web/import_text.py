"""Import problems in the reader's language, naming the file's own columns.

The importer (ivr.billing) writes its reasons in English for the CLI and the API, with the
internal field name beside them ("balance"). An admin in the web UI reads them here instead: the
reason is recognised by its form and said again with the UI catalogue's texts, and the field is
named by the column of the admin's file it came from ("Сумма долга"), or by its label when the
file's column is not known (an import made by the CLI). A reason this module does not know is
shown as the importer wrote it, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Translate = Callable[..., str]

_WIDTH = re.compile(r"wrong column count: expected (\d+), got (\d+)")
_MISSING = re.compile(r"missing (id|holder name|amount|phone|payment id|account id|payment date)")
_KEPT_PHONE = re.compile(r"bad phone (['\"])(.*)\1 \((.*)\); the account's other numbers were kept", re.DOTALL)
_DUPLICATE = re.compile(r"duplicate (?:payment )?id (['\"])(.*)\1 \(first on line (\d+)\)", re.DOTALL)
_UNREADABLE = re.compile(r"unreadable record: (.*)", re.DOTALL)
_UNKNOWN_ACCOUNT = re.compile(r"unknown account (['\"])(.*)\1", re.DOTALL)
_CURRENCY_MISMATCH = re.compile(r"bad currency (['\"])(.*)\1 \(the account is in (\w+)\)", re.DOTALL)
_PAYMENT_DIFFERS = re.compile(r"payment (['\"])(.*)\1 was already imported with other values", re.DOTALL)
_BAD_VALUE = re.compile(r"(?:bad [a-z ]+|unknown time zone|unknown language) (['\"])(.*)\1 \((.*)\)", re.DOTALL)

# the reasons a value is bad (parse, csvread, phone): fixed texts, then ones with a parameter
_WHY = {
    "not a number": "imp_why_not_number",
    "not an amount": "imp_why_not_amount",
    "too large": "imp_why_too_large",
    "empty": "imp_why_empty",
    "no such date": "imp_why_no_such_date",
    "expected DD.MM.YYYY or YYYY-MM-DD": "imp_why_date_format",
    "unknown currency": "imp_why_unknown_currency",
    "not a zone name such as Europe/Moscow, МСК+4 or UTC+7": "imp_why_zone",
    "a payment must be positive": "imp_why_positive",
    "in the future": "imp_why_future",
    "not a phone number": "imp_why_not_phone",
    "too short": "imp_why_too_short",
    "too short (no area code)": "imp_why_no_area_code",
    "too long": "imp_why_too_long",
    "unknown country code": "imp_why_country_code",
    "wrong number of digits": "imp_why_digits",
    "not a valid number": "imp_why_invalid_number",
}
_WHY_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"longer than (?P<n>\d+) characters"), "imp_why_longer"),
    (re.compile(r"outside the years (?P<first>\d+)-(?P<last>\d+) \(IVR_IMPORT_YEARS\)"), "imp_why_years"),
    (re.compile(r"expected one of (?P<known>.*)"), "imp_why_one_of"),
    (re.compile(r"garbled: .* it should read (['\"])(?P<fixed>.*)\1", re.DOTALL), "imp_why_garbled"),
    (re.compile(r"not a valid number for (?P<country>\w+)"), "imp_why_invalid_for"),
    (re.compile(r".*: the robot does not call it"), "imp_why_costs_extra"),
)
_BROKEN = (
    ("a quote opened on this line is never closed", "imp_broken_quote"),
    ("a quote opened on this line joins lines", "imp_broken_quote"),
    ("a quote opened on this line is not closed within", "imp_broken_quote"),
    ("a quote opened on this line runs into line", "imp_broken_quote"),
    ("a field longer than", "imp_broken_huge"),
    ("line longer than", "imp_broken_huge"),
    ("NUL", "imp_broken_binary"),
)

FIELD_KEYS = (
    "external_id", "holder_name", "phones", "balance", "currency", "due_date", "block_date", "timezone",
    "language", "service_name", "tariff", "payment_id", "account", "amount", "paid_on",
)


def field_label(tr: Translate, name: str) -> str:
    return tr(f"imp_field_{name}") if name in FIELD_KEYS else name


def column_of(tr: Translate, name: str | None, columns: Mapping[str, str]) -> str:
    """The file's column for a field, else the field's label."""
    if not name:
        return ""
    return columns.get(name) or field_label(tr, name)


def why_text(tr: Translate, why: str) -> str:
    key = _WHY.get(why)
    if key:
        return tr(key)
    for pattern, key in _WHY_PATTERNS:
        m = pattern.fullmatch(why)
        if m:
            return tr(key, **m.groupdict())
    return why


def broken_text(tr: Translate, reason: str) -> str:
    for start, key in _BROKEN:
        if start in reason:
            return tr(key)
    return reason


def explain(tr: Translate, reason: str, field: str | None, value: Any, columns: Mapping[str, str]) -> str:
    """One problem of one row as the admin reads it, in the UI language."""
    col = column_of(tr, field, columns)
    if m := _WIDTH.fullmatch(reason):
        return tr("imp_err_width", expected=m.group(1), got=m.group(2))
    if _MISSING.fullmatch(reason):
        return tr("imp_err_empty", column=col)
    if m := _KEPT_PHONE.fullmatch(reason):
        return tr("imp_warn_phone", column=col, value=m.group(2), why=why_text(tr, m.group(3)))
    if m := _DUPLICATE.fullmatch(reason):
        return tr("imp_err_duplicate", column=col, value=m.group(2), first=m.group(3))
    if m := _UNREADABLE.fullmatch(reason):
        return tr("imp_err_unreadable", why=broken_text(tr, m.group(1)))
    if m := _CURRENCY_MISMATCH.fullmatch(reason):
        return tr("imp_err_currency_mismatch", column=col, value=m.group(2), currency=m.group(3))
    if m := _UNKNOWN_ACCOUNT.fullmatch(reason):
        return tr("imp_err_unknown_account", column=col, value=m.group(2))
    if m := _PAYMENT_DIFFERS.match(reason):
        return tr("imp_err_payment_differs", column=col, value=m.group(2))
    if reason.startswith("service or tariff name too long"):
        return tr("imp_err_service_long")
    if m := _BAD_VALUE.fullmatch(reason):
        return tr("imp_err_value", column=col, value=m.group(2), why=why_text(tr, m.group(3)))
    return reason


_FILE_ERRORS = (
    ("this is an Excel workbook", "imp_file_excel"),
    ("the file is UTF-16 text", "imp_file_utf16"),
    ("the file contains binary data", "imp_file_binary"),
    ("the file is empty", "imp_file_empty"),
    ("the file has no header row", "imp_file_no_header"),
    ("the file mixes encodings", "imp_file_mixed"),
    ("the file cannot be read as", "imp_file_encoding"),
    ("the file's header is not the one shown in the preview", "imp_file_changed"),
    ("the file changed while it was being imported", "imp_file_changed"),
)


def file_error_text(tr: Translate, message: str) -> str:
    """A whole-file refusal in the UI language; the importer's detail (line numbers) follows."""
    for start, key in _FILE_ERRORS:
        if message.startswith(start):
            text = tr(key)
            return text if start in ("the file is empty", "the file has no header row") else f"{text} ({message})"
    return message
