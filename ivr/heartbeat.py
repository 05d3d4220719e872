"""Heartbeats: a running process says what it is doing, another process reads it.

`ivr run` (and `ivr agi-server`) write one row each every few seconds: AMI connections per
server with their channel limit and since when they are up or down, the FastAGI address, whether
the dialer runs and on the simulator. `ivr status` and the web UI read the fresh rows; a row not
refreshed for `STALE` belongs to a process that died (a clean stop marks it stopped).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ivr.db.models import ServiceHeartbeat
from ivr.dialer.windows import naive_utc, to_utc

log = logging.getLogger(__name__)

INTERVAL = 5.0  # seconds between two writes
STALE = dt.timedelta(seconds=30)  # older than this: the process is gone


def instance_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def beat(sessions: sessionmaker[Session], instance: str, role: str, info: dict[str, Any], now: dt.datetime,
         *, started_at: dt.datetime | None = None) -> None:
    """Insert or refresh this process's row (one short transaction)."""
    naive_now = naive_utc(now)
    with sessions.begin() as session:
        row = session.get(ServiceHeartbeat, instance)
        if row is None:
            session.add(ServiceHeartbeat(
                instance=instance, role=role, host=socket.gethostname(), pid=os.getpid(),
                started_at=naive_utc(started_at) if started_at else naive_now, updated_at=naive_now, info=info,
            ))
        else:
            row.role, row.info, row.updated_at, row.stopped_at = role, info, naive_now, None


def stopped(sessions: sessionmaker[Session], instance: str, now: dt.datetime) -> None:
    with sessions.begin() as session:
        session.execute(update(ServiceHeartbeat).where(ServiceHeartbeat.instance == instance)
                        .values(stopped_at=naive_utc(now), updated_at=naive_utc(now)))


@dataclass(frozen=True)
class Peer:
    instance: str
    role: str
    host: str
    pid: int
    started_at: dt.datetime
    updated_at: dt.datetime
    alive: bool
    stopped: bool
    info: dict[str, Any]


def read(session: Session, now: dt.datetime, *, keep: dt.timedelta = dt.timedelta(hours=1)) -> list[Peer]:
    """The processes seen in the last `keep`, newest first; `alive` when fresh and not stopped."""
    now = to_utc(now)
    rows = session.scalars(
        select(ServiceHeartbeat).where(ServiceHeartbeat.updated_at >= naive_utc(now - keep))
        .order_by(ServiceHeartbeat.updated_at.desc())
    )
    peers = []
    for r in rows:
        updated = r.updated_at.replace(tzinfo=dt.UTC)
        peers.append(Peer(
            instance=r.instance, role=r.role, host=r.host, pid=r.pid, started_at=r.started_at.replace(tzinfo=dt.UTC),
            updated_at=updated, alive=r.stopped_at is None and now - updated <= STALE, stopped=r.stopped_at is not None,
            info=dict(r.info or {}),
        ))
    return peers
