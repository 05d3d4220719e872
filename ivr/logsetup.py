"""Logging set-up with phone-number masking: no full subscriber number ever reaches a log."""

from __future__ import annotations

import logging
import re

# +79161234567, 79161234567, 8 (916) 123-45-67 ... : 10+ digits with optional separators, not
# glued to letters, dots, colons or dashes (ids, amounts, times)
_PHONE_RE = re.compile(r"(?<![\w.:\-])(\+?\d[\d\-\s().]{8,}\d)(?![\w.:\-])")
# dates and times are digits with separators too: "2026-11-22 19:41:27", "22.11.2026 19"
# ... and so are Asterisk unique ids ("1795370953.2": epoch seconds, dot, sequence)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}\.\d{2}\.\d{4}|^\d{9,10}\.\d{1,9}$")


def mask_phone(number: str) -> str:
    """Keep the country/operator prefix and the last two digits: +7916*****67."""
    digits = re.sub(r"\D", "", number)
    if len(digits) < 7:
        return number
    plus = "+" if number.strip().startswith("+") else ""
    return f"{plus}{digits[:4]}{'*' * (len(digits) - 6)}{digits[-2:]}"


def mask_phones_in(text: str) -> str:
    def _sub(m: re.Match[str]) -> str:
        raw = m.group(1)
        if sum(c.isdigit() for c in raw) < 10 or _DATE_RE.search(raw):
            return raw
        return mask_phone(raw)

    return _PHONE_RE.sub(_sub, text)


class PhoneMaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phones_in(message)
        if masked != message:
            record.msg = masked
            record.args = None
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
