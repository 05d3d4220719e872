"""The operator's list of open callback tasks: filters, search, sort and paging with the total,
and for each row the subscriber's local time and whether a call is allowed now (the dialer's own
window rules, so the operator sees what the robot would see)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session, selectinload

from ivr.db.models import Account, CallbackTask, DebtCase, LadderStage, Reason, TaskState
from ivr.dialer.policy import Rules, load_rules
from ivr.dialer.windows import holiday_checker, is_callable, stage_window_open
from ivr.web.card import account_zone, reason_label
from ivr.web.labels import stage_name
from ivr.web.search import search_conditions
from ivr.web.tasks import naive_utc

log = logging.getLogger(__name__)

PAGE_SIZE = 50
# age filter: the task has waited at least this long since it was raised
AGES: dict[str, dt.timedelta] = {
    "1h": dt.timedelta(hours=1), "4h": dt.timedelta(hours=4), "1d": dt.timedelta(days=1),
    "3d": dt.timedelta(days=3), "7d": dt.timedelta(days=7),
}
SORTS = ("priority", "due", "due_desc", "amount_desc", "amount", "age")
DEFAULT_PROFILE = "default"


@dataclass(frozen=True)
class TaskFilter:
    queue: str = ""
    reason: str = ""  # reason code
    stage: str = ""  # ladder stage code of the task's case
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    age: str = ""  # a key of AGES
    overdue: bool = False  # the due time has passed
    q: str = ""  # account number, name part or phone, as in the subscriber search
    sort: str = "priority"
    page: int = 1


def _decimal(raw: str) -> Decimal | None:
    try:
        value = Decimal(raw.replace(",", ".").replace(" ", "")) if raw.strip() else None
    except InvalidOperation:
        return None
    return value if value is not None and value.is_finite() else None


def parse_filter(params: Mapping[str, str]) -> TaskFilter:
    """The filter a query string asks for; unknown or malformed values are ignored (a bookmark
    with a stale value still opens the list)."""
    def get(key: str) -> str:
        return (params.get(key) or "").strip()

    try:
        page = max(1, int(get("page") or "1"))
    except ValueError:
        page = 1
    return TaskFilter(
        queue=get("queue"), reason=get("reason"), stage=get("stage"),
        amount_min=_decimal(get("amount_min")), amount_max=_decimal(get("amount_max")),
        age=get("age") if get("age") in AGES else "", overdue=get("overdue") in ("1", "on", "true"),
        q=get("q")[:100], sort=get("sort") if get("sort") in SORTS else "priority", page=page,
    )


def filter_query(f: TaskFilter, **changes: Any) -> dict[str, str]:
    """The query-string parameters of `f` (with `changes`), for links to other pages and sorts."""
    f = replace(f, **changes)
    out = {"queue": f.queue, "reason": f.reason, "stage": f.stage, "age": f.age, "q": f.q,
           "amount_min": "" if f.amount_min is None else str(f.amount_min),
           "amount_max": "" if f.amount_max is None else str(f.amount_max),
           "overdue": "1" if f.overdue else "", "sort": "" if f.sort == "priority" else f.sort,
           "page": "" if f.page == 1 else str(f.page)}
    return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class TaskRow:
    id: int
    queue: str
    account_id: int
    holder: str
    external_id: str
    reason: str
    stage: str
    amount: Decimal | None
    currency: str
    priority: int
    due_at: dt.datetime
    created_at: dt.datetime
    local_time: dt.datetime
    zone: str
    callable_now: bool


@dataclass(frozen=True)
class TaskPage:
    rows: list[TaskRow]
    total: int
    page: int
    pages: int


def _conditions(session: Session, f: TaskFilter, scope: Sequence[str] | None, now_n: dt.datetime) -> list[Any]:
    where: list[Any] = [CallbackTask.state == TaskState.OPEN.value]
    if scope:
        where.append(CallbackTask.queue.in_(list(scope)))
    if f.queue:
        where.append(CallbackTask.queue == f.queue)
    if f.reason:
        where.append(Reason.code == f.reason)
    if f.stage:
        where.append(DebtCase.stage_code == f.stage)
    if f.amount_min is not None:
        where.append(DebtCase.amount_owed >= f.amount_min)
    if f.amount_max is not None:
        where.append(DebtCase.amount_owed <= f.amount_max)
    if f.age:
        where.append(CallbackTask.created_at <= now_n - AGES[f.age])
    if f.overdue:
        where.append(CallbackTask.due_at < now_n)
    if f.q:
        found: list[ColumnElement[bool]] = search_conditions(session, f.q)
        if found:
            where.append(or_(*found))
    return where


def _order(sort: str) -> list[Any]:
    orders: dict[str, list[Any]] = {
        "priority": [CallbackTask.priority, CallbackTask.due_at],
        "due": [CallbackTask.due_at],
        "due_desc": [CallbackTask.due_at.desc()],
        "amount_desc": [DebtCase.amount_owed.is_(None), DebtCase.amount_owed.desc()],
        "amount": [DebtCase.amount_owed.is_(None), DebtCase.amount_owed],
        "age": [CallbackTask.created_at],
    }
    return [*orders[sort], CallbackTask.id]


def callable_now(rules: Rules, stage_code: str | None, zone_name: str, country: str, now: dt.datetime) -> bool:
    """May this subscriber be called now? The case's stage window when it has a stage, else the
    default window profile; fails closed like the dialer."""
    stage = rules.stage(stage_code)
    if stage is not None:
        return stage_window_open(rules, stage, zone_name, country, now)
    local = now.astimezone(ZoneInfo(zone_name))
    return is_callable(local, rules.profile(DEFAULT_PROFILE), holiday_checker(country), rules.options.holiday_policy,
                       legal=rules.legal)


def list_open_tasks(session: Session, f: TaskFilter, scope: Sequence[str] | None, now: dt.datetime,
                    lang: str, default_tz: str, page_size: int = PAGE_SIZE) -> TaskPage:
    now_n = naive_utc(now)
    base = (
        select(CallbackTask, DebtCase.stage_code, DebtCase.amount_owed, DebtCase.currency)
        .join(Account, Account.id == CallbackTask.account_id)
        .outerjoin(DebtCase, DebtCase.id == CallbackTask.debt_case_id)
        .outerjoin(Reason, Reason.id == CallbackTask.reason_id)
        .where(*_conditions(session, f, scope, now_n))
    )
    total = int(session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    pages = max(1, -(-total // page_size))
    page = min(f.page, pages)
    rows = session.execute(
        base.options(selectinload(CallbackTask.account).selectinload(Account.phones), selectinload(CallbackTask.reason))
        .order_by(*_order(f.sort)).offset((page - 1) * page_size).limit(page_size)
    ).all()
    rules = load_rules(session, default_tz)
    out = []
    for task, stage_code, amount, currency in rows:
        account = task.account
        zone = account_zone(account, default_tz)
        out.append(TaskRow(
            id=task.id, queue=task.queue, account_id=account.id, holder=account.holder_name,
            external_id=account.external_id, reason=reason_label(task.reason, lang), stage=stage_code or "",
            amount=amount, currency=currency or account.currency, priority=task.priority, due_at=task.due_at,
            created_at=task.created_at, local_time=now.astimezone(zone), zone=zone.key,
            callable_now=callable_now(rules, stage_code, zone.key, account.country, now),
        ))
    return TaskPage(out, total, page, pages)


def filter_choices(session: Session, lang: str) -> dict[str, list[tuple[str, str]]]:
    """The values the reason and stage filters offer."""
    reasons = [(r.code, reason_label(r, lang)) for r in session.scalars(select(Reason).order_by(Reason.position, Reason.id))]
    stages = [(s.code, stage_name(lang, s.code, s.name))
              for s in session.scalars(select(LadderStage).order_by(LadderStage.position))]
    return {"reasons": reasons, "stages": stages}
