"""The legal-hours guard: hours no window may leave, whatever the admin's call windows say.

A "legal limits" profile is two ranges of the subscriber's local time: one for working days
(Monday-Friday) and one for weekends and public holidays (the law protects the day of rest
whatever the holiday policy makes the robot do). Defaults: 08:00-22:00 and 09:00-20:00
(stored as the options `legal_hours_weekday` / `legal_hours_weekend`, editable by admins only).

The dialer intersects every window with these ranges (ivr.dialer.windows.windows_for_day), so a
window typed before the limits were narrowed, or a required hour outside them, still never calls
outside them. Everything fails closed: a limit that cannot be read means no calls at all.

Pure functions only: no clock, no I/O.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

DAY_MINUTES = 24 * 60
SATURDAY, SUNDAY = 5, 6
DEFAULT_WEEKDAY = "08:00-22:00"
DEFAULT_WEEKEND = "09:00-20:00"
WEEKDAY_KEY = "legal_hours_weekday"
WEEKEND_KEY = "legal_hours_weekend"

# "9", "9:00", "09:00", "24:00"; the separator of a range may be "-" or an en dash
_TIME_RE = re.compile(r"^(\d{1,2})(?::(\d{2}))?$")
_RANGE_SPLIT = re.compile(r"\s*[-–—]\s*")

Range = tuple[int, int]  # [start, end) in minutes of the local day; end may be 1440


def parse_clock(raw: str, *, end: bool = False) -> int | None:
    """Minutes since midnight for "9", "9:00" or "09:00"; None when it is not a time of day.

    "24:00" (or "24", or "0:00" as an end) is the end of the day, allowed only as an end."""
    m = _TIME_RE.match(raw.strip())
    if not m:
        return None
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if minute > 59:
        return None
    if (hour, minute) == (24, 0) or (end and (hour, minute) == (0, 0)):
        return DAY_MINUTES if end else None
    if hour > 23:
        return None
    return hour * 60 + minute


def parse_range(raw: str) -> Range | None:
    """"9-13", "9:00-13:00", "09:00-13:00" -> (540, 780); None when malformed or empty."""
    pieces = _RANGE_SPLIT.split(raw.strip())
    if len(pieces) != 2:
        return None
    start, end = parse_clock(pieces[0]), parse_clock(pieces[1], end=True)
    if start is None or end is None or end <= start:
        return None
    return start, end


def format_minutes(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def format_range(value: Range) -> str:
    return f"{format_minutes(value[0])}-{format_minutes(value[1])}"


@dataclass(frozen=True)
class LegalHours:
    """Allowed local hours; None for a kind of day means no calls at all on it (fail closed)."""

    weekday: Range | None = (8 * 60, 22 * 60)
    weekend: Range | None = (9 * 60, 20 * 60)

    def for_day(self, weekday: int, is_holiday: bool) -> Range | None:
        """The limit of one local day: weekends and public holidays share the stricter range."""
        if is_holiday or weekday in (SATURDAY, SUNDAY):
            return self.weekend
        return self.weekday if 0 <= weekday <= 4 else None

    def clip(self, ranges: list[Range], weekday: int, is_holiday: bool) -> list[Range]:
        """`ranges` intersected with the day's limit; empty when nothing is left."""
        limit = self.for_day(weekday, is_holiday)
        if limit is None:
            return []
        out = []
        for start, end in ranges:
            s, e = max(start, limit[0]), min(end, limit[1])
            if s < e:
                out.append((s, e))
        return out


CLOSED = LegalHours(weekday=None, weekend=None)


def legal_hours_from_options(values: Mapping[str, Any]) -> LegalHours:
    """The limits stored in the options; a missing key takes the default, a malformed one closes
    that kind of day (the robot must never call because a setting could not be read)."""
    def one(key: str, default: str) -> Range | None:
        raw = values.get(key, default)
        parsed = parse_range(raw) if isinstance(raw, str) else None
        if parsed is None:
            log.error("legal hours option %s has an unreadable value %r: no calls on those days", key, raw)
        return parsed

    return LegalHours(weekday=one(WEEKDAY_KEY, DEFAULT_WEEKDAY), weekend=one(WEEKEND_KEY, DEFAULT_WEEKEND))


def window_problem(start: int, end: int, weekday: int, legal: LegalHours) -> Range | None:
    """For the window editor: the limit a window [start, end) of a weekday row (0-6, 7 = public
    holiday) breaks, or None when it is inside. A closed day's limit is (0, 0)."""
    limit = legal.for_day(weekday if weekday <= SUNDAY else SUNDAY, weekday == 7)
    if limit is None:
        return (0, 0)
    if start < limit[0] or end > limit[1]:
        return limit
    return None
