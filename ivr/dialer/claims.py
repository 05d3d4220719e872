"""Atomic claims: one call in flight per person, across any number of dialers.

A claim is a conditional UPDATE of the account's dial lock

    UPDATE accounts SET dial_lock_owner = :action_id, dial_lock_until = :until
    WHERE id = :id AND (dial_lock_owner IS NULL OR dial_lock_until < :now)

whose row count says who won (PostgreSQL re-evaluates the WHERE after a concurrent writer
commits; SQLite serialises writers). Holding the lock, the same transaction re-reads what may
have changed since selection (a payment, an opt-out, another dialer's finished call, the
contact-limit history, the stage, the number's status) and inserts the CallAttempt (state
claimed). The commit happens BEFORE the originate is sent; `mark_originating` stamps
originated_at right before sending so a crash in between is recognisable (reconcile).

The lock owner is the attempt's action_id, so a late event of an old attempt can never release
a newer attempt's lock.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any, cast

from sqlalchemy import CursorResult, Result, exists, or_, select, update
from sqlalchemy.orm import Session

from ivr.db.models import (
    Account,
    AttemptState,
    CallAttempt,
    CaseState,
    DebtCase,
    OptOut,
    PhoneNumber,
)
from ivr.dialer import lines
from ivr.dialer.limits import within_limits
from ivr.dialer.policy import Rules
from ivr.dialer.retry import USABLE_STATUS
from ivr.dialer.selector import IN_FLIGHT, Candidate, load_histories
from ivr.dialer.thanks import THANKS_PURPOSE
from ivr.dialer.thanks_store import claimed as thanks_claimed
from ivr.dialer.thanks_store import recheck_thanks
from ivr.dialer.windows import naive_utc, stage_window_open, to_utc
from ivr.logsetup import mask_phone

log = logging.getLogger(__name__)

# Longer than any call (originate timeout + the whole script); a crashed dialer's lock expires
# after it, and a still-running call is caught by the in-flight re-check anyway.
DEFAULT_LEASE = dt.timedelta(minutes=30)


class ServerFull(Exception):
    """Every line slot of the server is leased (by any dialer): nothing was claimed."""

    def __init__(self, server: str) -> None:
        super().__init__(f"no free line on {server}")
        self.server = server


def rowcount(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def new_action_id(dialer_id: str) -> str:
    """Unique AMI ActionID (also IVR_CALL_ID): `<dialer>-<uuid4 hex>`, at most 63 characters."""
    return f"{(dialer_id or 'dialer')[:30]}-{uuid.uuid4().hex}"


def _recheck(session: Session, candidate: Candidate, rules: Rules, now: dt.datetime) -> str | None:
    """Why the candidate may no longer be called, or None. Runs under the person's lock."""
    if candidate.purpose == THANKS_PURPOSE:  # issue 16: its own row, the same person checks
        return recheck_thanks(session, candidate, rules, now)
    now_naive = naive_utc(now)
    case = session.execute(
        select(DebtCase.state, DebtCase.amount_owed, DebtCase.stage_code, DebtCase.next_attempt_at, DebtCase.attempts_in_stage)
        .where(DebtCase.id == candidate.case_id)
    ).one_or_none()
    if case is None:
        return "case gone"
    if case.state != CaseState.ACTIVE.value or case.amount_owed is None or case.amount_owed <= 0:
        return f"case {case.state}, owed {case.amount_owed}"
    if case.stage_code != candidate.stage_code:
        return "stage changed"
    if case.next_attempt_at is not None and case.next_attempt_at > now_naive:
        return "not due any more"  # another dialer called and finished meanwhile
    stage = rules.stage(case.stage_code)
    if stage is None or case.attempts_in_stage >= stage.max_attempts:
        return "stage exhausted"
    opted = session.scalar(
        select(exists().where(or_(OptOut.account_id == candidate.account_id, OptOut.phone == candidate.phone)))
    )
    if opted:
        return "opted out"
    status = session.scalar(select(PhoneNumber.status).where(PhoneNumber.id == candidate.phone_id))
    if status != USABLE_STATUS:
        return f"number status {status}"
    in_flight = session.scalar(
        select(exists().where(CallAttempt.account_id == candidate.account_id, CallAttempt.state.in_(IN_FLIGHT)))
    )
    if in_flight:
        return "another attempt in flight"
    history = load_histories(session, [candidate.account_id], now).get(candidate.account_id, [])
    if not within_limits(history, rules.limits, now, candidate.timezone):
        return "contact limit"
    if not stage_window_open(rules, stage, candidate.timezone, candidate.country, now):
        return "window closed"
    return None


def claim(
    session: Session,
    candidate: Candidate,
    dialer_id: str,
    now: dt.datetime,
    lease: dt.timedelta = DEFAULT_LEASE,
    *,
    rules: Rules,
    server: str | None = None,
    purpose: str = "robot",
    line_limit: int | None = None,
    line_ttl: dt.timedelta = lines.LEASE_TTL,
) -> CallAttempt | None:
    """Lock the person, re-check, insert the attempt and COMMIT; None when someone else won or
    the candidate may no longer be called (nothing is left behind then).

    With `line_limit`, a line slot of `server` is leased in the same transaction (ivr.dialer.lines);
    raises ServerFull (after rolling back) when the server has none free."""
    now = to_utc(now)
    now_naive = naive_utc(now)
    action_id = new_action_id(dialer_id)
    try:  # ServerFull passes through the handler below after its own rollback
        won = session.execute(
            update(Account)
            .where(
                Account.id == candidate.account_id,
                or_(Account.dial_lock_owner.is_(None), Account.dial_lock_until < now_naive),
            )
            .values(dial_lock_owner=action_id, dial_lock_until=naive_utc(now + lease))
            .execution_options(synchronize_session=False)
        )
        if rowcount(won) != 1:
            session.rollback()
            return None
        reason = _recheck(session, candidate, rules, now)
        if reason is not None:
            session.rollback()
            log.info("claim of case %s dropped: %s", candidate.case_id, reason)
            return None
        if line_limit is not None and server is not None:
            if lines.acquire(session, server, line_limit, action_id, dialer_id, now, line_ttl) is None:
                session.rollback()
                raise ServerFull(server)
        attempt = CallAttempt(
            debt_case_id=candidate.case_id, account_id=candidate.account_id, phone_number_id=candidate.phone_id,
            phone=candidate.phone, stage_code=candidate.stage_code, language=candidate.language,
            purpose=candidate.purpose if candidate.purpose != "robot" else purpose, server=server, dialer_id=dialer_id or None, action_id=action_id,
            state=AttemptState.CLAIMED.value, created_at=now_naive,
        )
        session.add(attempt)
        if candidate.purpose == THANKS_PURPOSE:
            session.flush()
            thanks_claimed(session, candidate, attempt.id, now)
        session.commit()
    except Exception:
        session.rollback()
        raise
    log.info("claimed case %s (%s) as %s on %s", candidate.case_id, mask_phone(candidate.phone), action_id, server)
    return attempt


def mark_originating(session: Session, attempt_id: int, now: dt.datetime) -> bool:
    """Stamp originated_at right before the Originate goes out; False if the claim was
    reconciled away meanwhile (then do not send). Commits."""
    result = session.execute(
        update(CallAttempt)
        .where(CallAttempt.id == attempt_id, CallAttempt.state == AttemptState.CLAIMED.value, CallAttempt.originated_at.is_(None))
        .values(originated_at=naive_utc(now))
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return rowcount(result) == 1


def mark_dialing(session: Session, attempt_id: int) -> None:
    """Asterisk accepted the Originate. Only from `claimed`: an event may already have moved it on."""
    session.execute(
        update(CallAttempt)
        .where(CallAttempt.id == attempt_id, CallAttempt.state == AttemptState.CLAIMED.value)
        .values(state=AttemptState.DIALING.value)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def release_lock(session: Session, account_id: int, action_id: str) -> bool:
    """Free the person if (and only if) this attempt still holds the lock. Does not commit."""
    result = session.execute(
        update(Account)
        .where(Account.id == account_id, Account.dial_lock_owner == action_id)
        .values(dial_lock_owner=None, dial_lock_until=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1
