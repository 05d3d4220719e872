"""Phone numbers of a billing row: one or several in a field, as billing systems write them.

Numbers are separated by ',' or ';'; blanks separate numbers only when a part is not one number
by itself. Each is normalised to E.164 (ivr.phone); a premium-rate or shared-cost number is a bad
one: the robot must never pay to call a debtor (nor let a planted number earn from its calls).
"""

from __future__ import annotations

import re

from ivr.phone import PhoneError, costs_extra, normalize_with_country

__all__ = ["parse_phones"]

_PHONE_PARTS = re.compile(r"[,;]")


def parse_phones(text: str, region: str) -> tuple[list[tuple[str, str | None]], list[tuple[str, str]]]:
    """Numbers in priority order as (E.164, country), and the bad ones as (text, reason).

    Numbers are separated by ',' or ';'; blanks separate numbers only when a part is not one
    number by itself ("89161234567 84951234567" is two, "8 916 123 45 67" is one). A premium-rate
    or shared-cost number is a bad one: the robot must never pay to call a debtor.
    """
    good, bad = _parse_phones(text, region)
    if any(costs_extra(number) for number, _country in good):
        bad = [*bad, *((number, f"{costs_extra(number)}: the robot does not call it")
                       for number, _country in good if costs_extra(number))]
        good = [item for item in good if not costs_extra(item[0])]
    return good, bad


def _parse_phones(text: str, region: str) -> tuple[list[tuple[str, str | None]], list[tuple[str, str]]]:
    if "," not in text and ";" not in text:
        try:
            return [normalize_with_country(text, region)], []  # the common case: one number
        except PhoneError:
            pass
    good: list[tuple[str, str | None]] = []
    bad: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(item: tuple[str, str | None]) -> None:
        if item[0] not in seen:
            seen.add(item[0])
            good.append(item)

    for part in _PHONE_PARTS.split(text) if ("," in text or ";" in text) else (text,):
        part = part.strip()
        if not part:
            continue
        try:
            add(normalize_with_country(part, region))
            continue
        except PhoneError as exc:
            whole_reason = str(exc)
        tokens = part.split()
        if len(tokens) < 2:
            bad.append((part, whole_reason))
            continue
        found, leftover = _split_blanks(tokens, region)
        for item in found:
            add(item)
        if not found:
            bad.append((part, whole_reason))
        elif leftover:
            rest = " ".join(leftover)
            try:
                add(normalize_with_country(rest, region))  # a short number at the end
            except PhoneError as exc:
                bad.append((rest, str(exc)))
    return good, bad


def _split_blanks(tokens: list[str], region: str) -> tuple[list[tuple[str, str | None]], list[str]]:
    """Blank-separated numbers: each token a number, else greedy groups of >= 10 digits."""
    try:
        return [normalize_with_country(t, region) for t in tokens], []
    except PhoneError:
        pass
    found: list[tuple[str, str | None]] = []
    acc: list[str] = []
    for token in tokens:
        acc.append(token)
        joined = " ".join(acc)
        if sum(c.isdigit() for c in joined) < 10:
            continue
        try:
            found.append(normalize_with_country(joined, region))
            acc = []
        except PhoneError:
            continue
    return found, acc
