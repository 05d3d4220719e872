"""The hooks: one call per fact, made inside the transaction that stores the fact.

Each function reads what billing needs about the fact from the caller's session (the fact's own
rows, autoflushed) and records one event per new fact (ivr/outbox/events.py). The idempotency
keys name the fact, so calling a hook twice records it once. Payload fields are documented in
README "Push to billing"; keep them stable (billing parses them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ivr.db.models import (
    BlockListEntry,
    CallbackTask,
    DebtCase,
    Promise,
    Reason,
    User,
)
from ivr.db.tables import ATTEMPTS, CASES, OPT_OUTS, OUTCOMES, PHONES, PROMISES, REASONS
from ivr.outbox import events
from ivr.outbox.events import naive_utc


def _iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _money(value: Any) -> str | None:
    return None if value is None else f"{value:.2f}"


# Session or Connection: the hooks read with Core selects of columns, which both run (a Session
# flushes its pending changes first), so the call facts writer (a Connection) and the ORM code
# paths (a Session) share one definition of every payload.
Db = Session | Connection



# Built once with bound parameters (the call facts writer runs these thousands of times).
_CASE_REF = select(CASES.c.id, CASES.c.state, CASES.c.amount_owed, CASES.c.currency) \
    .where(CASES.c.id == bindparam("f_case"))
_CASE_ACCOUNT = select(CASES.c.account_id).where(CASES.c.id == bindparam("f_case"))
_ATTEMPT_FOR_OUTCOME = select(
    ATTEMPTS.c.id, ATTEMPTS.c.action_id, ATTEMPTS.c.phone, ATTEMPTS.c.stage_code, ATTEMPTS.c.language,
    ATTEMPTS.c.result, ATTEMPTS.c.answered_at, ATTEMPTS.c.account_id, ATTEMPTS.c.debt_case_id,
).where(ATTEMPTS.c.id == bindparam("f_attempt"))
_OUTCOME_OF_ATTEMPT = (
    select(OUTCOMES.c.kind, OUTCOMES.c.identity, OUTCOMES.c.promise_date, OUTCOMES.c.paid_claim,
           OUTCOMES.c.opted_out, OUTCOMES.c.human_requested, OUTCOMES.c.message_delivered,
           REASONS.c.code.label("reason_code"))
    .select_from(OUTCOMES.outerjoin(REASONS, REASONS.c.id == OUTCOMES.c.reason_id))
    .where(OUTCOMES.c.attempt_id == bindparam("f_attempt"))
)
_NEWEST_PENDING_PROMISE = (
    select(PROMISES).where(PROMISES.c.debt_case_id == bindparam("f_case"), PROMISES.c.status == "pending")
    .order_by(PROMISES.c.id.desc()).limit(1)
)
_NEWEST_OPT_OUT = select(OPT_OUTS).order_by(OPT_OUTS.c.id.desc()).limit(1)
_NEWEST_OPT_OUT_OF_ACCOUNT = _NEWEST_OPT_OUT.where(OPT_OUTS.c.account_id == bindparam("f_account"))
_NEWEST_OPT_OUT_OF_PHONE = _NEWEST_OPT_OUT.where(OPT_OUTS.c.phone == bindparam("f_phone"))
_ACCOUNTS_OF_NUMBER = select(PHONES.c.account_id).where(PHONES.c.number == bindparam("f_phone")) \
    .order_by(PHONES.c.account_id)


def _case_ref(session: Db, case_id: int | None) -> dict[str, Any]:
    case = session.execute(_CASE_REF, {"f_case": case_id}).first() if case_id is not None else None
    if case is None:
        return {"case_id": case_id}
    return {"case_id": case.id, "case_state": case.state, "amount_owed": _money(case.amount_owed),
            "currency": case.currency}


def call_outcome(session: Db, attempt_id: int, now: dt.datetime) -> bool:
    """An answered call's script has finished: what the call established, final."""
    attempt = session.execute(_ATTEMPT_FOR_OUTCOME, {"f_attempt": attempt_id}).first()
    if attempt is None:
        return False
    outcome = session.execute(_OUTCOME_OF_ATTEMPT, {"f_attempt": attempt_id}).first()
    payload: dict[str, Any] = {
        "call_id": attempt.action_id, "attempt_id": attempt.id, "phone": attempt.phone,
        "stage": attempt.stage_code, "language": attempt.language, "result": attempt.result,
        "answered_at": _iso(attempt.answered_at),
        "outcome": outcome.kind if outcome is not None else None,
        "identity": outcome.identity if outcome is not None else "unknown",
        "promise_date": _iso(outcome.promise_date) if outcome is not None else None,
        "reason": outcome.reason_code if outcome is not None else None,
        "paid_claim": bool(outcome and outcome.paid_claim),
        "opted_out": bool(outcome and outcome.opted_out),
        "human_requested": bool(outcome and outcome.human_requested),
        "message_delivered": bool(outcome and outcome.message_delivered),
        **_case_ref(session, attempt.debt_case_id),
    }
    return events.record(session, events.CALL_OUTCOME, attempt.account_id, payload, now,
                         key=f"{events.CALL_OUTCOME}:{attempt.id}")


def _promise_payload(session: Db, promise: Any) -> dict[str, Any]:
    """`promise`: a Promise or a row of the promises table (the same attribute names)."""
    return {
        "promise_id": promise.id, "promised_date": _iso(promise.promised_date), "amount": _money(promise.amount),
        "source": promise.source, "status": promise.status, "stage": promise.stage_code,
        "attempt_id": promise.attempt_id, "made_at": _iso(promise.created_at),
        "resolved_at": _iso(promise.resolved_at), **_case_ref(session, promise.debt_case_id),
    }


def promise_made(session: Db, case_id: int, now: dt.datetime) -> bool:
    """A promise was just added to the case (the newest pending one)."""
    promise = session.execute(_NEWEST_PENDING_PROMISE, {"f_case": case_id}).first()
    account_id = session.execute(_CASE_ACCOUNT, {"f_case": case_id}).scalar()
    if promise is None or account_id is None:
        return False
    return events.record(session, events.PROMISE_MADE, account_id, _promise_payload(session, promise), now,
                         key=f"{events.PROMISE_MADE}:{promise.id}")


def promises_resolved(session: Session, case_id: int, now: dt.datetime) -> int:
    """The case's promises that became kept or broken at `now` (the same stamp the caller wrote
    into resolved_at); returns how many events were recorded."""
    case = session.get(DebtCase, case_id)
    if case is None:
        return 0
    stamp = naive_utc(now)
    done = 0
    for promise in session.scalars(
        select(Promise).where(Promise.debt_case_id == case_id, Promise.status.in_(("kept", "broken")),
                              Promise.resolved_at >= stamp).order_by(Promise.id)
    ):
        kind = events.PROMISE_KEPT if promise.status == "kept" else events.PROMISE_BROKEN
        done += events.record(session, kind, case.account_id, _promise_payload(session, promise), now,
                              key=f"{kind}:{promise.id}")
    return done


def promises_kept_on_import(conn: Connection, case_ids: Sequence[int], now: dt.datetime) -> int:
    """The account import closed these cases as paid (bulk, on a Connection): one event per kept
    promise of theirs not recorded yet (a case is closed once, so its kept promises were kept now)."""
    done = 0
    for start in range(0, len(case_ids), 500):
        rows = conn.execute(
            select(Promise, DebtCase.account_id, DebtCase.state, DebtCase.amount_owed, DebtCase.currency)
            .join(DebtCase, DebtCase.id == Promise.debt_case_id)
            .where(Promise.debt_case_id.in_(case_ids[start:start + 500]), Promise.status == "kept")
            .order_by(Promise.id)
        ).all()
        for row in rows:
            payload = {
                "promise_id": row.id, "promised_date": _iso(row.promised_date), "amount": _money(row.amount),
                "source": row.source, "status": row.status, "stage": row.stage_code, "attempt_id": row.attempt_id,
                "made_at": _iso(row.created_at), "resolved_at": _iso(row.resolved_at), "case_id": row.debt_case_id,
                "case_state": row.state, "amount_owed": _money(row.amount_owed), "currency": row.currency,
            }
            done += events.record(conn, events.PROMISE_KEPT, row.account_id, payload, now,
                                  key=f"{events.PROMISE_KEPT}:{row.id}")
    return done


def opt_out_added(session: Db, account_id: int | None, phone: str | None, now: dt.datetime) -> int:
    """The newest opt-out of this account (or, without an account, of this phone number): one
    event for the account, or for every account that lists the number."""
    opt = session.execute(_NEWEST_OPT_OUT_OF_ACCOUNT, {"f_account": account_id}).first() if account_id is not None \
        else session.execute(_NEWEST_OPT_OUT_OF_PHONE, {"f_phone": phone}).first()
    if opt is None:
        return 0
    accounts = [opt.account_id] if opt.account_id is not None else list(
        session.execute(_ACCOUNTS_OF_NUMBER, {"f_phone": opt.phone}).scalars()
    )
    payload = {"opt_out_id": opt.id, "phone": opt.phone, "source": opt.source, "note": opt.note,
               "created_at": _iso(opt.created_at)}
    return sum(events.record(session, events.OPT_OUT, acc, payload, now, key=f"{events.OPT_OUT}:{opt.id}:{acc}")
               for acc in accounts)


def block_list_changed(session: Session, account_id: int, now: dt.datetime) -> bool:
    """The account's block-list entry was added (or re-added) or removed at `now`."""
    entry = session.scalar(select(BlockListEntry).where(BlockListEntry.account_id == account_id))
    stamp = naive_utc(now)
    if entry is None:
        return False
    payload = {"stage": entry.stage_code, "amount_owed": _money(entry.amount_owed),
               "added_at": _iso(entry.added_at), "removed_at": _iso(entry.removed_at),
               "case_id": entry.debt_case_id}
    if entry.removed_at is not None and entry.removed_at >= stamp:
        return events.record(session, events.BLOCK_REMOVED, account_id, payload, now,
                             key=f"{events.BLOCK_REMOVED}:{entry.id}:{entry.removed_at.isoformat()}")
    if entry.removed_at is None and entry.added_at >= stamp:
        return events.record(session, events.BLOCK_ADDED, account_id, payload, now,
                             key=f"{events.BLOCK_ADDED}:{entry.id}:{entry.added_at.isoformat()}")
    return False


def callback_done(session: Session, task: CallbackTask, now: dt.datetime) -> bool:
    """An operator finished a callback task."""
    operator = session.get(User, task.claimed_by) if task.claimed_by is not None else None
    reason = session.get(Reason, task.reason_id) if task.reason_id is not None else None
    payload = {
        "task_id": task.id, "queue": task.queue, "result": task.result, "next_action": task.next_action,
        "promise_date": _iso(task.promise_date), "reason": reason.code if reason is not None else None,
        "operator": operator.username if operator is not None else None, "attempt_id": task.attempt_id,
        "done_at": _iso(task.done_at), "case_id": task.debt_case_id,
    }
    return events.record(session, events.CALLBACK_DONE, task.account_id, payload, now,
                         key=f"{events.CALLBACK_DONE}:{task.id}")
