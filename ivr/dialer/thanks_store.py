"""Issue 16: thank-you calls in the database (the rules are in ivr.dialer.thanks).

- `record_paid_cases` (payments import): a case a payment paid off, after a confirmed robot call
  or a promise on it, gets one `thank_you_calls` row (pending, or `off` when disabled).
- `select_thanks` (dialer pass): pending rows that may be called now, as dialer Candidates with
  purpose "thanks", after the same checks as a debt call (opt-outs, number status, time zone,
  contact limits, call window; all fail closed); rows that must wait are moved to the moment
  they may be called, rows past their last day expire.
- `recheck_thanks` / `claimed` (under the person's dial lock, in the claim transaction).
- `settle_attempt` (the attempt left flight): done, another try, or expired.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Iterable
from typing import Any

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session

from ivr.db.models import (
    Account,
    CallAttempt,
    CaseState,
    DebtCase,
    OptOut,
    Outcome,
    Payment,
    PhoneNumber,
    Promise,
    ThankYouCall,
)
from ivr.db.options import get_options
from ivr.dialer.limits import limits_reopen_at, within_limits
from ivr.dialer.policy import Rules
from ivr.dialer.retry import USABLE_STATUS, pick_phone
from ivr.dialer.selector import IN_FLIGHT, Candidate, load_histories, load_phones, opted_out_numbers
from ivr.dialer.thanks import (
    EXPIRED,
    PENDING,
    THANKS_PURPOSE,
    THANKS_STAGE,
    PaidCaseFacts,
    ThanksSettings,
    plan_thanks,
    settle_thanks,
    thanks_trigger,
)
from ivr.dialer.windows import (
    naive_utc,
    resolve_timezone,
    stage_next_window,
    stage_window_open,
    to_utc,
)
from ivr.logsetup import mask_phone

log = logging.getLogger(__name__)

NOT_CALLABLE_RECHECK = dt.timedelta(hours=6)


def thanks_settings(session: Session) -> ThanksSettings:
    return ThanksSettings.from_options(get_options(session))


# -- payments import -----------------------------------------------------------------------------

def record_paid_cases(session: Session, paid: Iterable[tuple[DebtCase, Payment]], now: dt.datetime,
                      settings: ThanksSettings | None = None) -> int:
    """One thank-you row per case just paid off that qualifies; returns how many were written.
    Three queries for the batch, whatever its size."""
    pairs = [(case, payment) for case, payment in paid if case.id is not None]
    if not pairs:
        return 0
    settings = settings or thanks_settings(session)
    stamp = naive_utc(to_utc(now)) if now.tzinfo else now
    ids = [case.id for case, _p in pairs]
    calls: dict[int, list[dt.date]] = {}
    for case_id, when in session.execute(
        select(CallAttempt.debt_case_id, func.coalesce(CallAttempt.answered_at, CallAttempt.created_at))
        .join(Outcome, Outcome.attempt_id == CallAttempt.id)
        .where(CallAttempt.debt_case_id.in_(ids), CallAttempt.purpose == "robot", Outcome.identity == "confirmed")
    ):
        if case_id is not None:
            calls.setdefault(case_id, []).append(when.date())
    promises: dict[int, list[dt.date]] = {}
    for case_id, made in session.execute(
        select(Promise.debt_case_id, Promise.created_at).where(Promise.debt_case_id.in_(ids))
    ):
        promises.setdefault(case_id, []).append(made.date())
    recorded = set(session.scalars(select(ThankYouCall.debt_case_id).where(ThankYouCall.debt_case_id.in_(ids))))
    written = 0
    for case, payment in pairs:
        facts = PaidCaseFacts(
            paid_off=case.state == CaseState.PAID.value, paid_on=payment.paid_on,
            confirmed_calls=tuple(calls.get(case.id, ())), promises_made=tuple(promises.get(case.id, ())),
            already_recorded=case.id in recorded,
        )
        trigger = thanks_trigger(facts, settings.lookback_days)
        if trigger is None:
            continue
        plan = plan_thanks(settings, payment.paid_on, stamp)
        session.add(ThankYouCall(
            account_id=case.account_id, debt_case_id=case.id, payment_id=payment.id, paid_on=payment.paid_on,
            trigger=trigger, state=plan.state, due_at=plan.due_at, expires_at=plan.expires_at, attempts=0,
            created_at=stamp,
        ))
        recorded.add(case.id)
        written += 1
        log.info("case %s paid after a robot %s: thank-you %s", case.id, trigger, plan.state)
    return written


# -- the dialer's selection ----------------------------------------------------------------------

def select_thanks(session: Session, rules: Rules, now_utc: dt.datetime, limit: int, *,
                  paused_stages: Collection[str] = (), settings: ThanksSettings | None = None) -> list[Candidate]:
    """Up to `limit` thank-you calls that may be placed now (the caller commits the bumps)."""
    if limit <= 0 or THANKS_STAGE in paused_stages:
        return []
    now = to_utc(now_utc)
    now_naive = naive_utc(now)
    settings = settings or thanks_settings(session)
    if not settings.enabled:
        return []  # switched off after rows were planned: they wait (and expire) untouched
    stage = settings.stage()
    rows = session.execute(
        select(ThankYouCall.id, ThankYouCall.account_id, ThankYouCall.debt_case_id, ThankYouCall.expires_at,
               Account.timezone, Account.country, Account.language)
        .join(Account, Account.id == ThankYouCall.account_id)
        .where(
            ThankYouCall.state == PENDING, ThankYouCall.due_at <= now_naive,
            or_(Account.dial_lock_owner.is_(None), Account.dial_lock_until < now_naive),
            ~exists().where(OptOut.account_id == ThankYouCall.account_id),
        )
        .order_by(ThankYouCall.due_at, ThankYouCall.id)
        .limit(limit * 3)
    ).all()
    accounts = {r.account_id for r in rows}
    phones = load_phones(session, accounts)
    opted = opted_out_numbers(session, (p.number for ps in phones.values() for p in ps))
    histories = load_histories(session, accounts, now)
    selected: list[Candidate] = []
    seen: set[int] = set()
    for row in rows:
        if len(selected) >= limit:
            break
        if row.account_id in seen:
            continue
        seen.add(row.account_id)
        if row.expires_at <= now_naive:
            _set(session, row.id, state=EXPIRED, result="expired", done_at=now_naive)
            continue
        phone = pick_phone(phones.get(row.account_id, ()), 1, opted)
        tz = resolve_timezone(row.timezone, phone.number, rules.default_timezone) if phone else None
        if phone is None or tz is None:
            _wait(session, row.id, row.expires_at, now + NOT_CALLABLE_RECHECK, now_naive)
            continue
        country = row.country or "RU"
        reopen = limits_reopen_at(histories.get(row.account_id, ()), rules.limits, now, tz)
        if reopen is None or reopen > now:
            start = reopen or now + NOT_CALLABLE_RECHECK
            _wait(session, row.id, row.expires_at,
                  stage_next_window(rules, stage, tz, country, start) or start + NOT_CALLABLE_RECHECK, now_naive)
            continue
        if not stage_window_open(rules, stage, tz, country, now):
            _wait(session, row.id, row.expires_at,
                  stage_next_window(rules, stage, tz, country, now) or now + NOT_CALLABLE_RECHECK, now_naive)
            continue
        selected.append(Candidate(
            case_id=row.debt_case_id, account_id=row.account_id, phone_id=phone.id, phone=phone.number,
            phone_priority=phone.priority, stage_code=THANKS_STAGE, language=row.language or "ru",
            timezone=tz, country=country, purpose=THANKS_PURPOSE,
        ))
    return selected


def _set(session: Session, row_id: int, **values: Any) -> None:
    session.execute(update(ThankYouCall).where(ThankYouCall.id == row_id, ThankYouCall.state == PENDING)
                    .values(**values).execution_options(synchronize_session=False))


def _wait(session: Session, row_id: int, expires_at: dt.datetime, until: dt.datetime, now_naive: dt.datetime) -> None:
    """Move a row that may not be called now to when it may; past its last day it expires."""
    when = naive_utc(to_utc(until))
    if when >= expires_at:
        _set(session, row_id, state=EXPIRED, result="not_reached", done_at=now_naive)
    else:
        _set(session, row_id, due_at=max(when, now_naive + dt.timedelta(seconds=1)))


# -- the claim (under the person's dial lock) ------------------------------------------------------

def recheck_thanks(session: Session, candidate: Candidate, rules: Rules, now: dt.datetime) -> str | None:
    """Why this thank-you may no longer be placed, or None (the debt call's re-checks)."""
    now_naive = naive_utc(now)
    settings = thanks_settings(session)
    if not settings.enabled:
        return "thank-you calls disabled"
    row = session.execute(
        select(ThankYouCall.state, ThankYouCall.due_at, ThankYouCall.expires_at)
        .where(ThankYouCall.debt_case_id == candidate.case_id)
    ).one_or_none()
    if row is None or row.state != PENDING:
        return "thank-you not pending"
    if row.due_at > now_naive or row.expires_at <= now_naive:
        return "thank-you not due"
    if session.scalar(select(exists().where(
            or_(OptOut.account_id == candidate.account_id, OptOut.phone == candidate.phone)))):
        return "opted out"
    if session.scalar(select(PhoneNumber.status).where(PhoneNumber.id == candidate.phone_id)) != USABLE_STATUS:
        return "number not usable"
    if session.scalar(select(exists().where(CallAttempt.account_id == candidate.account_id,
                                            CallAttempt.state.in_(IN_FLIGHT)))):
        return "another attempt in flight"
    history = load_histories(session, [candidate.account_id], now).get(candidate.account_id, [])
    if not within_limits(history, rules.limits, now, candidate.timezone):
        return "contact limit"
    if not stage_window_open(rules, settings.stage(), candidate.timezone, candidate.country, now):
        return "window closed"
    return None


def claimed(session: Session, candidate: Candidate, attempt_id: int, now: dt.datetime) -> None:
    """The attempt is written: one try used, and not due again while it is in flight."""
    settings = thanks_settings(session)
    now_naive = naive_utc(now)
    session.execute(
        update(ThankYouCall).where(ThankYouCall.debt_case_id == candidate.case_id)
        .values(attempts=ThankYouCall.attempts + 1, last_attempt_id=attempt_id,
                due_at=now_naive + dt.timedelta(minutes=settings.retry_minutes))
        .execution_options(synchronize_session=False)
    )


def settle_attempt(session: Session, attempt: CallAttempt, result: str, now: dt.datetime) -> None:
    """A thank-you attempt left flight: done, another try later, or expired."""
    row = session.scalar(select(ThankYouCall).where(ThankYouCall.debt_case_id == attempt.debt_case_id))
    if row is None or row.state != PENDING:
        return
    now_naive = naive_utc(to_utc(now))
    plan = settle_thanks(result, row.attempts, thanks_settings(session), now_naive, row.expires_at, row.due_at)
    row.state = plan.state
    row.due_at = plan.due_at
    row.attempts = plan.attempts
    row.result = result
    if plan.state != PENDING:
        row.done_at = now_naive
    log.info("thank-you for case %s (%s): %s after %s", attempt.debt_case_id, mask_phone(attempt.phone),
             plan.state, result)
