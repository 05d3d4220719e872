"""Helpers for the dialer tests: populations of accounts/cases and hand-made Rules."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from sqlalchemy.orm import Session

from ivr.db.models import Account, DebtCase, PhoneNumber
from ivr.dialer.policy import Limit, Options, Rules, Stage, Window

UTC = dt.UTC
_ids = itertools.count(1)


def t(hh: int, mm: int = 0) -> dt.time:
    return dt.time(hh, mm)


def windows(days: Mapping[int, Sequence[tuple[int, int]]], profile: str = "default") -> Any:
    return MappingProxyType({
        profile: MappingProxyType({d: tuple(Window(t(a), t(b % 24)) for a, b in spans) for d, spans in days.items()})
    })


ALL_WEEK_9_20 = {d: [(9, 20)] for d in range(7)}
STAGE = Stage(code="reminder", position=1, anchor="due", start_day=1, prompt="debt_soft",
              max_attempts=3, retry_minutes=240, on_end="next")


def make_rules(
    *,
    days: Mapping[int, Sequence[tuple[int, int]]] | None = None,
    limits: Iterable[Limit] = (),
    stages: Sequence[Stage] = (STAGE,),
    holiday_policy: str = "as_weekend",
    default_timezone: str = "Europe/Moscow",
    **options: Any,
) -> Rules:
    return Rules(
        stages=tuple(stages),
        windows=windows(days if days is not None else ALL_WEEK_9_20),
        limits=tuple(limits),
        options=Options(holiday_policy=holiday_policy, **options),
        default_timezone=default_timezone,
    )


def add_case(
    session: Session,
    *,
    tz: str | None = "Europe/Moscow",
    phones: Sequence[str] | None = None,
    country: str = "RU",
    stage_code: str | None = "reminder",
    state: str = "active",
    owed: str = "1500.00",
    opened_on: dt.date = dt.date(2026, 3, 1),
    block_date: dt.date | None = dt.date(2026, 3, 20),
    next_attempt_at: dt.datetime | None = None,
    attempts_in_stage: int = 0,
    language: str = "ru",
) -> DebtCase:
    n = next(_ids)
    account = Account(
        external_id=f"A{n:07d}", holder_name=f"Holder {n}", balance=Decimal(owed), timezone=tz,
        country=country, language=language, block_date=block_date,
    )
    numbers = phones if phones is not None else [f"+7916{n:07d}"]
    for priority, number in enumerate(numbers, start=1):
        account.phones.append(PhoneNumber(number=number, priority=priority))
    case = DebtCase(
        account=account, opened_on=opened_on, amount_initial=Decimal(owed), amount_owed=Decimal(owed),
        state=state, stage_code=stage_code, attempts_in_stage=attempts_in_stage,
        next_attempt_at=next_attempt_at.astimezone(UTC).replace(tzinfo=None) if next_attempt_at else None,
    )
    session.add(case)
    session.flush()
    return case
