"""Callback-task logic for operators, without HTTP: queue counts, take next (atomic claim), claim,
release, record the result, and returning idle claims to the queue.

Every function takes the session and the time as arguments; callers own the transaction. Claims
are a conditional UPDATE (`... WHERE state = 'open'`) so two operators, in two processes or on two
web servers, can never get the same task: the database decides who won.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from ivr.db.models import (
    CallAttempt,
    CallbackTask,
    CaseState,
    DebtCase,
    PhoneNumber,
    Promise,
    Reason,
    StrEnum,
    TaskState,
    User,
)
from ivr.db.options import get_option
from ivr.outbox import facts as outbox

log = logging.getLogger(__name__)

# Default delay before an unreachable subscriber's task comes back to the queue.
UNREACHABLE_RETRY_MINUTES = 120
RETRY_CHOICES = (30, 60, 120, 240, 1440)
_OPEN_CASE_STATES = (CaseState.ACTIVE.value, CaseState.PROMISED.value, CaseState.BLOCKED.value)


class ResultKind(StrEnum):
    RESOLVED = "resolved"
    PROMISE = "promise"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    WRONG_NUMBER = "wrong_number"


class TaskError(ValueError):
    """A task operation that cannot be done; `key` names the UI message (ivr.web.i18n)."""

    def __init__(self, key: str, message: str, **params: Any) -> None:
        super().__init__(message)
        self.key = key
        self.params = params


def naive_utc(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(tzinfo=None) if now.tzinfo else now


def _queue_filter(queues: Sequence[str] | None) -> list[Any]:
    return [CallbackTask.queue.in_(list(queues))] if queues else []


@dataclass(frozen=True)
class QueueCount:
    queue: str
    open: int  # open tasks, due or not
    due: int  # open tasks whose due time has come
    claimed: int


def known_queues(session: Session) -> list[str]:
    """Queues that exist: routes of the classifier, the human-request queue and any with tasks."""
    names = {r for r in session.scalars(select(Reason.route).where(Reason.route.is_not(None))) if r}
    names.update(q for q in session.scalars(select(CallbackTask.queue).distinct()) if q)
    try:
        human = get_option(session, "human_request_queue")
    except KeyError:
        human = None
    if human:
        names.add(str(human))
    return sorted(names)


def queue_counts(session: Session, now: dt.datetime, queues: Sequence[str] | None = None) -> list[QueueCount]:
    """Open/due/claimed counts per queue; `queues` empty or None = all queues."""
    now_n = naive_utc(now)
    is_open = CallbackTask.state == TaskState.OPEN.value
    rows = session.execute(
        select(
            CallbackTask.queue,
            func.sum(case((is_open, 1), else_=0)),
            func.sum(case((is_open & (CallbackTask.due_at <= now_n), 1), else_=0)),
            func.sum(case((CallbackTask.state == TaskState.CLAIMED.value, 1), else_=0)),
        )
        .where(CallbackTask.state.in_([TaskState.OPEN.value, TaskState.CLAIMED.value]), *_queue_filter(queues))
        .group_by(CallbackTask.queue)
    ).all()
    counts = {q: QueueCount(q, int(o or 0), int(d or 0), int(c or 0)) for q, o, d, c in rows}
    names = [q for q in known_queues(session) if not queues or q in queues]
    for name in names:
        counts.setdefault(name, QueueCount(name, 0, 0, 0))
    return [counts[q] for q in sorted(counts)]


def list_tasks(session: Session, *, queues: Sequence[str] | None, states: Sequence[str], limit: int = 100) -> list[CallbackTask]:
    return list(session.scalars(
        select(CallbackTask)
        .where(CallbackTask.state.in_(list(states)), *_queue_filter(queues))
        .order_by(CallbackTask.priority, CallbackTask.due_at, CallbackTask.id)
        .limit(limit)
    ))


def release_idle_claims(session: Session, now: dt.datetime, idle_minutes: int) -> int:
    """Return tasks claimed but untouched for longer than `idle_minutes` to their queue (an operator
    who went home must not sit on them). The scheduler calls this; `take_next` runs it first."""
    cutoff = naive_utc(now) - dt.timedelta(minutes=idle_minutes)
    last = func.coalesce(CallbackTask.last_activity_at, CallbackTask.claimed_at)
    result = session.execute(
        update(CallbackTask)
        .where(CallbackTask.state == TaskState.CLAIMED.value, last < cutoff)
        .values(state=TaskState.OPEN.value, claimed_by=None, claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    released = int(getattr(result, "rowcount", 0) or 0)
    if released:
        log.info("returned %d idle callback task(s) to their queues", released)
    return released


def claim_task(session: Session, task_id: int, user_id: int, now: dt.datetime) -> bool:
    """Claim one open task; False when someone else got it first (or it is not open)."""
    now_n = naive_utc(now)
    result = session.execute(
        update(CallbackTask)
        .where(CallbackTask.id == task_id, CallbackTask.state == TaskState.OPEN.value)
        .values(state=TaskState.CLAIMED.value, claimed_by=user_id, claimed_at=now_n, last_activity_at=now_n)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def _reload(session: Session, task_id: int) -> CallbackTask:
    task = session.get(CallbackTask, task_id, populate_existing=True)
    assert task is not None
    return task


def current_claim(session: Session, user: User, queues: Sequence[str] | None = None) -> CallbackTask | None:
    return session.scalar(
        select(CallbackTask)
        .where(CallbackTask.state == TaskState.CLAIMED.value, CallbackTask.claimed_by == user.id,
               *_queue_filter(queues))
        .order_by(CallbackTask.claimed_at)
        .limit(1)
    )


def take_next(session: Session, user: User, now: dt.datetime, idle_minutes: int,
              queue: str | None = None) -> CallbackTask | None:
    """Claim the next task for `user`: the most urgent (lowest priority number), then oldest due,
    among due open tasks in the user's queues (User.queues empty = all). An operator who already
    holds a claimed task gets that one back instead of hoarding a second."""
    release_idle_claims(session, now, idle_minutes)
    queues: list[str] = list(user.queues or [])
    if queue:
        if queues and queue not in queues:
            raise TaskError("err_queue_not_yours", f"queue {queue!r} is not one of yours", queue=queue)
        queues = [queue]
    held = current_claim(session, user, queues)
    if held is not None:
        touch(session, held, now)
        return held
    now_n = naive_utc(now)
    for _round in range(5):  # bounded: each round can only lose to tasks others really claimed
        candidates = list(session.scalars(
            select(CallbackTask.id)
            .where(CallbackTask.state == TaskState.OPEN.value, CallbackTask.due_at <= now_n,
                   *_queue_filter(queues))
            .order_by(CallbackTask.priority, CallbackTask.due_at, CallbackTask.id)
            .limit(10)
        ))
        if not candidates:
            return None
        for task_id in candidates:
            if claim_task(session, task_id, user.id, now):
                log.info("task %s claimed by %s", task_id, user.username)
                return _reload(session, task_id)
    return None


def may_work(user: User, task: CallbackTask) -> bool:
    """Operators see tasks of their own queues only; admins and queue-less operators see all."""
    return user.role == "admin" or not user.queues or task.queue in user.queues


def claim_specific(session: Session, task_id: int, user: User, now: dt.datetime, idle_minutes: int) -> CallbackTask:
    release_idle_claims(session, now, idle_minutes)
    task = session.get(CallbackTask, task_id)
    if task is None:
        raise TaskError("err_task_not_found", "no such task")
    if not may_work(user, task):
        raise TaskError("err_queue_not_yours", f"queue {task.queue!r} is not one of yours", queue=task.queue)
    if task.state == TaskState.CLAIMED.value and task.claimed_by == user.id:
        touch(session, task, now)
        return task
    if not claim_task(session, task_id, user.id, now):
        raise TaskError("err_task_taken", "another operator has this task, or it is closed")
    return _reload(session, task_id)


def _own(task: CallbackTask | None, user: User) -> CallbackTask:
    if task is None:
        raise TaskError("err_task_not_found", "no such task")
    if task.state != TaskState.CLAIMED.value or task.claimed_by != user.id:
        raise TaskError("err_claim_lost", "this task is not claimed by you (it may have been returned to the queue after idling)")
    return task


def touch(session: Session, task: CallbackTask, now: dt.datetime) -> None:
    task.last_activity_at = naive_utc(now)


def release_task(session: Session, task_id: int, user: User, now: dt.datetime) -> CallbackTask:
    task = _own(session.get(CallbackTask, task_id), user)
    task.state = TaskState.OPEN.value
    task.claimed_by = None
    task.claimed_at = None
    task.last_activity_at = naive_utc(now)
    return task


@dataclass(frozen=True)
class ResultInput:
    kind: str
    note: str = ""
    next_action: str = ""
    promise_date: dt.date | None = None
    phone_id: int | None = None  # wrong_number: which number
    retry_minutes: int = UNREACHABLE_RETRY_MINUTES  # unreachable: when to try again


def parse_promise_date(raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw.strip())
    except ValueError:
        raise TaskError("err_promise_not_date", f"{raw!r} is not a date", value=raw) from None


def _open_case(session: Session, task: CallbackTask) -> DebtCase | None:
    if task.debt_case_id is not None:
        return session.get(DebtCase, task.debt_case_id)
    return session.scalar(
        select(DebtCase)
        .where(DebtCase.account_id == task.account_id, DebtCase.state.in_(_OPEN_CASE_STATES))
        .order_by(DebtCase.id.desc())
        .limit(1)
    )


def _append_note(task: CallbackTask, now: dt.datetime, user: User, kind: str, note: str) -> None:
    line = f"{now:%Y-%m-%d %H:%M} UTC {user.username}: {kind}" + (f": {note}" if note else "")
    task.result_note = f"{task.result_note}\n{line}" if task.result_note else line


def record_result(session: Session, task_id: int, user: User, data: ResultInput, now: dt.datetime,
                  today: dt.date) -> CallbackTask:
    """Store the operator's result. `today` is the subscriber's local date (a promise may not name
    a day that is already over where the subscriber lives)."""
    from ivr.call.dates import promise_horizon  # shared with the call script's keypad promises

    task = _own(session.get(CallbackTask, task_id), user)
    now_n = naive_utc(now)
    try:
        kind = ResultKind(data.kind)
    except ValueError:
        raise TaskError("err_result_kind", f"unknown result {data.kind!r}", value=data.kind) from None
    note = data.note.strip()[:4000]
    next_action = data.next_action.strip()[:200]
    if kind is ResultKind.UNREACHABLE and not 0 < data.retry_minutes <= 7 * 1440:
        raise TaskError("err_retry", "retry delay must be between 1 minute and 7 days")

    if kind is ResultKind.PROMISE:
        if data.promise_date is None:
            raise TaskError("err_promise_missing", "a promise needs a date")
        case_row = _open_case(session, task)
        if case_row is None:
            raise TaskError("err_no_case", "this account has no open debt case to attach a promise to")
        horizon = promise_horizon(today, task.account.block_date,
                                  int(get_option(session, "promise_horizon_days_after_block")),
                                  int(get_option(session, "promise_horizon_max_days")))
        if data.promise_date < today:
            raise TaskError("err_promise_past", "the promised date is in the past", date=data.promise_date)
        if data.promise_date > horizon:
            raise TaskError("err_promise_horizon", "the promised date is too far ahead", date=data.promise_date,
                            horizon=horizon)
        for old in case_row.promises:
            if old.status == "pending":
                old.status = "cancelled"
                old.resolved_at = now_n
        session.add(Promise(debt_case_id=case_row.id, source="operator", promised_date=data.promise_date,
                            amount=case_row.amount_owed, status="pending", stage_code=case_row.stage_code,
                            created_at=now_n))
        if case_row.state == CaseState.ACTIVE.value:
            case_row.state = CaseState.PROMISED.value
        case_row.promise_broken = False
        outbox.promise_made(session, case_row.id, now)
        task.promise_date = data.promise_date
    elif kind is ResultKind.WRONG_NUMBER:
        phone_id = data.phone_id
        if phone_id is None and task.attempt_id is not None:
            attempt = session.get(CallAttempt, task.attempt_id)
            phone_id = attempt.phone_number_id if attempt is not None else None
        phone = session.get(PhoneNumber, phone_id) if phone_id is not None else None
        if phone is None or phone.account_id != task.account_id:
            raise TaskError("err_phone_missing", "choose which number is wrong")
        phone.status = "wrong_party"
        phone.status_at = now_n

    _append_note(task, now_n, user, kind.value, note)
    task.result = kind.value
    task.next_action = next_action
    task.last_activity_at = now_n
    if kind is ResultKind.UNREACHABLE:
        task.state = TaskState.OPEN.value
        task.claimed_by = None
        task.claimed_at = None
        task.due_at = now_n + dt.timedelta(minutes=data.retry_minutes)
    else:
        task.state = TaskState.DONE.value
        task.done_at = now_n
        outbox.callback_done(session, task, now)
    log.info("task %s: %s recorded by %s", task.id, kind.value, user.username)
    return task
