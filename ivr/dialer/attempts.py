"""Attempt bookkeeping from AMI results: idempotent and order-independent.

Events may repeat (several dialers connected to one Asterisk all receive them) or arrive out of
order (Hangup before OriginateResponse). Every transition is a compare-and-set UPDATE, so the
case bookkeeping (last_result, attempts_in_stage, retry time, number order) and the release of
the person's lock happen exactly once, by whoever moves the attempt out of flight first. Later
events only fill in fields that are still empty.

Result precedence: a result the call script already wrote (machine, wrong_party, ...) is never
overwritten; an attempt Asterisk reported answered ends as "answered" whatever the hangup cause.

`sessions` is a session factory; each function runs one short transaction and commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from ivr import dialplan_vars
from ivr.ami.types import CallEnded, OriginateResult
from ivr.db.models import AttemptResult, AttemptState, CallAttempt, CallStep, DebtCase
from ivr.dialer import lines
from ivr.dialer.claims import release_lock, rowcount
from ivr.dialer.policy import Rules
from ivr.dialer.retry import INTERRUPTED, LOST, NOT_SENT, REFUSED, ROBOT_FAILED, plan_retry
from ivr.dialer.selector import IN_FLIGHT, load_phones, opted_out_numbers
from ivr.dialer.thanks import THANKS_PURPOSE
from ivr.dialer.thanks_store import settle_attempt as settle_thanks_attempt
from ivr.dialer.windows import naive_utc, to_utc
from ivr.logsetup import mask_phone

log = logging.getLogger(__name__)

Sessions = sessionmaker[Session]
PRE_ANSWER = (AttemptState.CLAIMED.value, AttemptState.DIALING.value)


@dataclass(frozen=True)
class AttemptUpdate:
    """What an event did: `finished` means the attempt's line is free now."""

    action_id: str
    server: str | None
    finished: bool
    result: str | None = None
    applied: bool = False  # this call did the case bookkeeping (False for repeats)


def _find(session: Session, action_id: str) -> CallAttempt | None:
    return session.scalar(select(CallAttempt).where(CallAttempt.action_id == action_id))


def _fill_missing(session: Session, attempt_id: int, values: dict[str, Any]) -> None:
    """Set fields that are still NULL (late or repeated events add detail, never overwrite)."""
    fills = {k: func.coalesce(getattr(CallAttempt, k), v) for k, v in values.items() if v is not None}
    if fills:
        session.execute(
            update(CallAttempt).where(CallAttempt.id == attempt_id).values(**fills)
            .execution_options(synchronize_session=False)
        )


def apply_case_result(
    session: Session, attempt: CallAttempt, result: str, rules: Rules, now: dt.datetime
) -> None:
    """Case bookkeeping for an attempt that just left flight; releases the person's lock.

    Rows are touched in the order call_attempts -> debt_cases -> accounts, the same order as the
    ladder tick, so concurrent transactions on PostgreSQL cannot deadlock each other."""
    if attempt.purpose == THANKS_PURPOSE:  # issue 16: the paid case is not touched
        settle_thanks_attempt(session, attempt, result, now)
        release_lock(session, attempt.account_id, attempt.action_id)
        return
    case = None
    if attempt.debt_case_id is not None:
        case = session.execute(
            select(DebtCase.stage_code, DebtCase.next_phone_priority).where(DebtCase.id == attempt.debt_case_id)
        ).one_or_none()
    if case is None:
        release_lock(session, attempt.account_id, attempt.action_id)
        return
    phones = load_phones(session, [attempt.account_id]).get(attempt.account_id, [])
    priority = next((p.priority for p in phones if p.id == attempt.phone_number_id), case.next_phone_priority)
    same_stage = attempt.stage_code == case.stage_code
    decision = plan_retry(
        result, now=to_utc(now), stage=rules.stage(attempt.stage_code), options=rules.options, phones=phones,
        attempt_phone=attempt.phone, attempt_priority=priority,
        excluded_numbers=opted_out_numbers(session, (p.number for p in phones)),
    )
    when = naive_utc(decision.next_attempt_at)
    values: dict[str, Any] = {
        "last_result": result,
        # never earlier than what the call script set (promise, "already paid" grace)
        "next_attempt_at": sql_case(
            (DebtCase.next_attempt_at > when, DebtCase.next_attempt_at), else_=when
        ),
        "wait_reason": sql_case((DebtCase.next_attempt_at > when, DebtCase.wait_reason), else_="retry"),
        "updated_at": naive_utc(now),
    }
    if same_stage:  # the ladder may have moved the case on while the call ran
        values["next_phone_priority"] = decision.next_phone_priority
        if decision.counts_in_stage:
            values["attempts_in_stage"] = DebtCase.attempts_in_stage + 1
    session.execute(
        update(DebtCase).where(DebtCase.id == attempt.debt_case_id).values(**values)
        .execution_options(synchronize_session=False)
    )
    release_lock(session, attempt.account_id, attempt.action_id)
    if decision.no_usable_phone:
        log.warning("case %s has no usable phone number left: not callable until fixed", attempt.debt_case_id)


def script_ran(session: Session, attempt_id: int) -> bool:
    """Did the call script record any step of this call?"""
    return session.scalar(select(CallStep.id).where(CallStep.attempt_id == attempt_id).limit(1)) is not None


def unserved_result(session: Session, attempt: CallAttempt, agi_status: str | None) -> str | None:
    """The fault result of an answered call whose script did not finish, or None.

    The call script writes the attempt's result when it ends, before it closes the FastAGI
    socket, and Asterisk hangs ;1 up only after that; so an answered call that ends with no
    result was cut before the script finished. With AGISTATUS=FAILURE and no step recorded the
    script never ran (ami-agi-server-down.txt: connection refused): `robot_failed`. With steps
    recorded the robot went away mid-call: `interrupted`. Neither is a contact (issue 15).
    """
    if attempt.result is not None or attempt.state != AttemptState.ANSWERED.value:
        return None
    ran = script_ran(session, attempt.id)
    if ran:
        return INTERRUPTED
    if agi_status == dialplan_vars.AGI_FAILURE:
        return ROBOT_FAILED
    return None  # answered and hung up before the script started: the person did pick up


def _finish(
    sessions: Sessions, action_id: str, fallback: str, now: dt.datetime, rules: Rules,
    details: dict[str, Any], *, bookkeeping_result: str | None = None, agi_status: str | None = None,
    forced_result: str | None = None,
) -> AttemptUpdate | None:
    """Move an in-flight attempt to done (once) and do the bookkeeping; fill details otherwise.
    The attempt's line lease is freed in the same transaction."""
    now_naive = naive_utc(now)
    with sessions.begin() as session:
        attempt = _find(session, action_id)
        if attempt is None:
            log.info("event for unknown call id %s ignored", action_id)
            return None
        answered_at = attempt.answered_at
        duration = (now_naive - answered_at).total_seconds() if answered_at else None
        fault = forced_result or unserved_result(session, attempt, agi_status)
        result_expr: Any
        if forced_result is not None:
            result_expr = forced_result
        else:
            result_expr = func.coalesce(
                CallAttempt.result,
                sql_case((CallAttempt.state == AttemptState.ANSWERED.value, fault or AttemptResult.ANSWERED.value),
                         else_=fallback),
            )
        moved = session.execute(
            update(CallAttempt)
            .where(CallAttempt.id == attempt.id, CallAttempt.state.in_(IN_FLIGHT))
            .values(state=AttemptState.DONE.value, result=result_expr, ended_at=now_naive,
                    duration_s=round(duration, 3) if duration is not None else None)
            .execution_options(synchronize_session=False)
        )
        _fill_missing(session, attempt.id, details)
        lines.release(session, action_id)
        if rowcount(moved) == 1:
            session.refresh(attempt)
            result = attempt.result or fallback
            apply_case_result(session, attempt, bookkeeping_result or result, rules, now)
            log.info("attempt %s to %s ended: %s", action_id, mask_phone(attempt.phone), result)
            return AttemptUpdate(action_id, attempt.server, True, result, applied=True)
        if attempt.state == AttemptState.UNKNOWN.value:
            # A late event for a reconciled ("lost") attempt: the bookkeeping was done then; now
            # the attempt gets its real result (a reconciled "lost" is only a placeholder).
            late = sql_case((CallAttempt.result.in_((LOST,)), None), else_=CallAttempt.result)
            session.execute(
                update(CallAttempt)
                .where(CallAttempt.id == attempt.id, CallAttempt.state == AttemptState.UNKNOWN.value)
                .values(state=AttemptState.DONE.value, result=func.coalesce(late, fault, fallback),
                        ended_at=func.coalesce(CallAttempt.ended_at, now_naive))
                .execution_options(synchronize_session=False)
            )
        return AttemptUpdate(action_id, attempt.server, True, attempt.result, applied=False)


def on_originate_result(sessions: Sessions, result: OriginateResult, now: dt.datetime, rules: Rules) -> AttemptUpdate | None:
    """`OriginateResponse`: success means answered (the call script runs now); failure ends it."""
    details = {"channel": result.channel or None, "uniqueid": result.uniqueid}
    if not result.success:
        return _finish(sessions, result.action_id, result.result or AttemptResult.FAILED.value, now, rules, details)
    now_naive = naive_utc(now)
    with sessions.begin() as session:
        attempt = _find(session, result.action_id)
        if attempt is None:
            log.info("OriginateResponse for unknown call id %s ignored", result.action_id)
            return None
        session.execute(
            update(CallAttempt)
            .where(CallAttempt.id == attempt.id, CallAttempt.state.in_(PRE_ANSWER))
            .values(state=AttemptState.ANSWERED.value)
            .execution_options(synchronize_session=False)
        )
        # Also for an attempt that already ended (Hangup came first): record that it was answered.
        _fill_missing(session, attempt.id, {**details, "answered_at": now_naive})
        session.refresh(attempt)
        return AttemptUpdate(result.action_id, attempt.server, attempt.state not in IN_FLIGHT, attempt.result)


def on_call_ended(sessions: Sessions, event: CallEnded, now: dt.datetime, rules: Rules) -> AttemptUpdate | None:
    """`Hangup` of a channel carrying our IVR_CALL_ID: the attempt is over."""
    details = {"channel": event.channel or None, "uniqueid": event.uniqueid or None, "hangup_cause": event.cause}
    return _finish(sessions, event.call_id, event.result or AttemptResult.FAILED.value, now, rules, details,
                   agi_status=event.agi_status)


def on_originate_error(
    sessions: Sessions, action_id: str, now: dt.datetime, rules: Rules, error: str = ""
) -> AttemptUpdate | None:
    """Asterisk refused the Originate (`Response: Error`: "Asterisk is shutting down", invalid
    channel), or it could not be sent (not connected). No channel ever existed: this is not an
    attempt on the subscriber (issue 15). The attempt ends as `refused` with originated_at
    cleared, so it counts neither towards the stage nor the contact limits; the person is free
    again and retried soon. (A reply lost in a disconnect is OriginateUnknown, not this.)"""
    log.error("originate %s refused: %s", action_id, error)
    with sessions.begin() as session:
        session.execute(
            update(CallAttempt)
            .where(CallAttempt.action_id == action_id, CallAttempt.state.in_(PRE_ANSWER))
            .values(originated_at=None)
            .execution_options(synchronize_session=False)
        )
    return _finish(sessions, action_id, REFUSED, now, rules, {}, forced_result=REFUSED)


def release_unsent(
    sessions: Sessions, attempt_id: int, now: dt.datetime, *, retry_after: dt.timedelta | None = None
) -> bool:
    """A claim that was never originated (audio preparation failed, the claim went stale): the
    attempt ends as not_sent (not counted anywhere) and the person is free again. With
    `retry_after` the case waits that long, so a persistent failure does not spin."""
    with sessions.begin() as session:
        attempt = session.get(CallAttempt, attempt_id)
        if attempt is None:
            return False
        moved = session.execute(
            update(CallAttempt)
            .where(CallAttempt.id == attempt_id, CallAttempt.state == AttemptState.CLAIMED.value,
                   CallAttempt.originated_at.is_(None))
            .values(state=AttemptState.DONE.value, result=NOT_SENT, ended_at=naive_utc(now))
            .execution_options(synchronize_session=False)
        )
        if rowcount(moved) != 1:
            return False
        lines.release(session, attempt.action_id)
        if attempt.purpose == THANKS_PURPOSE:  # issue 16: the try is given back, retried soon
            settle_thanks_attempt(session, attempt, NOT_SENT, now)
        elif retry_after is not None and attempt.debt_case_id is not None:
            when = naive_utc(to_utc(now) + retry_after)
            session.execute(
                update(DebtCase).where(DebtCase.id == attempt.debt_case_id)
                .values(next_attempt_at=sql_case((DebtCase.next_attempt_at > when, DebtCase.next_attempt_at), else_=when))
                .execution_options(synchronize_session=False)
            )
        release_lock(session, attempt.account_id, attempt.action_id)
        return True



def settle(sessions: Sessions, action_id: str, now: dt.datetime, rules: Rules, result: str, *,
           force: bool = True) -> AttemptUpdate | None:
    """Reconciliation ends an attempt that has no live channel with `result` (forced, or only
    where the attempt has none yet); the line lease and the person are freed as for an event."""
    return _finish(sessions, action_id, result, now, rules, {}, forced_result=result if force else None)
