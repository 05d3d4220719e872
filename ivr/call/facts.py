"""The facts a call establishes, as functions of a SQLAlchemy Core `Connection` that the facts
writer (ivr/call/writer.py) applies.

Every fact is a module-level function taking the connection and keyword arguments of plain
values (ids, dates, strings), and the recorder queues it as `functools.partial(fact, ...)`. Why
not closures: a partial of a module-level function pickles, so the same fact can be applied in
this process (the writer thread) or sent to the facts writer process
(ivr/call/writer_process.py), which keeps all of the database work of call facts, and the GIL it
holds, out of the process that serves the calls. `STEP_TABLE` rows (the call steps) go in as
plain rows (`FactWriter.write_row`)."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import DateTime, String, bindparam, case, func, insert, select, update
from sqlalchemy.engine import Connection

from ivr.call.tasks import raise_callback_core
from ivr.db.models import (
    AttemptResult,
    AttemptState,
    CaseState,
)
from ivr.db.tables import (
    ACCOUNTS,
    ATTEMPTS,
    CASES,
    OPT_OUTS,
    OUTCOMES,
    PHONES,
    PROMISES,
    REASONS,
    STEPS,
)
from ivr.outbox import facts as outbox

# Built once, with bound parameters: building a statement and computing its cache key cost more
# CPU than running it. Parameter names start with b_ (a name equal to a column would be taken as
# a SET value).
_B = bindparam
INSERT_STEP = insert(STEPS)
_INSERT_OUTCOME = insert(OUTCOMES)
_INSERT_PROMISE = insert(PROMISES)
_INSERT_OPT_OUT = insert(OPT_OUTS)
LOAD = (
    select(ATTEMPTS.c.id, ATTEMPTS.c.state, ATTEMPTS.c.result, ATTEMPTS.c.originated_at, ATTEMPTS.c.uniqueid,
           ATTEMPTS.c.server, ATTEMPTS.c.account_id, ATTEMPTS.c.debt_case_id, ATTEMPTS.c.phone_number_id,
           ATTEMPTS.c.phone, ATTEMPTS.c.stage_code, ATTEMPTS.c.language, ATTEMPTS.c.purpose,
           ACCOUNTS.c.language.label("account_language"), ACCOUNTS.c.holder_name, ACCOUNTS.c.block_date,
           ACCOUNTS.c.balance, ACCOUNTS.c.timezone,
           CASES.c.id.label("case_id"), CASES.c.amount_owed, CASES.c.state.label("case_state"))
    .select_from(ATTEMPTS.join(ACCOUNTS, ACCOUNTS.c.id == ATTEMPTS.c.account_id)
                 .outerjoin(CASES, CASES.c.id == ATTEMPTS.c.debt_case_id))
    .where(ATTEMPTS.c.action_id == _B("b_call", type_=String()))
)
_ANSWERED = update(ATTEMPTS).where(ATTEMPTS.c.id == _B("b_attempt")).values(
    # a DONE attempt (the dialer saw the hang-up first) stays done
    state=case((ATTEMPTS.c.state == AttemptState.DONE.value, ATTEMPTS.c.state), else_=AttemptState.ANSWERED.value),
    answered_at=func.coalesce(ATTEMPTS.c.answered_at, _B("b_now", type_=DateTime())),
    amd_status=_B("b_amd", type_=String()),
)
_OUTCOME_ID = select(OUTCOMES.c.id).where(OUTCOMES.c.attempt_id == _B("b_attempt"))
_ATTEMPT_RESULT = update(ATTEMPTS).where(ATTEMPTS.c.id == _B("b_attempt")).values(result=_B("b_result", type_=String()))
_PHONE_WRONG_PARTY = update(PHONES).where(PHONES.c.id == _B("b_phone")).values(
    status="wrong_party", status_at=_B("b_now", type_=DateTime()))
_CASE_AMOUNT = select(CASES.c.amount_owed).where(CASES.c.id == _B("b_case"))
_CANCEL_PENDING_PROMISES = update(PROMISES).where(
    PROMISES.c.debt_case_id == _B("b_case"), PROMISES.c.status == "pending",
).values(status="cancelled", resolved_at=_B("b_now", type_=DateTime()))
_CASE_PROMISED = update(CASES).where(CASES.c.id == _B("b_case")).values(
    state=case((CASES.c.state == CaseState.ACTIVE.value, CaseState.PROMISED.value), else_=CASES.c.state),
    promise_broken=False)
_CASE_PAID_CLAIM = update(CASES).where(CASES.c.id == _B("b_case")).values(
    next_attempt_at=_B("b_next", type_=DateTime()), wait_reason="paid_claim")
_CASE_UNSCHEDULED = update(CASES).where(CASES.c.id == _B("b_case")).values(next_attempt_at=None)
_REASON_BY_CODE = select(REASONS.c.id, REASONS.c.actionable, REASONS.c.route).where(
    REASONS.c.code == _B("b_code", type_=String()))
_FINISH_RESULT = update(ATTEMPTS).where(ATTEMPTS.c.id == _B("b_attempt"), ATTEMPTS.c.result.is_(None)).values(
    result=AttemptResult.ANSWERED.value)
_FINISH_KIND = update(OUTCOMES).where(OUTCOMES.c.attempt_id == _B("b_attempt"), OUTCOMES.c.kind.is_(None)).values(
    kind=_B("b_kind", type_=String()))


@functools.cache
def _outcome_update(columns: tuple[str, ...]) -> Any:
    """UPDATE of the call's outcome row setting `columns` (parameters v_<column>)."""
    return update(OUTCOMES).where(OUTCOMES.c.attempt_id == _B("b_attempt")).values(
        {name: _B(f"v_{name}", type_=OUTCOMES.c[name].type) for name in columns})


def _outcome_params(attempt_id: int, values: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    params = {f"v_{name}": value for name, value in values.items()}
    params["b_attempt"] = attempt_id
    return _outcome_update(tuple(values)), params


def set_outcome(conn: Connection, *, attempt_id: int, case_id: int | None, values: Mapping[str, Any]) -> None:
    """Update the call's outcome row (`answered` created it); create it if it is missing."""
    stmt, params = _outcome_params(attempt_id, values)
    if outbox.events.rowcount(conn.execute(stmt, params)) == 0:
        conn.execute(_INSERT_OUTCOME, {"attempt_id": attempt_id, "debt_case_id": case_id, **values})


def _update_outcome_if_any(conn: Connection, attempt_id: int, values: Mapping[str, Any]) -> None:
    conn.execute(*_outcome_params(attempt_id, values))


# -- the facts (see the module docstring) --------------------------------------------------------

def answered(conn: Connection, *, attempt_id: int, case_id: int | None, now: dt.datetime, amd: str | None) -> None:
    conn.execute(_ANSWERED, {"b_attempt": attempt_id, "b_now": now, "b_amd": amd})
    if conn.execute(_OUTCOME_ID, {"b_attempt": attempt_id}).first() is None:
        conn.execute(_INSERT_OUTCOME, {"attempt_id": attempt_id, "debt_case_id": case_id, "created_at": now})


def wrong_party(conn: Connection, *, attempt_id: int, phone_number_id: int | None, now: dt.datetime) -> None:
    conn.execute(_ATTEMPT_RESULT, {"b_attempt": attempt_id, "b_result": AttemptResult.WRONG_PARTY.value})
    if phone_number_id is not None:
        conn.execute(_PHONE_WRONG_PARTY, {"b_phone": phone_number_id, "b_now": now})
    _update_outcome_if_any(conn, attempt_id, {"identity": "denied", "kind": "wrong_party"})


def machine(conn: Connection, *, attempt_id: int) -> None:
    conn.execute(_ATTEMPT_RESULT, {"b_attempt": attempt_id, "b_result": AttemptResult.MACHINE.value})
    _update_outcome_if_any(conn, attempt_id, {"kind": "machine"})


def promise(conn: Connection, *, attempt_id: int, case_id: int | None, stage_code: str | None, date: dt.date,
            now: dt.datetime) -> None:
    if case_id is not None:
        amount = conn.execute(_CASE_AMOUNT, {"b_case": case_id}).scalar_one()
        # a new promise replaces the case's pending one
        conn.execute(_CANCEL_PENDING_PROMISES, {"b_case": case_id, "b_now": now})
        conn.execute(_INSERT_PROMISE, {
            "debt_case_id": case_id, "attempt_id": attempt_id, "source": "robot",
            "promised_date": date, "amount": amount, "status": "pending", "stage_code": stage_code,
            "created_at": now})
        conn.execute(_CASE_PROMISED, {"b_case": case_id})
        outbox.promise_made(conn, case_id, now)
    _update_outcome_if_any(conn, attempt_id, {"kind": "promise", "promise_date": date})


def paid_claim(conn: Connection, *, attempt_id: int, case_id: int | None, next_at: dt.datetime) -> None:
    if case_id is not None:
        # wait for the payment to reach billing before calling again
        conn.execute(_CASE_PAID_CLAIM, {"b_case": case_id, "b_next": next_at})
    _update_outcome_if_any(conn, attempt_id, {"kind": "paid_claim", "paid_claim": True})


def reason(conn: Connection, *, attempt_id: int, account_id: int, case_id: int | None, code: str | None,
           now: dt.datetime) -> int | None:
    """The task id of the callback an actionable reason raises, else None."""
    found = conn.execute(_REASON_BY_CODE, {"b_code": code}).first() if code else None
    _update_outcome_if_any(conn, attempt_id, {"kind": "reason", "reason_id": found.id if found else None})
    if found is None or not found.actionable or not found.route:
        return None
    return raise_callback_core(conn, account_id=account_id, case_id=case_id, attempt_id=attempt_id,
                               reason_id=found.id, queue=found.route, now=now)


def human_request(conn: Connection, *, attempt_id: int, account_id: int, case_id: int | None, queue: str,
                  now: dt.datetime) -> int:
    _update_outcome_if_any(conn, attempt_id, {"kind": "human_request", "human_requested": True})
    return raise_callback_core(conn, account_id=account_id, case_id=case_id, attempt_id=attempt_id, queue=queue,
                               now=now, priority=3)


def opt_out(conn: Connection, *, attempt_id: int, account_id: int, case_id: int | None, phone: str,
            now: dt.datetime) -> None:
    conn.execute(_INSERT_OPT_OUT, {"account_id": account_id, "phone": phone, "source": "keypad",
                                   "note": f"attempt {attempt_id}", "created_at": now})
    if case_id is not None:
        # off the robot's schedule at once; the debt itself stays open for billing and operators
        conn.execute(_CASE_UNSCHEDULED, {"b_case": case_id})
    _update_outcome_if_any(conn, attempt_id, {"kind": "opt_out", "opted_out": True})
    outbox.opt_out_added(conn, account_id, phone, now)


def finish(conn: Connection, *, attempt_id: int, default_kind: str, now: dt.datetime) -> None:
    conn.execute(_FINISH_RESULT, {"b_attempt": attempt_id})
    conn.execute(_FINISH_KIND, {"b_attempt": attempt_id, "b_kind": default_kind})
    outbox.call_outcome(conn, attempt_id, now)
