"""Every runtime setting the admin may edit (the `settings` table, seeded from defaults.toml):
what each one is, its bounds, and the validation of the whole form at once.

Pure: `parse_settings` takes the submitted strings and returns the clean values or raises
FormProblems (i18n keys), so the page can show every mistake next to what was typed. The call
script (ivr.call.script.CallOptions) and the dialer (ivr.dialer.policy.load_rules) read the stored
values for every call and every tick, so a saved value takes effect without a restart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ivr.call import keys as K
from ivr.dialer.legal import LegalHours, format_range, parse_range, window_problem
from ivr.dialer.policy import HOLIDAY_POLICIES
from ivr.web.forms import QUEUE_RE, FormProblems, Problem

MACHINE_ACTIONS = ("message", "hangup")
# keys the main menu already uses: an admin option must not take one of them
MENU_KEYS = (K.MENU_PROMISE, K.MENU_PAID, K.MENU_REASON, K.MENU_REPEAT)
OPTION_KEYS = tuple(k for k in "0123456789*#" if k not in MENU_KEYS)


@dataclass(frozen=True)
class Spec:
    key: str
    kind: str  # int | range | choice | key | queue
    group: str
    lo: int = 0
    hi: int = 0
    choices: Sequence[str] = ()
    unit: str = ""  # i18n key of the unit shown after the input


SPECS: tuple[Spec, ...] = (
    Spec("legal_hours_weekday", "range", "legal"),
    Spec("legal_hours_weekend", "range", "legal"),
    Spec("holiday_policy", "choice", "legal", choices=HOLIDAY_POLICIES),
    Spec("promise_horizon_days_after_block", "int", "promise", 0, 60, unit="unit_days"),
    Spec("promise_horizon_max_days", "int", "promise", 1, 365, unit="unit_days"),
    Spec("paid_claim_grace_days", "int", "promise", 0, 30, unit="unit_days"),
    Spec("max_menu_tries", "int", "menu", 1, 10),
    Spec("menu_timeout_seconds", "int", "menu", 2, 30, unit="unit_seconds"),
    Spec("human_request_key", "key", "menu", choices=OPTION_KEYS),
    Spec("human_request_queue", "queue", "menu"),
    Spec("opt_out_key", "key", "menu", choices=OPTION_KEYS),
    Spec("machine_action", "choice", "menu", choices=MACHINE_ACTIONS),
    Spec("retry_busy_minutes", "int", "retry", 1, 7 * 1440, unit="unit_minutes"),
    Spec("retry_no_answer_minutes", "int", "retry", 1, 7 * 1440, unit="unit_minutes"),
    Spec("retry_congestion_minutes", "int", "retry", 1, 7 * 1440, unit="unit_minutes"),
    Spec("retry_failed_minutes", "int", "retry", 1, 7 * 1440, unit="unit_minutes"),
    Spec("retry_machine_minutes", "int", "retry", 1, 7 * 1440, unit="unit_minutes"),
    Spec("retry_hangup_minutes", "int", "retry", 1, 7 * 1440, unit="unit_minutes"),
    Spec("retention_after_days", "int", "lifecycle", 1, 3650, unit="unit_days"),
    Spec("overdue_after_days", "int", "lifecycle", 1, 3650, unit="unit_days"),
)
GROUPS = ("legal", "promise", "menu", "retry", "lifecycle")
BY_KEY = {s.key: s for s in SPECS}


def form_values(stored: Mapping[str, Any]) -> dict[str, str]:
    """The stored options as the strings the form shows."""
    out = {}
    for spec in SPECS:
        value = stored.get(spec.key, "")
        if spec.kind == "range" and isinstance(value, str):
            parsed = parse_range(value)
            value = format_range(parsed) if parsed else value
        out[spec.key] = "" if value is None else str(value)
    return out


def _one(spec: Spec, raw: str, problems: list[Problem]) -> Any:
    raw = raw.strip()
    if spec.kind == "int":
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not spec.lo <= value <= spec.hi:
            problems.append(Problem("err_int", spec.key, {"lo": spec.lo, "hi": spec.hi}))
            return None
        return value
    if spec.kind == "range":
        parsed = parse_range(raw)
        if parsed is None:
            problems.append(Problem("err_hours_range", spec.key, {"value": raw}))
            return None
        return format_range(parsed)
    if spec.kind == "choice":
        if raw not in spec.choices:
            problems.append(Problem("err_choice", spec.key))
            return None
        return raw
    if spec.kind == "key":
        if raw and raw not in spec.choices:
            problems.append(Problem("err_option_key", spec.key, {"value": raw, "menu": ", ".join(MENU_KEYS)}))
            return None
        return raw
    if spec.kind == "queue":
        if not QUEUE_RE.match(raw):
            problems.append(Problem("err_queue_name", spec.key))
            return None
        return raw
    raise ValueError(f"unknown setting kind {spec.kind!r}")  # a programming error, not input


def parse_settings(form: Mapping[str, str]) -> dict[str, Any]:
    """All settings from the form, checked one by one and against each other."""
    problems: list[Problem] = []
    values = {spec.key: _one(spec, form.get(spec.key, ""), problems) for spec in SPECS}
    human, opt_out = values.get("human_request_key"), values.get("opt_out_key")
    if human and opt_out and human == opt_out:
        problems.append(Problem("err_keys_clash", "opt_out_key", {"key": opt_out}))
    retention, overdue = values.get("retention_after_days"), values.get("overdue_after_days")
    if retention is not None and overdue is not None and overdue <= retention:
        # the ladder checks "overdue" first: a smaller overdue age would skip retention entirely
        problems.append(Problem("err_overdue_before_retention", "overdue_after_days", {"days": retention}))
    if problems:
        raise FormProblems(problems)
    return values


def legal_problems(parsed: Mapping[int, Sequence[tuple[dt.time, dt.time]]], legal: LegalHours) -> list[Problem]:
    """Window rows (weekday 0-6, 7 = public holiday) that leave the legal limits, one problem each,
    naming the window and the limit it breaks."""
    problems = []
    for weekday, ranges in sorted(parsed.items()):
        for start, end in ranges:
            s = start.hour * 60 + start.minute
            e = end.hour * 60 + end.minute or 24 * 60  # 00:00 as an end is midnight
            limit = window_problem(s, e, weekday, legal)
            if limit is None:
                continue
            value = format_range((s, e))
            if limit == (0, 0):
                problems.append(Problem("err_window_legal_closed", f"day{weekday}", {"value": value}))
            else:
                kind = "weekend" if weekday >= 5 else "weekday"
                problems.append(Problem(f"err_window_outside_legal_{kind}", f"day{weekday}",
                                        {"value": value, "limit": format_range(limit)}))
    return problems


def required_hour_problem(hour: int | None, legal: LegalHours) -> Problem | None:
    """A stage's required hour that lies wholly outside the legal hours of every kind of day: the
    dialer would never call in it, so the stage editor refuses it."""
    if hour is None:
        return None
    start, end = hour * 60, hour * 60 + 60
    for limit in (legal.weekday, legal.weekend):
        if limit is not None and start < limit[1] and end > limit[0]:
            return None
    limits = ", ".join(format_range(x) for x in (legal.weekday, legal.weekend) if x is not None) or "—"
    return Problem("err_required_hour_outside_legal", "required_hour", {"hour": hour, "limits": limits})
