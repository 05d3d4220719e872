"""May an operator call this subscriber now? The same hours the robot keeps.

The hours are those of the case's ladder stage (its window profile and required hour), else the
"default" window profile, in the subscriber's local time (zone resolved as the dialer resolves
it), with the public-holiday calendar of the account's country and the holiday policy. Like the
dialer this fails closed: an unknown zone, a profile without windows, an unknown calendar mean
"outside the hours", and the operator then needs an explicit override with a reason.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ivr.db.models import Account, DebtCase
from ivr.dialer.policy import Rules, Stage, load_rules
from ivr.dialer.windows import resolve_timezone, stage_next_window, stage_window_open, zone

DEFAULT_PROFILE = "default"
REASON_MAX = 300  # CallAttempt.override_reason


@dataclass(frozen=True)
class CallHours:
    allowed: bool
    zone: str  # "" when the subscriber's zone is unknown
    profile: str
    next_open_local: dt.datetime | None  # when calling is next allowed, subscriber's time


def _stage_for(rules: Rules, case: DebtCase | None) -> Stage:
    stage = rules.stage(case.stage_code) if case is not None else None
    return stage or Stage(code="", position=0, window_profile=DEFAULT_PROFILE)


def call_hours(session: Session, account: Account, case: DebtCase | None, phone: str | None,
               now: dt.datetime, default_tz: str) -> CallHours:
    rules = load_rules(session, default_tz)
    stage = _stage_for(rules, case)
    tz_name = resolve_timezone(account.timezone, phone, default_tz)
    allowed = stage_window_open(rules, stage, tz_name, account.country, now)
    next_open = None
    if not allowed:
        start = stage_next_window(rules, stage, tz_name, account.country, now)
        zone_info = zone(tz_name) if tz_name else None
        if start is not None and zone_info is not None:
            next_open = start.astimezone(zone_info)
    return CallHours(allowed=allowed, zone=tz_name or "", profile=stage.window_profile, next_open_local=next_open)


def clean_reason(raw: str) -> str:
    """The override reason as stored: one line, trimmed, at most REASON_MAX characters."""
    return " ".join(raw.split())[:REASON_MAX]
