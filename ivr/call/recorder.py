"""Stores what the call establishes, the moment it is known: a hang-up at any point keeps what
was already captured.

Every fact goes to the process's single writer (ivr/call/writer.py): the call script puts it on
the writer's queue and goes on at once; the writer applies it with SQLAlchemy Core statements and
commits it with the facts of the other calls that arrived in the same few milliseconds (group
commit). A call's facts are applied in the order the script made them. Where the script needs an
answer (a task id), it awaits a future that resolves once the writer has committed; the call's
data at the start is read on a worker thread, not behind the writer's queue; `finish` also waits, so when the handler returns every fact of the call is
stored. Outbox events (ivr/outbox) are written in the same transaction as the fact that causes
them, as before."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

from sqlalchemy import DateTime, String, Table, bindparam, case, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from ivr.call.tasks import raise_callback_core
from ivr.call.writer import FactWriter
from ivr.clock import Clock
from ivr.db.models import (
    Account,
    AttemptResult,
    AttemptState,
    CallAttempt,
    CallStep,
    CaseState,
    DebtCase,
    OptOut,
    Outcome,
    PhoneNumber,
    Promise,
    Reason,
)
from ivr.outbox import facts as outbox

log = logging.getLogger(__name__)

_ATTEMPTS = cast(Table, CallAttempt.__table__)
_ACCOUNTS = cast(Table, Account.__table__)
_CASES = cast(Table, DebtCase.__table__)
_OUTCOMES = cast(Table, Outcome.__table__)
_STEPS = cast(Table, CallStep.__table__)
_PROMISES = cast(Table, Promise.__table__)
_REASONS = cast(Table, Reason.__table__)
_PHONES = cast(Table, PhoneNumber.__table__)
_OPT_OUTS = cast(Table, OptOut.__table__)

# Built once, with bound parameters: building a statement and computing its cache key cost more
# CPU than running it. Parameter names start with b_ (a name equal to a column would be taken as
# a SET value).
_B = bindparam
_INSERT_STEP = insert(_STEPS)
_INSERT_OUTCOME = insert(_OUTCOMES)
_INSERT_PROMISE = insert(_PROMISES)
_INSERT_OPT_OUT = insert(_OPT_OUTS)
_LOAD = (
    select(_ATTEMPTS.c.id, _ATTEMPTS.c.state, _ATTEMPTS.c.result, _ATTEMPTS.c.originated_at, _ATTEMPTS.c.uniqueid,
           _ATTEMPTS.c.server, _ATTEMPTS.c.account_id, _ATTEMPTS.c.debt_case_id, _ATTEMPTS.c.phone_number_id,
           _ATTEMPTS.c.phone, _ATTEMPTS.c.stage_code, _ATTEMPTS.c.language, _ATTEMPTS.c.purpose,
           _ACCOUNTS.c.language.label("account_language"), _ACCOUNTS.c.holder_name, _ACCOUNTS.c.block_date,
           _ACCOUNTS.c.balance, _ACCOUNTS.c.timezone,
           _CASES.c.id.label("case_id"), _CASES.c.amount_owed, _CASES.c.state.label("case_state"))
    .select_from(_ATTEMPTS.join(_ACCOUNTS, _ACCOUNTS.c.id == _ATTEMPTS.c.account_id)
                 .outerjoin(_CASES, _CASES.c.id == _ATTEMPTS.c.debt_case_id))
    .where(_ATTEMPTS.c.action_id == _B("b_call", type_=String()))
)
_ANSWERED = update(_ATTEMPTS).where(_ATTEMPTS.c.id == _B("b_attempt")).values(
    # a DONE attempt (the dialer saw the hang-up first) stays done
    state=case((_ATTEMPTS.c.state == AttemptState.DONE.value, _ATTEMPTS.c.state), else_=AttemptState.ANSWERED.value),
    answered_at=func.coalesce(_ATTEMPTS.c.answered_at, _B("b_now", type_=DateTime())),
    amd_status=_B("b_amd", type_=String()),
)
_OUTCOME_ID = select(_OUTCOMES.c.id).where(_OUTCOMES.c.attempt_id == _B("b_attempt"))
_ATTEMPT_RESULT = update(_ATTEMPTS).where(_ATTEMPTS.c.id == _B("b_attempt")).values(result=_B("b_result", type_=String()))
_PHONE_WRONG_PARTY = update(_PHONES).where(_PHONES.c.id == _B("b_phone")).values(
    status="wrong_party", status_at=_B("b_now", type_=DateTime()))
_CASE_AMOUNT = select(_CASES.c.amount_owed).where(_CASES.c.id == _B("b_case"))
_CANCEL_PENDING_PROMISES = update(_PROMISES).where(
    _PROMISES.c.debt_case_id == _B("b_case"), _PROMISES.c.status == "pending",
).values(status="cancelled", resolved_at=_B("b_now", type_=DateTime()))
_CASE_PROMISED = update(_CASES).where(_CASES.c.id == _B("b_case")).values(
    state=case((_CASES.c.state == CaseState.ACTIVE.value, CaseState.PROMISED.value), else_=_CASES.c.state),
    promise_broken=False)
_CASE_PAID_CLAIM = update(_CASES).where(_CASES.c.id == _B("b_case")).values(
    next_attempt_at=_B("b_next", type_=DateTime()), wait_reason="paid_claim")
_CASE_UNSCHEDULED = update(_CASES).where(_CASES.c.id == _B("b_case")).values(next_attempt_at=None)
_REASON_BY_CODE = select(_REASONS.c.id, _REASONS.c.actionable, _REASONS.c.route).where(
    _REASONS.c.code == _B("b_code", type_=String()))
_FINISH_RESULT = update(_ATTEMPTS).where(_ATTEMPTS.c.id == _B("b_attempt"), _ATTEMPTS.c.result.is_(None)).values(
    result=AttemptResult.ANSWERED.value)
_FINISH_KIND = update(_OUTCOMES).where(_OUTCOMES.c.attempt_id == _B("b_attempt"), _OUTCOMES.c.kind.is_(None)).values(
    kind=_B("b_kind", type_=String()))


@functools.cache
def _outcome_update(columns: tuple[str, ...]) -> Any:
    """UPDATE of the call's outcome row setting `columns` (parameters v_<column>)."""
    return update(_OUTCOMES).where(_OUTCOMES.c.attempt_id == _B("b_attempt")).values(
        {name: _B(f"v_{name}", type_=_OUTCOMES.c[name].type) for name in columns})


class CallRefused(Exception):
    """The call id names an attempt that may not run the call script now: it is done, was never
    sent, was given up as lost, or runs on another channel or Asterisk. Replaying a finished call's
    id must not rewrite what that call stored."""


# States in which Asterisk may legitimately connect for an attempt (claimed only once sent).
_ADMITTED = (AttemptState.CLAIMED.value, AttemptState.DIALING.value, AttemptState.ANSWERED.value)


class AttemptLike(Protocol):
    """What `refusal` reads of an attempt: a CallAttempt or a row with these columns."""

    @property
    def state(self) -> str: ...
    @property
    def result(self) -> str | None: ...
    @property
    def originated_at(self) -> dt.datetime | None: ...
    @property
    def uniqueid(self) -> str | None: ...
    @property
    def server(self) -> str | None: ...


def refusal(attempt: AttemptLike, uniqueid: str | None, peer: str | None,
            sources: Mapping[str, Callable[[str], bool]]) -> str | None:
    """Why a FastAGI connection for `attempt` must be refused, or None to run the call.

    `uniqueid` is the connecting channel's agi_uniqueid: once the dialer stored the uniqueid of
    the channel Asterisk originated (OriginateResponse), only that channel may run the call.
    `sources` maps an Asterisk server's name to a test of the peer address, for servers whose
    FastAGI source addresses are configured (IVR_AST_<NAME>_AGI_FROM)."""
    if attempt.state not in _ADMITTED:
        if attempt.state == AttemptState.DONE.value:
            return f"already done ({attempt.result or 'no result'})"
        return f"not in flight (state {attempt.state})"
    if attempt.state == AttemptState.CLAIMED.value and attempt.originated_at is None:
        return "never sent to Asterisk"
    if uniqueid and attempt.uniqueid and uniqueid != attempt.uniqueid:
        return f"in flight on another channel (uniqueid {attempt.uniqueid}, this connection {uniqueid})"
    allowed = sources.get(attempt.server or "")
    if allowed is not None and peer is not None and not allowed(peer):
        return f"in flight on Asterisk server {attempt.server}, not on {peer}"
    return None


@dataclass(frozen=True)
class CallInfo:
    """What the script needs to know about the call it is running."""

    attempt_id: int
    account_id: int
    case_id: int | None
    phone_number_id: int | None
    phone: str
    stage_code: str | None
    language: str
    holder_name: str
    block_date: dt.date | None
    amount_owed: Decimal
    timezone: str
    case_state: str | None
    purpose: str = "robot"  # robot | thanks (issue 16: a thank-you call after a payment)


def _naive(now: dt.datetime) -> dt.datetime:
    return now.astimezone(dt.UTC).replace(tzinfo=None) if now.tzinfo else now


def _outcome_params(attempt_id: int, values: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    params = {f"v_{name}": value for name, value in values.items()}
    params["b_attempt"] = attempt_id
    return _outcome_update(tuple(values)), params


def _set_outcome(conn: Connection, info: CallInfo, values: Mapping[str, Any]) -> None:
    """Update the call's outcome row (`answered` created it); create it if it is missing."""
    stmt, params = _outcome_params(info.attempt_id, values)
    if outbox.events.rowcount(conn.execute(stmt, params)) == 0:
        conn.execute(_INSERT_OUTCOME, {"attempt_id": info.attempt_id, "debt_case_id": info.case_id, **values})


def _update_outcome_if_any(conn: Connection, attempt_id: int, values: Mapping[str, Any]) -> None:
    conn.execute(*_outcome_params(attempt_id, values))


class CallRecorder:
    """The call script's facts, as statements for the writer. Without a `writer` the recorder
    starts its own (closed by `close()`, or at process exit): one process per call (classic AGI)
    and tests."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock, default_timezone: str = "Europe/Moscow",
                 *, agi_sources: Mapping[str, Callable[[str], bool]] | None = None,
                 writer: FactWriter | None = None) -> None:
        self._sessions = sessions
        self._agi_sources = dict(agi_sources or {})
        self._clock = clock
        self._default_tz = default_timezone
        self._seq: dict[int, int] = {}
        self._own_writer = writer is None
        if writer is None:
            engine = sessions.kw.get("bind")
            if engine is None:
                raise ValueError("CallRecorder needs a writer or a session factory bound to an engine")
            writer = FactWriter(engine)
        self.writer = writer

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush and stop the writer if this recorder started it (a shared one is closed by its
        owner)."""
        if self._own_writer:
            self.writer.close(timeout)

    def _now(self) -> dt.datetime:
        return _naive(self._clock.now())

    # -- loading ---------------------------------------------------------------------------
    async def load(self, call_id: str, *, uniqueid: str | None = None, peer: str | None = None) -> CallInfo | None:
        """The call's facts, None for an unknown call id; CallRefused when the attempt may not run
        now (see `refusal`). One query by the unique index on action_id, on a worker thread and
        a pooled connection of its own: the call's first command must not wait behind the
        writer's queue (nothing queued there concerns a call that has not started)."""
        engine = self.writer.engine

        def read() -> Any:
            with engine.connect() as conn:
                return conn.execute(_LOAD, {"b_call": call_id}).first()

        row = await asyncio.to_thread(read)
        if row is None:
            return None
        why = refusal(row, uniqueid, peer, self._agi_sources)
        if why is not None:
            raise CallRefused(f"attempt {row.id} ({call_id}): {why}")
        tz = row.timezone or self._default_tz
        try:
            ZoneInfo(tz)
        except Exception:  # noqa: BLE001 - bad data must not break the call; fall back
            tz = self._default_tz
        return CallInfo(
            attempt_id=row.id, account_id=row.account_id, case_id=row.case_id,
            phone_number_id=row.phone_number_id, phone=row.phone, stage_code=row.stage_code,
            language=row.language or row.account_language, holder_name=row.holder_name,
            block_date=row.block_date, amount_owed=row.amount_owed if row.case_id is not None else row.balance,
            timezone=tz, case_state=row.case_state, purpose=row.purpose or "robot",
        )

    def local_today(self, info: CallInfo) -> dt.date:
        return self._clock.now().astimezone(ZoneInfo(info.timezone)).date()

    # -- facts -----------------------------------------------------------------------------
    # Each method queues one fact and returns at once (see the module docstring); the fact's
    # time is taken here, when the script learns it, not when the writer applies it.
    def _label(self, info: CallInfo, what: str) -> str:
        return f"{what} (attempt {info.attempt_id})"

    async def answered(self, info: CallInfo, amd_status: str | None) -> None:
        now = self._now()

        def fact(conn: Connection) -> None:
            conn.execute(_ANSWERED, {"b_attempt": info.attempt_id, "b_now": now, "b_amd": amd_status})
            if conn.execute(_OUTCOME_ID, {"b_attempt": info.attempt_id}).first() is None:
                conn.execute(_INSERT_OUTCOME, {"attempt_id": info.attempt_id, "debt_case_id": info.case_id,
                                               "created_at": now})

        self.writer.write(fact, self._label(info, "answered"))

    async def step(self, info: CallInfo, step: str, keys: str = "", result: str = "ok", detail: str = "") -> None:
        seq = self._seq.get(info.attempt_id, 0) + 1
        self._seq[info.attempt_id] = seq
        row = {"attempt_id": info.attempt_id, "seq": seq, "step": step, "keys": keys[:40], "result": result[:40],
               "detail": detail[:200], "created_at": self._now()}
        # a plain row: the steps of a group go in as one executemany
        self.writer.write_row(_INSERT_STEP, row, "step")

    async def _outcome(self, info: CallInfo, what: str, **values: object) -> None:
        def fact(conn: Connection) -> None:
            _set_outcome(conn, info, values)

        self.writer.write(fact, self._label(info, what))

    async def identity(self, info: CallInfo, confirmed: bool) -> None:
        await self._outcome(info, "identity", identity="confirmed" if confirmed else "denied")

    async def message_delivered(self, info: CallInfo) -> None:
        await self._outcome(info, "message delivered", message_delivered=True)

    async def wrong_party(self, info: CallInfo) -> None:
        now = self._now()

        def fact(conn: Connection) -> None:
            conn.execute(_ATTEMPT_RESULT, {"b_attempt": info.attempt_id, "b_result": AttemptResult.WRONG_PARTY.value})
            if info.phone_number_id is not None:
                conn.execute(_PHONE_WRONG_PARTY, {"b_phone": info.phone_number_id, "b_now": now})
            _update_outcome_if_any(conn, info.attempt_id, {"identity": "denied", "kind": "wrong_party"})

        self.writer.write(fact, self._label(info, "wrong party"))

    async def machine(self, info: CallInfo, message_left: bool) -> None:
        def fact(conn: Connection) -> None:
            conn.execute(_ATTEMPT_RESULT, {"b_attempt": info.attempt_id, "b_result": AttemptResult.MACHINE.value})
            _update_outcome_if_any(conn, info.attempt_id, {"kind": "machine"})

        self.writer.write(fact, self._label(info, "machine"))

    async def promise(self, info: CallInfo, date: dt.date) -> None:
        now = self._now()

        def fact(conn: Connection) -> None:
            if info.case_id is not None:
                amount = conn.execute(_CASE_AMOUNT, {"b_case": info.case_id}).scalar_one()
                # a new promise replaces the case's pending one
                conn.execute(_CANCEL_PENDING_PROMISES, {"b_case": info.case_id, "b_now": now})
                conn.execute(_INSERT_PROMISE, {
                    "debt_case_id": info.case_id, "attempt_id": info.attempt_id, "source": "robot",
                    "promised_date": date, "amount": amount, "status": "pending", "stage_code": info.stage_code,
                    "created_at": now})
                conn.execute(_CASE_PROMISED, {"b_case": info.case_id})
                outbox.promise_made(conn, info.case_id, now)
            _update_outcome_if_any(conn, info.attempt_id, {"kind": "promise", "promise_date": date})

        self.writer.write(fact, self._label(info, "promise"))

    async def paid_claim(self, info: CallInfo, grace_days: int) -> None:
        now = self._now()

        def fact(conn: Connection) -> None:
            if info.case_id is not None:
                # wait for the payment to reach billing before calling again
                conn.execute(_CASE_PAID_CLAIM, {"b_case": info.case_id, "b_next": now + dt.timedelta(days=grace_days)})
            _update_outcome_if_any(conn, info.attempt_id, {"kind": "paid_claim", "paid_claim": True})

        self.writer.write(fact, self._label(info, "paid claim"))

    async def reason(self, info: CallInfo, code: str | None) -> int | None:
        """Store the reason (None = the subscriber entered the reason menu but gave no valid
        key); an actionable one raises a callback task on its route. Returns the task id (the
        script waits for it: it only promises a call-back once the task is stored)."""
        now = self._now()

        def fact(conn: Connection) -> int | None:
            reason = conn.execute(_REASON_BY_CODE, {"b_code": code}).first() if code else None
            _update_outcome_if_any(conn, info.attempt_id, {"kind": "reason", "reason_id": reason.id if reason else None})
            if reason is None or not reason.actionable or not reason.route:
                return None
            return raise_callback_core(conn, account_id=info.account_id, case_id=info.case_id,
                                       attempt_id=info.attempt_id, reason_id=reason.id, queue=reason.route, now=now)

        return await self.writer.call(fact, self._label(info, "reason"))

    async def refusal(self, info: CallInfo) -> None:
        await self._outcome(info, "refusal", kind="refusal")

    async def human_request(self, info: CallInfo, queue: str) -> None:
        """A person asked for: a callback task in `queue` (queued; the script does not wait)."""
        now = self._now()

        def fact(conn: Connection) -> int:
            _update_outcome_if_any(conn, info.attempt_id, {"kind": "human_request", "human_requested": True})
            return raise_callback_core(conn, account_id=info.account_id, case_id=info.case_id,
                                       attempt_id=info.attempt_id, queue=queue, now=now, priority=3)

        self.writer.write(fact, self._label(info, "human request"))

    async def opt_out(self, info: CallInfo) -> None:
        now = self._now()

        def fact(conn: Connection) -> None:
            conn.execute(_INSERT_OPT_OUT, {"account_id": info.account_id, "phone": info.phone, "source": "keypad",
                                           "note": f"attempt {info.attempt_id}", "created_at": now})
            if info.case_id is not None:
                # off the robot's schedule at once; the debt itself stays open for billing and
                # operators
                conn.execute(_CASE_UNSCHEDULED, {"b_case": info.case_id})
            _update_outcome_if_any(conn, info.attempt_id, {"kind": "opt_out", "opted_out": True})
            outbox.opt_out_added(conn, info.account_id, info.phone, now)

        self.writer.write(fact, self._label(info, "opt-out"))

    async def finish(self, info: CallInfo, default_kind: str) -> None:
        """Always runs at the end of the script (also after a hang-up): the outcome gets a final
        kind, and the attempt a result, unless something more specific was stored already.
        The outcome is final now: it goes to the billing outbox in the same transaction.
        Returns once this and every earlier fact of the call is committed (or logged as lost):
        the call is over, nothing waits on it, and whoever reads after the handler sees it all."""
        now = self._now()
        self._seq.pop(info.attempt_id, None)

        def fact(conn: Connection) -> None:
            conn.execute(_FINISH_RESULT, {"b_attempt": info.attempt_id})
            conn.execute(_FINISH_KIND, {"b_attempt": info.attempt_id, "b_kind": default_kind})
            outbox.call_outcome(conn, info.attempt_id, now)

        try:
            await self.writer.call(fact, self._label(info, "finish"))
        except Exception:  # noqa: BLE001 - the writer logged it; the call is over either way
            log.debug("attempt %s: final write failed", info.attempt_id, exc_info=True)
