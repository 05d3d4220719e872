"""Writing one outbox event: one INSERT in the caller's transaction, no I/O.

Per account the events are numbered 1, 2, 3, ... without gaps (`seq`). The account's row is
locked first (SELECT ... FOR UPDATE on PostgreSQL; SQLite has one writer at a time anyway), so
two transactions recording for the same account take turns, and the order of `seq` is the order
in which they commit: the sender never sees event 5 of an account while 4 is still uncommitted.
Callers record after they changed the fact's own rows (the account comes after call attempts
and debt cases, the order ivr/dialer/attempts.py keeps), so the lock is short and the lock order
the same as elsewhere.

The idempotency key names the fact (e.g. `call.outcome:42` for attempt 42); recording a fact
whose key is already stored does nothing, so a hook that runs twice writes one event. The whole
write is one INSERT ... SELECT (plus the lock on PostgreSQL): about 2-3 ms on this project's
test machine, SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import Any, cast

from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    String,
    Table,
    bindparam,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.engine import Connection, CursorResult, Result
from sqlalchemy.orm import Session

from ivr.db.models import Account, OutboxEvent

log = logging.getLogger(__name__)

# The event kinds billing receives (the `type` field of the body); see README "Push to billing".
CALL_OUTCOME = "call.outcome"
PROMISE_MADE = "promise.made"
PROMISE_KEPT = "promise.kept"
PROMISE_BROKEN = "promise.broken"
OPT_OUT = "opt_out"
BLOCK_ADDED = "block_list.added"
BLOCK_REMOVED = "block_list.removed"
CALLBACK_DONE = "callback.done"
KINDS = (CALL_OUTCOME, PROMISE_MADE, PROMISE_KEPT, PROMISE_BROKEN, OPT_OUT, BLOCK_ADDED, BLOCK_REMOVED, CALLBACK_DONE)

PENDING = "pending"
RETRYING = "retrying"
SENT = "sent"
FAILED = "failed"
STATES = (PENDING, RETRYING, SENT, FAILED)

_EVENTS = cast(Table, OutboxEvent.__table__)


def naive_utc(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(tzinfo=None) if now.tzinfo else now


def rowcount(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def record(
    session: Session | Connection, kind: str, account_id: int, payload: dict[str, Any], now: dt.datetime,
    *, key: str,
) -> bool:
    """Add one event for the account in the caller's transaction; False when `key` is stored
    already (the fact was recorded before) or the account does not exist. `payload` must be
    JSON-serialisable. One INSERT ... SELECT (on PostgreSQL after locking the account row)."""
    if kind not in KINDS:
        raise ValueError(f"unknown outbox event kind {kind!r}")
    bind = session.get_bind() if isinstance(session, Session) else session
    if bind.dialect.name == "postgresql":
        # A separate statement: after waiting for the lock, the INSERT's own snapshot (taken at
        # its start) sees the other transaction's event, so max(seq) is up to date.
        session.execute(_LOCK_ACCOUNT, {"r_account": account_id})
    stamp = naive_utc(now)
    params = {"r_key": key, "r_account": account_id, "r_kind": kind, "r_payload": payload, "r_now": stamp}
    return session.execute(_insert_event(), params).first() is not None


# The statements are built once, with bound parameters: building and keying a statement of this
# size on every event cost more CPU than running it (the call facts writer records thousands).
_LOCK_ACCOUNT = select(Account.id).where(Account.id == bindparam("r_account", type_=Integer())).with_for_update()


@functools.cache
def _insert_event() -> Any:
    account = bindparam("r_account", type_=Integer())
    key = bindparam("r_key", type_=String())
    stamp = bindparam("r_now", type_=DateTime())
    last = select(func.coalesce(func.max(_EVENTS.c.seq), 0)).where(_EVENTS.c.account_id == account).scalar_subquery()
    recorded = select(_EVENTS.c.id).where(_EVENTS.c.idempotency_key == key).exists()
    values: dict[str, Any] = {
        "idempotency_key": key, "account_id": account, "account_external_id": Account.external_id,
        "seq": last + 1, "kind": bindparam("r_kind", type_=String()), "payload": bindparam("r_payload", type_=JSON()),
        "created_at": stamp, "state": literal(PENDING), "attempts": literal(0), "next_try_at": stamp,
        "last_error": literal(""),
    }
    stmt = insert(_EVENTS).from_select(list(values), select(*values.values()).where(Account.id == account, ~recorded))
    # RETURNING rather than rowcount: psycopg reports no row count for INSERT ... SELECT here
    return stmt.returning(_EVENTS.c.id)
