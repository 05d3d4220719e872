"""Callback tasks for operators: raised by the call script (actionable reason, a request for a
person) and by the ladder (hand-over to retention)."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.db.models import CallbackTask, TaskState

log = logging.getLogger(__name__)


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
