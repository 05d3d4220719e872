"""Logging set-up with phone-number masking: no full subscriber number ever reaches a log."""

from __future__ import annotations

import logging
import re

# +79161234567, 79161234567, 8 (916) 123-45-67 ... : 10+ digits with optional separators
_PHONE_RE = re.compile(r"(?<![\w.])(\+?\d[\d\-\s().]{8,}\d)(?![\w.])")


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
        if sum(c.isdigit() for c in raw) < 10:
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
