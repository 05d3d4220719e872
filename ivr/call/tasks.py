"""Callback tasks for operators: raised by the call script (actionable reason, a request for a
person) and by the ladder (hand-over to retention)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ivr.db.models import CallbackTask, TaskState

log = logging.getLogger(__name__)

_TASKS = cast(Table, CallbackTask.__table__)


def raise_callback(
    session: Session,
    *,
    account_id: int,
    queue: str,
    now: dt.datetime,
    case_id: int | None = None,
    attempt_id: int | None = None,
    reason_id: int | None = None,
    priority: int = 5,
) -> CallbackTask:
    """Create a task in `queue`, or refresh the one already open for this case and queue: an
    operator should see one card per case and route, not one per call."""
    naive_now = now.replace(tzinfo=None) if now.tzinfo else now
    existing = session.scalar(
        select(CallbackTask).where(
            CallbackTask.account_id == account_id,
            CallbackTask.queue == queue,
            CallbackTask.state.in_([TaskState.OPEN.value, TaskState.CLAIMED.value]),
            CallbackTask.debt_case_id == case_id if case_id is not None else CallbackTask.debt_case_id.is_(None),
        )
    )
    if existing is not None:
        existing.attempt_id = attempt_id or existing.attempt_id
        existing.reason_id = reason_id or existing.reason_id
        existing.priority = min(existing.priority, priority)
        return existing
    task = CallbackTask(
        account_id=account_id, debt_case_id=case_id, attempt_id=attempt_id, reason_id=reason_id,
        queue=queue, priority=priority, due_at=naive_now, state=TaskState.OPEN.value, created_at=naive_now,
    )
    session.add(task)
    session.flush()
    log.info("callback task %s raised in queue %s for account %s", task.id, queue, account_id)
    return task


def raise_callback_core(
    conn: Connection,
    *,
    account_id: int,
    queue: str,
    now: dt.datetime,
    case_id: int | None = None,
    attempt_id: int | None = None,
    reason_id: int | None = None,
    priority: int = 5,
) -> int:
    """`raise_callback` in Core statements on a Connection (the call facts writer); the same
    rule: one open task per case and queue, refreshed by a later call. Returns the task id."""
    naive_now = now.replace(tzinfo=None) if now.tzinfo else now
    existing = conn.execute(
        select(_TASKS.c.id, _TASKS.c.attempt_id, _TASKS.c.reason_id, _TASKS.c.priority).where(
            _TASKS.c.account_id == account_id,
            _TASKS.c.queue == queue,
            _TASKS.c.state.in_([TaskState.OPEN.value, TaskState.CLAIMED.value]),
            _TASKS.c.debt_case_id == case_id if case_id is not None else _TASKS.c.debt_case_id.is_(None),
        ).limit(1)
    ).first()
    if existing is not None:
        conn.execute(update(_TASKS).where(_TASKS.c.id == existing.id).values(
            attempt_id=attempt_id or existing.attempt_id, reason_id=reason_id or existing.reason_id,
            priority=min(existing.priority, priority)))
        return int(existing.id)
    task_id = conn.execute(insert(_TASKS).values(
        account_id=account_id, debt_case_id=case_id, attempt_id=attempt_id, reason_id=reason_id, queue=queue,
        priority=priority, due_at=naive_now, state=TaskState.OPEN.value, created_at=naive_now,
    ).returning(_TASKS.c.id)).scalar_one()
    log.info("callback task %s raised in queue %s for account %s", task_id, queue, account_id)
    return int(task_id)
