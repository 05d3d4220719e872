"""Logging set-up with phone-number masking: no full subscriber number ever reaches a log."""

from __future__ import annotations

import logging
import re

# What may look like a phone number but is kept as it is: dates (with their times), Asterisk
# unique ids ("1795370953.2": epoch seconds, dot, sequence) and IPv4 addresses. Listed first, so
# that the scan takes them whole before the phone pattern can start inside them.
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_KEEP = (
    r"\d{4}-\d{2}-\d{2}"  # 2026-11-22
    r"|\d{2}\.\d{2}\.\d{4}"  # 22.11.2026
    r"|(?<![\d.])\d{9,10}\.\d{1,9}(?![\d.])"  # 1795370953.2
    rf"|(?<![\d.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\d.])"  # 192.168.100.200
)
# A phone number: an optional + or (, then digits with up to three separators (space, - . ( ))
# between them, as people and billing systems write them: +79161234567, 8 (916) 123-45-67,
# +7 (916) 123-45-67, 916.123.45.67. A separator run never swallows a following date.
_PHONE = r"\+?\(?\d(?:[ \t().\-]{0,3}(?!\d{4}-\d{2}-\d{2}|\d{2}\.\d{2}\.\d{4})\d)+"
_SCAN_RE = re.compile(rf"(?P<keep>{_KEEP})|(?P<phone>{_PHONE})")
MIN_PHONE_DIGITS = 10
# A digit run inside a long hexadecimal word is part of an id (a call id's uuid4 hex, a cache
# key), not a phone glued to a word: those are kept.
_HEX_ID_RE = re.compile(r"[0-9a-fA-F]{16,}")


def mask_phone(number: str) -> str:
    """Keep the country/operator prefix and the last two digits: +7916*****67."""
    digits = re.sub(r"\D", "", number)
    if len(digits) < 7:
        return number
    plus = "+" if number.strip().startswith("+") else ""
    return f"{plus}{digits[:4]}{'*' * (len(digits) - 6)}{digits[-2:]}"


def _word_around(text: str, start: int, end: int) -> str:
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    while end < len(text) and text[end].isalnum():
        end += 1
    return text[start:end]


def mask_phones_in(text: str) -> str:
    """Every phone-like run of 10+ digits masked, wherever it stands: after "phone:", glued to a
    word ("тел79161234567"), in brackets or with separators; dates, Asterisk unique ids, IPv4
    addresses and ids made of long hex words stay readable."""

    def _sub(m: re.Match[str]) -> str:
        raw = m.group(0)
        if m.group("keep") is not None or sum(c.isdigit() for c in raw) < MIN_PHONE_DIGITS:
            return raw
        start, end = m.span()
        glued = (start > 0 and text[start - 1].isalnum()) or (end < len(text) and text[end].isalnum())
        if glued and _HEX_ID_RE.fullmatch(_word_around(text, start, end)):
            return raw
        return mask_phone(raw)

    return _SCAN_RE.sub(_sub, text)


class PhoneMaskingFilter(logging.Filter):
    """Masks the message and any traceback attached to the record (an exception's text may carry
    the number it failed on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phones_in(message)
        if masked != message:
            record.msg = masked
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_phones_in(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_phones_in(record.stack_info)
        return True


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(PhoneMaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # every scheduler tick at INFO would drown the call log
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))
    # "Context impl SQLiteImpl" on every command start says nothing to an admin
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
