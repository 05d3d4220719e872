"""Who may be called now.

`select_candidates` runs one indexed query for due cases (debt_cases(state, next_attempt_at)),
fetching a bounded window of `fetch_factor * limit` rows, then applies the pure checks to that
batch with one grouped query each for phones, phone opt-outs and attempt histories. Cases that
fail only on time (window closed, contact limit reached) get `next_attempt_at` moved to the
moment they can be called again, in one bulk UPDATE, so they do not clog the head of the queue.
The caller commits (or rolls back) the session.

The dial path depends on no other job: every due row first gets the escalation ladder's
decision for today (`ladder.decide`, applied with the ladder's own compare-and-set), so a case
that was just imported, whose next stage starts today, whose stage ran out of attempts or whose
promise has passed is staged, moved or resumed in the same pass that may call it. The periodic
ladder sweep still runs for what is not due (lifecycle, block list), but calling never waits
for it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

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
from ivr.dialer.ladder import CaseView, Decision, apply_decision, decide, pending_promises
from ivr.dialer.limits import HISTORY_LOOKBACK, History, limits_reopen_at
from ivr.dialer.policy import Rules, Stage
from ivr.dialer.retry import FAULT_RESULTS, PhoneOption, pick_phone
from ivr.dialer.windows import (
    local_midnight_utc,
    naive_utc,
    resolve_timezone,
    stage_next_window,
    stage_window_open,
    to_utc,
    zone,
)
from ivr.logsetup import mask_phone

log = logging.getLogger(__name__)

LADDER_STATES = (CaseState.ACTIVE.value, CaseState.PROMISED.value)
IN_FLIGHT = (AttemptState.CLAIMED.value, AttemptState.DIALING.value, AttemptState.ANSWERED.value)
# Results that count as "answered" for contact limits: a person or their machine picked up.
# A wrong party is not the debtor, so it counts as an attempt only.
ANSWERED_RESULTS = frozenset({AttemptResult.ANSWERED.value, AttemptResult.MACHINE.value})
RECHECK_LATER = dt.timedelta(minutes=15)  # the ladder found no stage and no date to wait for
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
    purpose: str = "robot"  # robot | thanks (issue 16: ivr.dialer.thanks_store)


@dataclass
class SelectionStats:
    fetched: int = 0
    selected: int = 0
    outside_window: int = 0
    over_limit: int = 0
    no_phone: int = 0
    no_stage: int = 0
    waiting_stage: int = 0  # the ladder put it to wait for a later stage date
    not_active: int = 0  # the ladder's decision today took it off the robot (or it is promised)
    conflicts: int = 0  # another process changed the case first; looked at again next pass
    bad_timezone: int = 0
    duplicate_account: int = 0
    bumped: int = 0
    paused: int = 0  # issue 13: on a stage an admin paused; left due, not bumped
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


def open_case_rows() -> Any:
    """The columns the ladder and the checks need, for open cases (active or promised, owed)."""
    return (
        select(
            DebtCase.id, DebtCase.account_id, DebtCase.state, DebtCase.opened_on, DebtCase.amount_owed,
            DebtCase.stage_code, DebtCase.attempts_in_stage, DebtCase.next_attempt_at,
            DebtCase.next_phone_priority, DebtCase.promise_broken,
            Account.timezone, Account.country, Account.language, Account.block_date,
        )
        .join(Account, Account.id == DebtCase.account_id)
        .where(DebtCase.state.in_(LADDER_STATES), DebtCase.amount_owed > 0)
    )


def _due_rows(session: Session, now_naive: dt.datetime, window: int,
              paused_stages: Collection[str] = ()) -> Sequence[Any]:
    """Active or promised, owed, unlocked, not opted-out cases, due first. Two index range scans
    (new cases with no next_attempt_at, then due ones in time order) so both databases use the
    index. Promised cases come back when their promise may have passed (next_attempt_at is set
    to that moment), so the ladder's decision for them is made here too."""
    base = (
        open_case_rows()
        .where(
            or_(Account.dial_lock_owner.is_(None), Account.dial_lock_until < now_naive),
            ~exists().where(OptOut.account_id == DebtCase.account_id),
        )
    )
    if paused_stages:  # issue 13: a paused stage's cases stay due without clogging the batch
        base = base.where(or_(DebtCase.stage_code.is_(None), DebtCase.stage_code.not_in(list(paused_stages))))
    fresh = session.execute(base.where(DebtCase.next_attempt_at.is_(None)).order_by(DebtCase.id).limit(window)).all()
    if len(fresh) >= window:
        return fresh
    due = session.execute(
        base.where(DebtCase.next_attempt_at <= now_naive).order_by(DebtCase.next_attempt_at, DebtCase.id).limit(window - len(fresh))
    ).all()
    return [*fresh, *due]


def first_number(options: Sequence[PhoneOption]) -> str | None:
    """The account's first-priority number (any status): the ladder dates its zone by it."""
    return min(options, key=lambda p: (p.priority, p.id)).number if options else None


@dataclass(frozen=True)
class Staged:
    """A due row after the ladder's decision for today."""

    state: str
    stage_code: str | None
    attempts_in_stage: int
    next_attempt_at: dt.datetime | None  # naive UTC
    next_phone_priority: int | None


def ladder_today(
    row: Any, rules: Rules, now: dt.datetime, promise_date: dt.date | None, first_phone: str | None
) -> tuple[CaseView, Decision, ZoneInfo]:
    """The ladder's decision for one due row today (pure): the zone is the account's, else its
    first number's, else the default, as the ladder tick resolves it."""
    name = resolve_timezone(row.timezone, first_phone, rules.default_timezone)
    # The ladder's dates need some zone even when calling is impossible (the window check
    # fails closed on an unknown zone).
    tz = (zone(name) if name else None) or zone(rules.default_timezone) or ZoneInfo("UTC")
    view = CaseView(
        state=row.state, opened_on=row.opened_on, amount_owed=Decimal(row.amount_owed), block_date=row.block_date,
        stage_code=row.stage_code, attempts_in_stage=row.attempts_in_stage, next_attempt_at=row.next_attempt_at,
        pending_promise_date=promise_date, promise_broken=bool(row.promise_broken),
    )
    return view, decide(view, rules, to_utc(now).astimezone(tz).date(), tz), tz


def promise_wake(promise_date: dt.date, tz: ZoneInfo) -> dt.datetime:
    """Naive UTC moment a pending promise has passed in the subscriber's zone."""
    return naive_utc(local_midnight_utc(promise_date + dt.timedelta(days=1), tz))


def staged_view(row: Any, decision: Decision, promise_date: dt.date | None, tz: ZoneInfo) -> Staged:
    if decision.state == CaseState.PROMISED.value and promise_date is not None:
        return Staged(decision.state, decision.stage_code, decision.attempts_in_stage, promise_wake(promise_date, tz),
                      row.next_phone_priority)
    priority = decision.next_phone_priority if decision.next_phone_priority is not None else row.next_phone_priority
    return Staged(decision.state, decision.stage_code, decision.attempts_in_stage, decision.next_attempt_at, priority)


def stage_row(
    session: Session, row: Any, rules: Rules, now: dt.datetime, promise_date: dt.date | None,
    first_phone: str | None,
) -> Staged | None:
    """Apply the ladder's decision for today to one due row (compare-and-set); None when another
    process changed the case meanwhile (it is looked at again next pass)."""
    view, decision, tz = ladder_today(row, rules, now, promise_date, first_phone)
    staged = staged_view(row, decision, promise_date, tz)
    if decision.state == CaseState.PROMISED.value and promise_date is not None:
        # still paused: come back when the promised date has passed in the subscriber's zone
        if row.next_attempt_at != staged.next_attempt_at:
            session.execute(
                update(DebtCase).where(DebtCase.id == row.id, DebtCase.state == CaseState.PROMISED.value)
                .values(next_attempt_at=staged.next_attempt_at, wait_reason=PROMISED_WAIT)
                .execution_options(synchronize_session=False)
            )
        return staged
    if decision.changed and not apply_decision(session, row.id, row.account_id, view, decision, now):
        return None
    return staged


@dataclass(frozen=True)
class Verdict:
    """Whether a staged case may be called now and, if not, why and until when (UTC)."""

    kind: str  # see the VERDICT_* names
    until: dt.datetime | None = None
    phone: PhoneOption | None = None
    timezone: str | None = None
    country: str = "RU"
    stage: Stage | None = None


CALLABLE = "callable"
NOT_ACTIVE = "not_active"
WAITING_STAGE = "waiting_stage"
NO_STAGE = "no_stage"
NO_PHONE = "no_phone"
BAD_TIMEZONE = "bad_timezone"
OVER_LIMIT = "over_limit"
OUTSIDE_WINDOW = "outside_window"
PROMISED_WAIT = "promised"


def assess(
    row: Any, staged: Staged, options: Sequence[PhoneOption], opted: Collection[str],
    history: History, rules: Rules, now: dt.datetime,
) -> Verdict:
    """May this staged case be called now (pure)? The checks in the order the dialer applies
    them; every "no" says until when, so the caller can move the case out of the queue head."""
    now_naive = naive_utc(now)
    if staged.state != CaseState.ACTIVE.value:
        return Verdict(NOT_ACTIVE, staged.next_attempt_at)
    if staged.next_attempt_at is not None and staged.next_attempt_at > now_naive:
        return Verdict(WAITING_STAGE, staged.next_attempt_at.replace(tzinfo=dt.UTC))
    stage = rules.stage(staged.stage_code)
    if stage is None or staged.attempts_in_stage >= stage.max_attempts:
        return Verdict(NO_STAGE, now + RECHECK_LATER)
    phone = pick_phone(options, staged.next_phone_priority or 1, opted)
    if phone is None:
        return Verdict(NO_PHONE, now + NOT_CALLABLE_RECHECK, stage=stage)
    tz = resolve_timezone(row.timezone, phone.number, rules.default_timezone)
    if tz is None:
        return Verdict(BAD_TIMEZONE, now + NOT_CALLABLE_RECHECK, phone=phone, stage=stage)
    country = row.country or "RU"
    reopen = limits_reopen_at(history, rules.limits, now, tz)
    if reopen is None or reopen > now:
        start = reopen if reopen is not None else now + NOT_CALLABLE_RECHECK
        until = stage_next_window(rules, stage, tz, country, start) or start + NOT_CALLABLE_RECHECK
        return Verdict(OVER_LIMIT, until, phone, tz, country, stage)
    if not stage_window_open(rules, stage, tz, country, now):
        until = stage_next_window(rules, stage, tz, country, now) or now + NOT_CALLABLE_RECHECK
        return Verdict(OUTSIDE_WINDOW, until, phone, tz, country, stage)
    return Verdict(CALLABLE, None, phone, tz, country, stage)


def select_candidates(
    session: Session,
    rules: Rules,
    now_utc: dt.datetime,
    limit: int,
    *,
    fetch_factor: int = 3,
    stats: SelectionStats | None = None,
    paused_stages: Collection[str] = (),
) -> list[Candidate]:
    """Up to `limit` cases that may be called now, most overdue first.

    Every candidate is on the stage the ladder gives it today, inside that stage's window in the
    subscriber's local time, under every contact limit, not opted out (account or number), not
    locked, active and owed > 0, with a usable number. Claims re-check all of it atomically
    before dialing. Cases on a stage in `paused_stages` (issue 13: an admin paused it) are
    neither selected nor bumped: they simply stay due until the stage is resumed.
    """
    stats = stats if stats is not None else SelectionStats()
    if limit <= 0:
        return []
    now = to_utc(now_utc)
    now_naive = naive_utc(now)
    rows = _due_rows(session, now_naive, max(limit, limit * fetch_factor), paused_stages)
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
    promises = pending_promises(session, [r.id for r in unique if r.state == CaseState.PROMISED.value])

    selected: list[Candidate] = []
    bumps: list[dict[str, Any]] = []

    def bump(case_id: int, when: dt.datetime, reason: str) -> None:
        bumps.append({"b_id": case_id, "b_next": naive_utc(max(when, now + dt.timedelta(seconds=1))),
                      "b_reason": reason})

    for row in unique:
        if len(selected) >= limit:
            break  # the rest stays due; it is looked at (and bumped if need be) next pass
        options = phones.get(row.account_id, ())
        staged = stage_row(session, row, rules, now, promises.get(row.id), first_number(options))
        if staged is None:
            stats.conflicts += 1
            continue
        if staged.stage_code in paused_stages and staged.state == CaseState.ACTIVE.value:
            stats.paused += 1  # issue 13: staged today onto a paused stage; stays due
            continue
        verdict = assess(row, staged, options, opted, histories.get(row.account_id, ()), rules, now)
        if verdict.kind == CALLABLE:
            assert verdict.phone is not None and verdict.stage is not None and verdict.timezone is not None
            selected.append(Candidate(
                case_id=row.id, account_id=row.account_id, phone_id=verdict.phone.id, phone=verdict.phone.number,
                phone_priority=verdict.phone.priority, stage_code=verdict.stage.code, language=row.language or "ru",
                timezone=verdict.timezone, country=verdict.country,
            ))
            continue
        setattr(stats, verdict.kind, getattr(stats, verdict.kind) + 1)
        if verdict.kind in (NOT_ACTIVE, WAITING_STAGE):
            continue  # the ladder's decision already set what happens next
        if verdict.kind in (NO_PHONE, BAD_TIMEZONE):
            stats.not_callable_case_ids.append(row.id)
            if verdict.kind == NO_PHONE:
                log.info("case %s has no usable phone number: not callable", row.id)
            else:
                log.error("case %s: unknown time zone %r: not callable", row.id, row.timezone)
        assert verdict.until is not None
        bump(row.id, verdict.until, verdict.kind)
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
            .values(next_attempt_at=bindparam("b_next"), wait_reason=bindparam("b_reason")),
            bumps,
        )
        stats.bumped = len(bumps)
    stats.selected = len(selected)
    if selected:
        log.debug("selected %d of %d fetched (first %s)", len(selected), len(rows), mask_phone(selected[0].phone))
    return selected
