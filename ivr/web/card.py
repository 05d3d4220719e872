"""The account card an operator works from: everything the robot learned, loaded in one session
into plain data (the template never touches the database)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ivr.db.models import (
    Account,
    CallAttempt,
    CallbackTask,
    DebtCase,
    PhoneNumber,
    Promise,
    Reason,
    User,
)
from ivr.logsetup import mask_phone
from ivr.web.call_hours import call_hours


def reason_label(reason: Reason | None, lang: str) -> str:
    if reason is None:
        return ""
    labels = reason.labels or {}
    return labels.get(lang) or labels.get("ru") or next(iter(labels.values()), reason.code)


def account_zone(account: Account, default_tz: str) -> ZoneInfo:
    """The subscriber's zone, decided exactly as the dialer decides it (account's zone, else the
    first phone number's, else the default); the default when the account's zone is unknown."""
    from ivr.dialer.windows import resolve_timezone

    first_phone = account.phones[0].number if account.phones else None
    name = resolve_timezone(account.timezone, first_phone, default_tz) or default_tz
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default_tz)


@dataclass(frozen=True)
class PhoneView:
    id: int
    masked: str
    priority: int
    status: str


@dataclass(frozen=True)
class StepView:
    seq: int
    step: str
    keys: str
    result: str
    detail: str


@dataclass(frozen=True)
class AttemptView:
    id: int
    created_at: dt.datetime
    phone: str  # masked
    stage_code: str
    purpose: str
    state: str
    result: str
    duration_s: float | Decimal | None
    steps: list[StepView]
    identity: str = ""
    outcome_kind: str = ""
    promise_date: dt.date | None = None
    paid_claim: bool = False
    reason: str = ""
    override_reason: str = ""  # click-to-call placed outside the subscriber's hours, and why


@dataclass(frozen=True)
class PromiseView:
    promised_date: dt.date
    source: str
    status: str
    amount: Decimal | None
    created_at: dt.datetime


@dataclass(frozen=True)
class TaskView:
    id: int
    queue: str
    state: str
    result: str
    note: str
    next_action: str
    created_at: dt.datetime
    done_at: dt.datetime | None
    claimed_by: str
    reason: str
    promise_date: dt.date | None


@dataclass
class Card:
    task: TaskView
    task_priority: int
    task_due_at: dt.datetime
    task_claimed_by_id: int | None
    account_id: int
    external_id: str
    holder_name: str
    service_name: str
    tariff: str
    balance: Decimal
    currency: str
    due_date: dt.date | None
    block_date: dt.date | None
    zone: str
    local_now: dt.datetime
    language: str
    phones: list[PhoneView]
    case_id: int | None
    case_state: str
    case_stage: str
    amount_owed: Decimal | None
    attempts: list[AttemptView] = field(default_factory=list)
    promises: list[PromiseView] = field(default_factory=list)
    earlier_tasks: list[TaskView] = field(default_factory=list)
    default_phone_id: int | None = None
    call_allowed: bool = False  # inside the subscriber's call hours now (fails closed)
    call_next_open: dt.datetime | None = None  # subscriber's local time


def _task_view(task: CallbackTask, users: dict[int, str], lang: str) -> TaskView:
    return TaskView(
        id=task.id, queue=task.queue, state=task.state, result=task.result or "", note=task.result_note or "",
        next_action=task.next_action or "", created_at=task.created_at, done_at=task.done_at,
        claimed_by=users.get(task.claimed_by, "") if task.claimed_by else "",
        reason=reason_label(task.reason, lang), promise_date=task.promise_date,
    )


def load_card(session: Session, task_id: int, now: dt.datetime, lang: str, default_tz: str) -> Card | None:
    task = session.get(CallbackTask, task_id)
    if task is None:
        return None
    account = session.scalar(
        select(Account).where(Account.id == task.account_id).options(selectinload(Account.phones))
    )
    assert account is not None
    users = {u.id: u.username for u in session.scalars(select(User))}
    zone = account_zone(account, default_tz)
    case_row = session.get(DebtCase, task.debt_case_id) if task.debt_case_id else session.scalar(
        select(DebtCase).where(DebtCase.account_id == account.id).order_by(DebtCase.id.desc()).limit(1)
    )
    attempts = session.scalars(
        select(CallAttempt)
        .where(CallAttempt.account_id == account.id)
        .options(selectinload(CallAttempt.steps), selectinload(CallAttempt.outcome))
        .order_by(CallAttempt.created_at.desc(), CallAttempt.id.desc())
    ).all()
    attempt_views = []
    for a in attempts:
        outcome = a.outcome
        attempt_views.append(AttemptView(
            id=a.id, created_at=a.created_at, phone=mask_phone(a.phone), stage_code=a.stage_code or "",
            purpose=a.purpose, state=a.state, result=a.result or "", duration_s=a.duration_s,
            steps=[StepView(s.seq, s.step, s.keys, s.result, s.detail) for s in a.steps],
            identity=outcome.identity if outcome else "", outcome_kind=(outcome.kind or "") if outcome else "",
            promise_date=outcome.promise_date if outcome else None,
            paid_claim=bool(outcome.paid_claim) if outcome else False,
            reason=reason_label(outcome.reason, lang) if outcome else "",
            override_reason=a.override_reason or "",
        ))
    case_ids = [c for c in session.scalars(select(DebtCase.id).where(DebtCase.account_id == account.id))]
    promises = session.scalars(
        select(Promise).where(Promise.debt_case_id.in_(case_ids)).order_by(Promise.created_at.desc())
    ).all() if case_ids else []
    earlier = session.scalars(
        select(CallbackTask)
        .where(CallbackTask.account_id == account.id, CallbackTask.id != task.id)
        .order_by(CallbackTask.created_at.desc())
    ).all()
    default_phone = None
    if task.attempt_id is not None:
        attempt = session.get(CallAttempt, task.attempt_id)
        default_phone = attempt.phone_number_id if attempt else None
    if default_phone is None and account.phones:
        default_phone = account.phones[0].id
    hours = call_hours(session, account, case_row, account.phones[0].number if account.phones else None, now,
                       default_tz)
    return Card(
        task=_task_view(task, users, lang), task_priority=task.priority, task_due_at=task.due_at,
        task_claimed_by_id=task.claimed_by,
        account_id=account.id, external_id=account.external_id, holder_name=account.holder_name,
        service_name=account.service_name, tariff=account.tariff, balance=account.balance,
        currency=account.currency, due_date=account.due_date, block_date=account.block_date,
        zone=zone.key, local_now=now.astimezone(zone), language=account.language,
        phones=[PhoneView(p.id, mask_phone(p.number), p.priority, p.status) for p in account.phones],
        case_id=case_row.id if case_row else None, case_state=case_row.state if case_row else "",
        case_stage=(case_row.stage_code or "") if case_row else "",
        amount_owed=case_row.amount_owed if case_row else None,
        attempts=attempt_views,
        promises=[PromiseView(p.promised_date, p.source, p.status, p.amount, p.created_at) for p in promises],
        earlier_tasks=[_task_view(t, users, lang) for t in earlier],
        default_phone_id=default_phone,
        call_allowed=hours.allowed, call_next_open=hours.next_open_local,
    )


def phone_for_call(session: Session, account_id: int, phone_id: int) -> PhoneNumber | None:
    phone = session.get(PhoneNumber, phone_id)
    return phone if phone is not None and phone.account_id == account_id else None
