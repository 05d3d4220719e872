"""The dialer's rules as one immutable snapshot.

The ladder, call windows, contact limits and runtime options live in the database (the admin
edits them). `load_rules` reads them once into plain frozen dataclasses so that every pure
function of the dialer (windows, limits, ladder, retry) takes a `Rules` and a `now` and does no
I/O. A snapshot is cheap to build; the engine reloads it at most once per tick, so an admin's edit takes
effect within one tick.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.db.models import CallWindow, ContactLimit, LadderStage
from ivr.db.options import get_options
from ivr.dialer.legal import LegalHours, legal_hours_from_options

log = logging.getLogger(__name__)

HOLIDAY_POLICIES = ("as_weekend", "no_calls", "as_weekday")
PERIODS = ("day", "week", "month")
COUNTS = ("attempts", "answered")
ON_END = ("next", "block", "retention", "stop")
HOLIDAY_WEEKDAY = 7  # CallWindow.weekday of the public-holiday row


@dataclass(frozen=True)
class Window:
    """Local hours [start, end) of one window row; end 00:00 means "until midnight"."""

    start: dt.time
    end: dt.time

    @property
    def end_minutes(self) -> int:
        minutes = self.end.hour * 60 + self.end.minute
        return 24 * 60 if minutes == 0 else minutes

    @property
    def start_minutes(self) -> int:
        return self.start.hour * 60 + self.start.minute


@dataclass(frozen=True)
class Stage:
    code: str
    position: int
    name: str = ""
    anchor: str = "due"  # due | block
    start_day: int = 0
    prompt: str = ""
    window_profile: str = "default"
    required_hour: int | None = None
    max_attempts: int = 3
    retry_minutes: int = 240
    on_enter: str | None = None  # "block" | None
    on_end: str = "next"  # next | block | retention | stop


@dataclass(frozen=True)
class Limit:
    period: str  # day | week | month
    max_calls: int
    counts: str = "attempts"  # attempts | answered


@dataclass(frozen=True)
class Options:
    holiday_policy: str = "as_weekend"
    retention_after_days: int = 90
    overdue_after_days: int = 180
    paid_claim_grace_days: int = 3
    retry_busy_minutes: int = 20
    retry_no_answer_minutes: int = 120
    retry_congestion_minutes: int = 30
    retry_failed_minutes: int = 5
    retry_machine_minutes: int = 240
    retry_hangup_minutes: int = 240


ProfileWindows = Mapping[int, tuple[Window, ...]]


@dataclass(frozen=True)
class Rules:
    """Everything the dialer's pure functions need, read once from the database."""

    stages: tuple[Stage, ...] = ()  # active stages only, ordered by position
    windows: Mapping[str, ProfileWindows] = field(default_factory=lambda: MappingProxyType({}))
    limits: tuple[Limit, ...] = ()
    options: Options = field(default_factory=Options)
    default_timezone: str = "Europe/Moscow"
    # the hours no window may leave (ivr.dialer.legal); the default is the statutory one
    legal: LegalHours = field(default_factory=LegalHours)

    def stage(self, code: str | None) -> Stage | None:
        if code is None:
            return None
        for stage in self.stages:
            if stage.code == code:
                return stage
        return None

    def profile(self, name: str) -> ProfileWindows | None:
        """The window rows of a profile, or None when the profile has no rows at all."""
        return self.windows.get(name)


def _int_option(values: Mapping[str, Any], key: str, default: int) -> int:
    raw = values.get(key, default)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        log.error("option %s has a non-integer value %r; using %s", key, raw, default)
        return default
    return value if value >= 0 else default


def build_options(values: Mapping[str, Any]) -> Options:
    policy = str(values.get("holiday_policy", "as_weekend"))
    if policy not in HOLIDAY_POLICIES:
        # Fail closed: an unknown policy must not let the robot call on holidays.
        log.error("unknown holiday_policy %r; treating holidays as no_calls", policy)
        policy = "no_calls"
    defaults = Options()
    return Options(
        holiday_policy=policy,
        **{
            name: _int_option(values, name, getattr(defaults, name))
            for name in (
                "retention_after_days", "overdue_after_days", "paid_claim_grace_days",
                "retry_busy_minutes", "retry_no_answer_minutes", "retry_congestion_minutes",
                "retry_failed_minutes", "retry_machine_minutes", "retry_hangup_minutes",
            )
        },
    )


def build_windows(rows: list[tuple[str, int, dt.time, dt.time]]) -> Mapping[str, ProfileWindows]:
    by_profile: dict[str, dict[int, list[Window]]] = {}
    for profile, weekday, start, end in rows:
        days = by_profile.setdefault(profile, {})
        window = Window(start, end)
        if not 0 <= weekday <= HOLIDAY_WEEKDAY or window.end_minutes <= window.start_minutes:
            # A window that crosses midnight or has a bad weekday is ignored (fail closed).
            log.error("ignoring invalid call window %s weekday=%s %s-%s", profile, weekday, start, end)
            continue
        days.setdefault(weekday, []).append(window)
    return MappingProxyType({
        profile: MappingProxyType({
            day: tuple(sorted(ws, key=lambda w: w.start_minutes)) for day, ws in days.items()
        })
        for profile, days in by_profile.items()
    })


def load_rules(session: Session, default_timezone: str = "Europe/Moscow") -> Rules:
    """Read the ladder, windows, limits and options into a `Rules` snapshot."""
    stages = tuple(
        Stage(
            code=s.code, position=s.position, name=s.name, anchor=s.anchor, start_day=s.start_day,
            prompt=s.prompt, window_profile=s.window_profile, required_hour=s.required_hour,
            max_attempts=s.max_attempts, retry_minutes=s.retry_minutes, on_enter=s.on_enter,
            on_end=s.on_end if s.on_end in ON_END else "stop",
        )
        for s in session.scalars(
            select(LadderStage).where(LadderStage.active.is_(True)).order_by(LadderStage.position, LadderStage.id)
        )
    )
    windows = build_windows([
        (w.profile, w.weekday, w.start_time, w.end_time) for w in session.scalars(select(CallWindow))
    ])
    limits = []
    for lim in session.scalars(select(ContactLimit)):
        if lim.period not in PERIODS or lim.counts not in COUNTS:
            # An unknown limit cannot be enforced, so it blocks everything (fail closed).
            log.error("contact limit with unknown period/counts %s/%s: treated as 0 calls", lim.period, lim.counts)
            limits.append(Limit("day", 0, "attempts"))
            continue
        limits.append(Limit(lim.period, lim.max_calls, lim.counts))
    options = get_options(session)
    return Rules(
        stages=stages,
        windows=windows,
        limits=tuple(limits),
        options=build_options(options),
        default_timezone=default_timezone,
        legal=legal_hours_from_options(options),
    )
