"""Admins' pauses of the robot: everything, one ladder stage, or one Asterisk server (issue 13).

A pause is a row in `robot_pauses`; it is active until resumed, so it survives a restart, and it
is kept afterwards with who paused and resumed it, when and why. The dialer reads the active
pauses once per fill pass (`active`, one indexed query) and starts no new call they cover; calls
in progress finish. `ivr pause|resume` and the live page write them (`pause`, `resume`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.db.models import RobotPause
from ivr.dialer.windows import naive_utc

log = logging.getLogger(__name__)

GLOBAL = "global"
STAGE = "stage"
SERVER = "server"
SCOPES = (GLOBAL, STAGE, SERVER)
MAX_WHY = 500


class PauseError(ValueError):
    """A pause or resume that cannot be done as asked (the message says why)."""


@dataclass(frozen=True)
class Pause:
    id: int
    scope: str
    key: str
    who: str
    why: str
    created_at: dt.datetime  # aware UTC
    resumed_at: dt.datetime | None = None
    resumed_by: str | None = None

    def label(self) -> str:
        return "everything" if self.scope == GLOBAL else f"{self.scope} {self.key}"

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "scope": self.scope, "key": self.key, "who": self.who, "why": self.why,
                "since": self.created_at.isoformat(timespec="seconds")}


@dataclass(frozen=True)
class Active:
    """What the active pauses stop: the dialer's view, read once per pass."""

    everything: bool = False
    stages: frozenset[str] = frozenset()
    servers: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return self.everything or bool(self.stages) or bool(self.servers)


NOTHING = Active()


def _view(row: RobotPause) -> Pause:
    return Pause(id=row.id, scope=row.scope, key=row.key, who=row.who, why=row.why,
                 created_at=row.created_at.replace(tzinfo=dt.UTC),
                 resumed_at=row.resumed_at.replace(tzinfo=dt.UTC) if row.resumed_at else None,
                 resumed_by=row.resumed_by)


def _check(scope: str, key: str) -> str:
    if scope not in SCOPES:
        raise PauseError(f"unknown pause scope {scope!r} (one of {', '.join(SCOPES)})")
    key = (key or "").strip()
    if scope == GLOBAL:
        return ""
    if not key:
        raise PauseError(f"a {scope} pause needs the {scope}'s name")
    if len(key) > 64:
        raise PauseError(f"{scope} name too long (at most 64 characters)")
    return key


def list_active(session: Session) -> list[Pause]:
    rows = session.scalars(select(RobotPause).where(RobotPause.resumed_at.is_(None))
                           .order_by(RobotPause.created_at, RobotPause.id))
    return [_view(r) for r in rows]


def active(session: Session) -> Active:
    """The dialer's per-pass read: what is paused now."""
    everything, stages, servers = False, set(), set()
    for scope, key in session.execute(select(RobotPause.scope, RobotPause.key).where(RobotPause.resumed_at.is_(None))):
        if scope == GLOBAL:
            everything = True
        elif scope == STAGE:
            stages.add(key)
        elif scope == SERVER:
            servers.add(key)
        else:  # fail closed: a scope this version does not know stops everything
            log.error("unknown pause scope %r in robot_pauses: treating it as a global pause", scope)
            everything = True
    return Active(everything, frozenset(stages), frozenset(servers))


def pause(session: Session, scope: str, key: str, who: str, why: str, now: dt.datetime) -> Pause:
    """Pause `scope`/`key` (the caller commits). Pausing what is already paused changes nothing
    and returns the existing pause, so the first reason and time are kept."""
    key = _check(scope, key)
    who = (who or "").strip()[:64] or "unknown"
    why = (why or "").strip()
    if len(why) > MAX_WHY:
        raise PauseError(f"reason too long (at most {MAX_WHY} characters)")
    existing = session.scalars(select(RobotPause).where(
        RobotPause.resumed_at.is_(None), RobotPause.scope == scope, RobotPause.key == key)).first()
    if existing is not None:
        return _view(existing)
    row = RobotPause(scope=scope, key=key, who=who, why=why, created_at=naive_utc(now))
    session.add(row)
    session.flush()
    log.warning("robot paused: %s %s by %s (%s)", scope, key or "-", who, why or "no reason given")
    return _view(row)


def resume(session: Session, scope: str, key: str, who: str, now: dt.datetime) -> list[Pause]:
    """End the active pause of `scope`/`key` (the caller commits); returns what was resumed
    (empty when nothing was paused there)."""
    key = _check(scope, key)
    rows = list(session.scalars(select(RobotPause).where(
        RobotPause.resumed_at.is_(None), RobotPause.scope == scope, RobotPause.key == key)))
    who = (who or "").strip()[:64] or "unknown"
    for row in rows:
        row.resumed_at, row.resumed_by = naive_utc(now), who
        log.warning("robot resumed: %s %s by %s", scope, key or "-", who)
    session.flush()
    return [_view(r) for r in rows]


def resume_id(session: Session, pause_id: int, who: str, now: dt.datetime) -> Pause | None:
    row = session.get(RobotPause, pause_id)
    if row is None or row.resumed_at is not None:
        return None
    row.resumed_at, row.resumed_by = naive_utc(now), (who or "").strip()[:64] or "unknown"
    session.flush()
    log.warning("robot resumed: %s %s by %s", row.scope, row.key or "-", row.resumed_by)
    return _view(row)
