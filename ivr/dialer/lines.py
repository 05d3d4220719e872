"""Line leases: the channel limit of a server, shared and atomic across every dialer.

Each server has `channel_limit` slot rows in `line_leases`. A slot is taken with a
compare-and-set UPDATE

    UPDATE line_leases SET action_id = :a, dialer_id = :d, expires_at = :until
    WHERE server = :s AND slot = :k AND (action_id IS NULL OR expires_at < :now)

whose row count says who won (PostgreSQL re-evaluates the WHERE after a concurrent writer
commits; SQLite serialises writers), so two dialers can never hold more slots than the server
has, whatever they read before. The lease is taken in the claim's transaction and freed in the
transaction that takes the attempt out of flight, by whichever process does that. The owner
renews its leases while its calls are in flight; a crashed dialer's leases expire after
`LEASE_TTL`, and reconciliation settles or re-leases its attempts.

Lowering a server's channel_limit leaves the slots above it in the table: `acquire` only uses
slots below the current limit, so they drain and are never used again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ivr.db.models import LineLease
from ivr.dialer.windows import naive_utc

# Renewed every dialer pass (a few seconds); long enough that a busy database does not let a
# live dialer's lines expire, short enough that a crashed dialer's lines come back within a minute.
LEASE_TTL = dt.timedelta(seconds=45)


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0))


def _free(now_naive: dt.datetime) -> object:
    return or_(LineLease.action_id.is_(None), LineLease.expires_at < now_naive)


def ensure_slots(session: Session, server: str, limit: int) -> None:
    """Insert the slot rows 0..limit-1 that are missing (each in a savepoint: another dialer may
    insert the same slot at the same moment)."""
    have = set(session.scalars(select(LineLease.slot).where(LineLease.server == server)))
    for slot in range(limit):
        if slot in have:
            continue
        try:
            with session.begin_nested():
                session.add(LineLease(server=server, slot=slot))
        except IntegrityError:
            pass  # inserted by another dialer meanwhile


def acquire(
    session: Session, server: str, limit: int, action_id: str, dialer_id: str, now: dt.datetime,
    ttl: dt.timedelta = LEASE_TTL,
) -> int | None:
    """Take a free slot of `server` for `action_id`; the slot number, or None when all `limit`
    slots are in use. Does not commit (the caller's transaction holds the attempt too)."""
    now_naive = naive_utc(now)
    until = naive_utc(now + ttl)
    ensure_slots(session, server, limit)
    candidates = list(session.scalars(
        select(LineLease.slot)
        .where(LineLease.server == server, LineLease.slot < limit, _free(now_naive))  # type: ignore[arg-type]
        .order_by(LineLease.slot)
    ))
    for slot in candidates:
        won = session.execute(
            update(LineLease)
            .where(LineLease.server == server, LineLease.slot == slot, _free(now_naive))  # type: ignore[arg-type]
            .values(action_id=action_id, dialer_id=dialer_id, expires_at=until)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(won) == 1:
            return slot
    return None


def release(session: Session, action_id: str) -> bool:
    """Free the slot held by `action_id` (no-op if it holds none). Does not commit."""
    freed = session.execute(
        update(LineLease).where(LineLease.action_id == action_id)
        .values(action_id=None, dialer_id=None, expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(freed) > 0


def renew(session: Session, action_ids: Collection[str], now: dt.datetime, ttl: dt.timedelta = LEASE_TTL,
          *, dialer_id: str | None = None) -> int:
    """Extend the leases of these attempts (ours in flight, or live calls found by reconcile);
    with `dialer_id` the renewing dialer becomes the owner. Does not commit."""
    if not action_ids:
        return 0
    values: dict[str, object] = {"expires_at": naive_utc(now + ttl)}
    if dialer_id is not None:
        values["dialer_id"] = dialer_id
    done = 0
    ids = list(action_ids)
    for i in range(0, len(ids), 500):
        done += _rowcount(session.execute(
            update(LineLease).where(LineLease.action_id.in_(ids[i:i + 500])).values(**values)
            .execution_options(synchronize_session=False)
        ))
    return done


def in_use(session: Session, now: dt.datetime) -> dict[str, int]:
    """Lines held (unexpired leases) per server, all dialers."""
    now_naive = naive_utc(now)
    rows = session.execute(
        select(LineLease.server, func.count())
        .where(LineLease.action_id.is_not(None), LineLease.expires_at >= now_naive)
        .group_by(LineLease.server)
    ).all()
    return {server: int(count) for server, count in rows}


def lease_expired(session: Session, action_id: str, now: dt.datetime) -> bool:
    """True if `action_id` holds no unexpired lease (its dialer stopped renewing it)."""
    until = session.scalar(select(LineLease.expires_at).where(LineLease.action_id == action_id))
    return until is None or until < naive_utc(now)


def held_by(session: Session, server_limits: Mapping[str, int]) -> dict[str, list[str]]:
    """Action ids holding slots per server (reports, tests)."""
    out: dict[str, list[str]] = {name: [] for name in server_limits}
    for server, action_id in session.execute(
        select(LineLease.server, LineLease.action_id).where(LineLease.action_id.is_not(None))
    ):
        if action_id is not None:
            out.setdefault(server, []).append(action_id)
    return out
