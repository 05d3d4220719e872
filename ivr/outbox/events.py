"""Writing one outbox event: one INSERT in the caller's transaction, no I/O.

Per account the events are numbered 1, 2, 3, ... without gaps (`seq`). The account's row is
locked first (SELECT ... FOR UPDATE on PostgreSQL; SQLite has one writer at a time anyway), so
two transactions recording for the same account take turns, and the order of `seq` is the order
in which they commit: the sender never sees event 5 of an account while 4 is still uncommitted.
Callers record at the end of their transaction (accounts are locked last everywhere, see
ivr/dialer/attempts.py), which keeps the lock short and the lock order the same.

The idempotency key names the fact (e.g. `call.outcome:attempt:42`); recording a fact whose key
is already stored does nothing, so a hook that runs twice writes one event.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.engine import Connection
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


def record(
    session: Session | Connection, kind: str, account_id: int, payload: dict[str, Any], now: dt.datetime,
    *, key: str,
) -> bool:
    """Add one event for the account in the caller's transaction; False when `key` is stored
    already (the fact was recorded before). `payload` must be JSON-serialisable."""
    if kind not in KINDS:
        raise ValueError(f"unknown outbox event kind {kind!r}")
    external_id = session.execute(
        select(Account.external_id).where(Account.id == account_id).with_for_update()
    ).scalar_one_or_none()
    if external_id is None:
        log.warning("outbox: %s for unknown account id %s not recorded", kind, account_id)
        return False
    if session.execute(select(OutboxEvent.id).where(OutboxEvent.idempotency_key == key)).first() is not None:
        return False
    last = session.execute(select(func.max(OutboxEvent.seq)).where(OutboxEvent.account_id == account_id)).scalar()
    stamp = naive_utc(now)
    session.execute(insert(_EVENTS).values(
        idempotency_key=key, account_id=account_id, account_external_id=external_id, seq=(last or 0) + 1,
        kind=kind, payload=payload, created_at=stamp, state=PENDING, attempts=0, next_try_at=stamp,
        last_error="",
    ))
    return True
