"""Load the default classifier, ladder, windows, limits and settings from ivr/data/defaults.toml.

Only rows that do not exist yet are created, so running it again never overwrites an admin's
edits. A different file can be given (`ivr db init --seed FILE`)."""

from __future__ import annotations

import datetime as dt
import logging
import tomllib
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.db.models import CallWindow, ContactLimit, LadderStage, Reason, Setting

log = logging.getLogger(__name__)


def default_seed_text() -> str:
    return resources.files("ivr.data").joinpath("defaults.toml").read_text(encoding="utf-8")


def load_seed(path: Path | None = None) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8") if path else default_seed_text()
    return tomllib.loads(text)


def default_options() -> dict[str, Any]:
    return dict(load_seed()["settings"])


def _time(value: str) -> dt.time:
    hour, minute = value.split(":")
    return dt.time(int(hour), int(minute))


def seed(session: Session, data: dict[str, Any] | None = None) -> dict[str, int]:
    """Insert missing seed rows; returns how many rows of each kind were created."""
    data = data or load_seed()
    created = {"settings": 0, "contact_limits": 0, "windows": 0, "ladder": 0, "reasons": 0}

    existing = set(session.scalars(select(Setting.key)))
    for key, value in data.get("settings", {}).items():
        if key not in existing:
            session.add(Setting(key=key, value=value))
            created["settings"] += 1

    have_limits = {(p, c) for p, c in session.execute(select(ContactLimit.period, ContactLimit.counts))}
    for row in data.get("contact_limits", []):
        if (row["period"], row.get("counts", "attempts")) not in have_limits:
            session.add(ContactLimit(period=row["period"], max_calls=int(row["max_calls"]), counts=row.get("counts", "attempts")))
            created["contact_limits"] += 1

    have_profiles = set(session.scalars(select(CallWindow.profile).distinct()))
    for profile, days in data.get("windows", {}).items():
        if profile in have_profiles:
            continue
        for weekday, (start, end) in days.items():
            session.add(CallWindow(profile=profile, weekday=int(weekday), start_time=_time(start), end_time=_time(end)))
            created["windows"] += 1

    have_stages = set(session.scalars(select(LadderStage.code)))
    auto = 0
    for row in data.get("ladder", []):
        # rows number 1, 2, ... in file order; a row may name its own (before_due: 0), so the
        # shipped debt stages keep the positions they always had
        if "position" not in row:
            auto += 1
        position = int(row.get("position", auto))
        if row["code"] in have_stages:
            continue
        session.add(
            LadderStage(
                code=row["code"], position=position, name=row.get("name", row["code"]),
                anchor=row.get("anchor", "due"), start_day=int(row["start_day"]), prompt=row["prompt"],
                window_profile=row.get("window_profile", "default"), required_hour=row.get("required_hour"),
                max_attempts=int(row.get("max_attempts", 3)), retry_minutes=int(row.get("retry_minutes", 240)),
                on_enter=row.get("on_enter"), on_end=row.get("on_end", "next"),
                active=bool(row.get("active", True)),
            )
        )
        created["ladder"] += 1

    have_reasons = set(session.scalars(select(Reason.code)))
    for position, row in enumerate(data.get("reasons", []), start=1):
        if row["code"] in have_reasons:
            continue
        session.add(
            Reason(
                code=row["code"], key=str(row["key"]), labels=dict(row.get("labels", {})),
                category=row["category"], actionable=bool(row.get("actionable", False)),
                route=row.get("route"), replies=dict(row.get("replies", {})),
                incentive_allowed=bool(row.get("incentive_allowed", False)),
                norm_pct=Decimal(str(row.get("norm_pct", 0))), position=position,
            )
        )
        created["reasons"] += 1
    session.flush()
    if any(created.values()):
        log.info("seeded defaults: %s", created)
    return created
