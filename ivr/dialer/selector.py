"""Who may be called now.

`select_candidates` runs one indexed query for due cases (debt_cases(state, next_attempt_at)),
fetching a bounded window of `fetch_factor * limit` rows, then applies the pure checks to that
batch with one grouped query each for phones, phone opt-outs and attempt histories. Cases that
fail only on time (window closed, contact limit reached) get `next_attempt_at` moved to the
moment they can be called again, in one bulk UPDATE, so they do not clog the head of the queue.
The caller commits (or rolls back) the session.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, exists, or_, select, update
from sqlalchemy.orm import Session

from ivr.db.models import (
    Account,
    AttemptResult,
    AttemptState,
    CallAttempt,
    CaseState,
    DebtCase,
    OptOut,
    PhoneNumber,
)
from ivr.dialer.limits import HISTORY_LOOKBACK, limits_reopen_at
from ivr.dialer.policy import Rules
from ivr.dialer.retry import FAULT_RESULTS, PhoneOption, pick_phone
from ivr.dialer.windows import (
    naive_utc,
    resolve_timezone,
    stage_next_window,
    stage_window_open,
    to_utc,
)
from ivr.logsetup import mask_phone

log = logging.getLogger(__name__)

IN_FLIGHT = (AttemptState.CLAIMED.value, AttemptState.DIALING.value, AttemptState.ANSWERED.value)
# Results that count as "answered" for contact limits: a person or their machine picked up.
# A wrong party is not the debtor, so it counts as an attempt only.
ANSWERED_RESULTS = frozenset({AttemptResult.ANSWERED.value, AttemptResult.MACHINE.value})
RECHECK_LATER = dt.timedelta(minutes=15)  # stage not set yet / exhausted: the ladder tick decides
NOT_CALLABLE_RECHECK = dt.timedelta(days=1)  # no usable phone, bad time zone, no window in 14 days


@dataclass(frozen=True)
class Candidate:
    case_id: int
    account_id: int
    phone_id: int
    phone: str  # E.164 with '+'
    phone_priority: int
    stage_code: str
    language: str
    timezone: str
    country: str


@dataclass
class SelectionStats:
    fetched: int = 0
    selected: int = 0
    outside_window: int = 0
    over_limit: int = 0
    no_phone: int = 0
    no_stage: int = 0
    bad_timezone: int = 0
    duplicate_account: int = 0
    bumped: int = 0
    not_callable_case_ids: list[int] = field(default_factory=list)


def count_history_row(state: str, result: str | None) -> tuple[bool, bool]:
    """(counts at all, counts as answered) for one attempt row, conservatively."""
    if result in FAULT_RESULTS:
        # never originated, refused by Asterisk, or spoiled by our side (Asterisk restarted, the
        # robot was down): not a contact with the subscriber (issue 15)
        return False, False
    if state in IN_FLIGHT or state == AttemptState.UNKNOWN.value or result is None:
        return True, True  # may be answered (in flight, or lost)
    return True, result in ANSWERED_RESULTS


def load_histories(
    session: Session, account_ids: Collection[int], now: dt.datetime
) -> dict[int, list[tuple[dt.datetime, bool]]]:
    """Attempt history per account for the contact limits (one query for the batch)."""
    histories: dict[int, list[tuple[dt.datetime, bool]]] = defaultdict(list)
    if not account_ids:
        return histories
    since = naive_utc(now - HISTORY_LOOKBACK)
    rows = session.execute(
        select(CallAttempt.account_id, CallAttempt.created_at, CallAttempt.originated_at, CallAttempt.state, CallAttempt.result)
        .where(CallAttempt.account_id.in_(account_ids), CallAttempt.created_at >= since)
    )
    for account_id, created_at, originated_at, state, result in rows:
        counts, answered = count_history_row(state, result)
        if counts:
            histories[account_id].append((originated_at or created_at, answered))
    return histories


def load_phones(session: Session, account_ids: Collection[int]) -> dict[int, list[PhoneOption]]:
    phones: dict[int, list[PhoneOption]] = defaultdict(list)
    if not account_ids:
        return phones
    for row in session.execute(
        select(PhoneNumber.id, PhoneNumber.account_id, PhoneNumber.number, PhoneNumber.priority, PhoneNumber.status)
        .where(PhoneNumber.account_id.in_(account_ids))
    ):
        phones[row.account_id].append(PhoneOption(row.id, row.number, row.priority, row.status))
    return phones


def opted_out_numbers(session: Session, numbers: Iterable[str]) -> set[str]:
    wanted = set(numbers)
    if not wanted:
        return set()
    return set(session.scalars(select(OptOut.phone).where(OptOut.phone.in_(wanted))))


def _due_rows(session: Session, now_naive: dt.datetime, window: int) -> Sequence[Any]:
    """Active, owed, unlocked, not opted-out cases, due first. Two index range scans (new cases
    with no next_attempt_at, then due ones in time order) so both databases use the index."""
    base = (
        select(
            DebtCase.id, DebtCase.account_id, DebtCase.stage_code, DebtCase.attempts_in_stage,
            DebtCase.next_attempt_at, DebtCase.next_phone_priority,
            Account.timezone, Account.country, Account.language,
        )
        .join(Account, Account.id == DebtCase.account_id)
        .where(
            DebtCase.state == CaseState.ACTIVE.value,
            DebtCase.amount_owed > 0,
            or_(Account.dial_lock_owner.is_(None), Account.dial_lock_until < now_naive),
            ~exists().where(OptOut.account_id == DebtCase.account_id),
        )
    )
    fresh = session.execute(base.where(DebtCase.next_attempt_at.is_(None)).order_by(DebtCase.id).limit(window)).all()
    if len(fresh) >= window:
        return fresh
    due = session.execute(
        base.where(DebtCase.next_attempt_at <= now_naive).order_by(DebtCase.next_attempt_at, DebtCase.id).limit(window - len(fresh))
    ).all()
    return [*fresh, *due]


def select_candidates(
    session: Session,
    rules: Rules,
    now_utc: dt.datetime,
    limit: int,
    *,
    fetch_factor: int = 3,
    stats: SelectionStats | None = None,
) -> list[Candidate]:
    """Up to `limit` cases that may be called now, most overdue first.

    Every candidate is inside its stage's window in the subscriber's local time, under every
    contact limit, not opted out (account or number), not locked, active and owed > 0, with a
    usable number. Claims re-check all of it atomically before dialing.
    """
    stats = stats if stats is not None else SelectionStats()
    if limit <= 0:
        return []
    now = to_utc(now_utc)
    now_naive = naive_utc(now)
    rows = _due_rows(session, now_naive, max(limit, limit * fetch_factor))
    stats.fetched = len(rows)
    seen: set[int] = set()
    unique = []
    for row in rows:
        if row.account_id in seen:  # one case per person per batch: one call in flight per person
            stats.duplicate_account += 1
            continue
        seen.add(row.account_id)
        unique.append(row)
    phones = load_phones(session, seen)
    opted = opted_out_numbers(session, (p.number for ps in phones.values() for p in ps))
    histories = load_histories(session, seen, now)

    selected: list[Candidate] = []
    bumps: list[dict[str, Any]] = []

    def bump(case_id: int, when: dt.datetime) -> None:
        bumps.append({"b_id": case_id, "b_next": naive_utc(max(when, now + dt.timedelta(seconds=1)))})

    for row in unique:
        if len(selected) >= limit:
            break  # the rest stays due; it is looked at (and bumped if need be) next pass
        stage = rules.stage(row.stage_code)
        if stage is None or row.attempts_in_stage >= stage.max_attempts:
            stats.no_stage += 1
            bump(row.id, now + RECHECK_LATER)
            continue
        phone = pick_phone(phones.get(row.account_id, ()), row.next_phone_priority, opted)
        if phone is None:
            stats.no_phone += 1
            stats.not_callable_case_ids.append(row.id)
            log.info("case %s has no usable phone number: not callable", row.id)  # warned once when the last number failed
            bump(row.id, now + NOT_CALLABLE_RECHECK)
            continue
        tz = resolve_timezone(row.timezone, phone.number, rules.default_timezone)
        if tz is None:
            stats.bad_timezone += 1
            stats.not_callable_case_ids.append(row.id)
            log.error("case %s: unknown time zone %r: not callable", row.id, row.timezone)
            bump(row.id, now + NOT_CALLABLE_RECHECK)
            continue
        country = row.country or "RU"
        reopen = limits_reopen_at(histories.get(row.account_id, ()), rules.limits, now, tz)
        if reopen is None or reopen > now:
            stats.over_limit += 1
            start = reopen if reopen is not None else now + NOT_CALLABLE_RECHECK
            bump(row.id, stage_next_window(rules, stage, tz, country, start) or start + NOT_CALLABLE_RECHECK)
            continue
        if not stage_window_open(rules, stage, tz, country, now):
            stats.outside_window += 1
            bump(row.id, stage_next_window(rules, stage, tz, country, now) or now + NOT_CALLABLE_RECHECK)
            continue
        selected.append(Candidate(
            case_id=row.id, account_id=row.account_id, phone_id=phone.id, phone=phone.number,
            phone_priority=phone.priority, stage_code=stage.code, language=row.language or "ru",
            timezone=tz, country=country,
        ))
    if bumps:
        table = cast(Table, DebtCase.__table__)
        session.execute(
            update(table)
            .where(
                and_(
                    table.c.id == bindparam("b_id"),
                    table.c.state == CaseState.ACTIVE.value,
                    or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= now_naive),
                )
            )
            .values(next_attempt_at=bindparam("b_next")),
            bumps,
        )
        stats.bumped = len(bumps)
    stats.selected = len(selected)
    if selected:
        log.debug("selected %d of %d fetched (first %s)", len(selected), len(rows), mask_phone(selected[0].phone))
    return selected
