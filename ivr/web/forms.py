"""Validation of the admin's forms, without HTTP or database: each `parse_*` takes the submitted
strings (and what it must be unique against) and returns the clean values or a list of problems.
A problem is an i18n key plus parameters, so the page can say exactly what is wrong."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

CODE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
QUEUE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
PROFILE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
# "9", "9:00" or "09:00": admins type hours the way they say them ("9-13")
_TIME_RE = re.compile(r"^(\d{1,2})(?::(\d{2}))?$")

CATEGORIES = ("controllable", "uncontrollable")
ANCHORS = ("due", "block")
ON_ENTER = ("", "block")
WEEKDAYS = tuple(range(8))  # 0 = Monday .. 6 = Sunday, 7 = public holiday


@dataclass(frozen=True)
class Problem:
    key: str  # i18n key
    field: str = ""
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class FormProblems(ValueError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(p.key for p in problems))
        self.problems = list(problems)


def _int(raw: str, name: str, lo: int, hi: int, problems: list[Problem], *, optional: bool = False) -> int | None:
    raw = raw.strip()
    if not raw and optional:
        return None
    try:
        value = int(raw)
    except ValueError:
        problems.append(Problem("err_int", name, {"lo": lo, "hi": hi}))
        return None
    if not lo <= value <= hi:
        problems.append(Problem("err_int", name, {"lo": lo, "hi": hi}))
        return None
    return value


def _bool(raw: str | None) -> bool:
    return (raw or "").strip().lower() in {"1", "on", "true", "yes"}


# --- call windows -------------------------------------------------------------------------------

def parse_time(raw: str) -> dt.time | None:
    """H, H:MM or HH:MM; "24:00" means midnight at the end of the day (stored as 00:00, as the
    dialer reads it)."""
    m = _TIME_RE.match(raw.strip())
    if not m:
        return None
    hour, minute = int(m.group(1)), int(m.group(2) or 0)
    if (hour, minute) == (24, 0):
        return dt.time(0, 0)
    if hour > 23 or minute > 59:
        return None
    return dt.time(hour, minute)


def _minutes(t: dt.time, *, end: bool) -> int:
    value = t.hour * 60 + t.minute
    return 24 * 60 if end and value == 0 else value


def parse_day_windows(raw: str, weekday: int) -> tuple[list[tuple[dt.time, dt.time]], list[Problem]]:
    """"09:00-13:00, 14:00-20:00" (or "9-13, 14-20") -> ranges; empty = no calls that day."""
    ranges: list[tuple[dt.time, dt.time]] = []
    problems: list[Problem] = []
    for part in re.split(r"[,;]", raw):
        part = part.strip()
        if not part:
            continue
        pieces = re.split(r"\s*[-–]\s*", part)
        start = parse_time(pieces[0]) if len(pieces) == 2 else None
        end = parse_time(pieces[1]) if len(pieces) == 2 else None
        if start is None or end is None:
            problems.append(Problem("err_window_format", f"day{weekday}", {"value": part}))
            continue
        if _minutes(end, end=True) <= _minutes(start, end=False):
            problems.append(Problem("err_window_order", f"day{weekday}", {"value": part}))
            continue
        ranges.append((start, end))
    ranges.sort(key=lambda r: _minutes(r[0], end=False))
    for (_s1, e1), (s2, _e2) in zip(ranges, ranges[1:], strict=False):
        if _minutes(s2, end=False) < _minutes(e1, end=True):
            problems.append(Problem("err_window_overlap", f"day{weekday}", {"value": raw.strip()}))
            break
    return ranges, problems


def format_day_windows(ranges: Sequence[tuple[dt.time, dt.time]]) -> str:
    def fmt(t: dt.time, end: bool) -> str:
        return "24:00" if end and t == dt.time(0, 0) else f"{t:%H:%M}"

    return ", ".join(f"{fmt(s, False)}-{fmt(e, True)}" for s, e in ranges)


def parse_windows(days: Mapping[int, str]) -> tuple[dict[int, list[tuple[dt.time, dt.time]]], list[Problem]]:
    result: dict[int, list[tuple[dt.time, dt.time]]] = {}
    problems: list[Problem] = []
    for weekday in WEEKDAYS:
        ranges, day_problems = parse_day_windows(days.get(weekday, ""), weekday)
        result[weekday] = ranges
        problems.extend(day_problems)
    return result, problems


# --- reason classifier --------------------------------------------------------------------------

@dataclass(frozen=True)
class ReasonInput:
    code: str
    key: str
    labels: dict[str, str]
    category: str
    actionable: bool
    route: str | None
    replies: dict[str, str]
    incentive_allowed: bool
    norm_pct: Decimal
    position: int
    active: bool


def parse_reason(form: Mapping[str, str], *, languages: Sequence[str], required_language: str,
                 other_codes: Collection[str], other_active_keys: Collection[str]) -> ReasonInput:
    problems: list[Problem] = []
    code = form.get("code", "").strip()
    if not CODE_RE.match(code):
        problems.append(Problem("err_code", "code"))
    elif code in other_codes:
        problems.append(Problem("err_code_taken", "code", {"code": code}))
    key = form.get("key", "").strip()
    active = _bool(form.get("active"))
    if not (len(key) == 1 and key in "123456789"):
        problems.append(Problem("err_reason_key", "key"))
    elif active and key in other_active_keys:
        problems.append(Problem("err_reason_key_taken", "key", {"key": key}))
    labels = {lang: form.get(f"label_{lang}", "").strip() for lang in languages}
    labels = {k: v for k, v in labels.items() if v}
    if not labels.get(required_language):
        problems.append(Problem("err_label_required", f"label_{required_language}", {"lang": required_language}))
    if any(len(v) > 200 for v in labels.values()):
        problems.append(Problem("err_too_long", "labels", {"max": 200}))
    replies = {lang: form.get(f"reply_{lang}", "").strip() for lang in languages}
    replies = {k: v for k, v in replies.items() if v}
    if any(len(v) > 1000 for v in replies.values()):
        problems.append(Problem("err_too_long", "replies", {"max": 1000}))
    category = form.get("category", "").strip()
    if category not in CATEGORIES:
        problems.append(Problem("err_category", "category"))
    actionable = _bool(form.get("actionable"))
    route = form.get("route", "").strip() or None
    if actionable and route is None:
        problems.append(Problem("err_route_required", "route"))
    elif route is not None and not QUEUE_RE.match(route):
        problems.append(Problem("err_queue_name", "route"))
    incentive = _bool(form.get("incentive_allowed"))
    if incentive and not actionable:
        # an incentive is offered by a person; a reason the robot answers alone cannot carry one
        problems.append(Problem("err_incentive_needs_human", "incentive_allowed"))
    norm = Decimal("0")
    try:
        norm = Decimal(form.get("norm_pct", "0").strip().replace(",", ".") or "0")
        if not Decimal("0") <= norm <= Decimal("100") or norm != norm.quantize(Decimal("0.01")):
            raise InvalidOperation
    except InvalidOperation:
        problems.append(Problem("err_norm", "norm_pct"))
    position = _int(form.get("position", "0") or "0", "position", 0, 1000, problems) or 0
    if problems:
        raise FormProblems(problems)
    return ReasonInput(code, key, labels, category, actionable, route, replies, incentive, norm, position, active)


# --- ladder -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StageInput:
    code: str
    position: int
    name: str
    anchor: str
    start_day: int
    prompt: str
    window_profile: str
    required_hour: int | None
    max_attempts: int
    retry_minutes: int
    on_enter: str | None
    on_end: str
    active: bool


def parse_stage(form: Mapping[str, str], *, other_codes: Collection[str], other_active_positions: Collection[int],
                profiles: Collection[str], prompt_names: Collection[str] | None, on_end_values: Sequence[str]) -> StageInput:
    problems: list[Problem] = []
    code = form.get("code", "").strip()
    if not CODE_RE.match(code):
        problems.append(Problem("err_code", "code"))
    elif code in other_codes or code == "thanks":  # issue 16: "thanks" names thank-you calls
        problems.append(Problem("err_code_taken", "code", {"code": code}))
    name = form.get("name", "").strip()
    if not name or len(name) > 100:
        problems.append(Problem("err_name", "name"))
    active = _bool(form.get("active"))
    # 0 is allowed: the shipped before-due stage (issue 16) sits before the first debt stage
    position = _int(form.get("position", ""), "position", 0, 1000, problems)
    if position is not None and active and position in other_active_positions:
        problems.append(Problem("err_position_taken", "position", {"position": position}))
    anchor = form.get("anchor", "").strip()
    if anchor not in ANCHORS:
        problems.append(Problem("err_anchor", "anchor"))
    start_day = _int(form.get("start_day", ""), "start_day", -365, 365, problems)
    prompt = form.get("prompt", "").strip()
    if not CODE_RE.match(prompt):
        problems.append(Problem("err_prompt_name", "prompt"))
    elif prompt_names is not None and prompt not in prompt_names:
        problems.append(Problem("err_prompt_unknown", "prompt", {"name": prompt}))
    profile = form.get("window_profile", "").strip()
    if profile not in profiles:
        problems.append(Problem("err_profile_unknown", "window_profile", {"name": profile}))
    required_hour = _int(form.get("required_hour", ""), "required_hour", 0, 23, problems, optional=True)
    max_attempts = _int(form.get("max_attempts", ""), "max_attempts", 1, 50, problems)
    retry = _int(form.get("retry_minutes", ""), "retry_minutes", 1, 7 * 1440, problems)
    on_enter = form.get("on_enter", "").strip()
    if on_enter not in ON_ENTER:
        problems.append(Problem("err_choice", "on_enter"))
    on_end = form.get("on_end", "").strip()
    if on_end not in on_end_values:
        problems.append(Problem("err_choice", "on_end"))
    if problems:
        raise FormProblems(problems)
    assert position is not None and start_day is not None and max_attempts is not None and retry is not None
    return StageInput(code, position, name, anchor, start_day, prompt, profile, required_hour, max_attempts,
                      retry, on_enter or None, on_end, active)


# --- contact limits -----------------------------------------------------------------------------

def parse_limit(form: Mapping[str, str], *, periods: Sequence[str], counts: Sequence[str]) -> tuple[str, str, int]:
    problems: list[Problem] = []
    period = form.get("period", "").strip()
    if period not in periods:
        problems.append(Problem("err_choice", "period"))
    count = form.get("counts", "").strip()
    if count not in counts:
        problems.append(Problem("err_choice", "counts"))
    max_calls = _int(form.get("max_calls", ""), "max_calls", 0, 1000, problems)
    if problems:
        raise FormProblems(problems)
    assert max_calls is not None
    return period, count, max_calls
