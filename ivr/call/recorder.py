"""Writes what the call establishes, one small transaction per fact, the moment it is known:
a hang-up at any point keeps what was already captured.

The call script runs on the asyncio loop; SQLAlchemy sessions are blocking, so every write goes to
a worker thread (asyncio.to_thread) and the loop keeps serving other calls."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ivr.call.tasks import raise_callback
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
T = TypeVar("T")


class CallRefused(Exception):
    """The call id names an attempt that may not run the call script now: it is done, was never
    sent, was given up as lost, or runs on another channel or Asterisk. Replaying a finished call's
    id must not rewrite what that call stored."""


# States in which Asterisk may legitimately connect for an attempt (claimed only once sent).
_ADMITTED = (AttemptState.CLAIMED.value, AttemptState.DIALING.value, AttemptState.ANSWERED.value)


def refusal(attempt: CallAttempt, uniqueid: str | None, peer: str | None,
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


class CallRecorder:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock, default_timezone: str = "Europe/Moscow",
                 *, agi_sources: Mapping[str, Callable[[str], bool]] | None = None) -> None:
        self._sessions = sessions
        self._agi_sources = dict(agi_sources or {})
        self._clock = clock
        self._default_tz = default_timezone
        self._seq: dict[int, int] = {}

    async def _run(self, fn: Callable[[Session], T]) -> T:
        def work() -> T:
            with self._sessions.begin() as session:
                return fn(session)

        return await asyncio.to_thread(work)

    def _now(self) -> dt.datetime:
        return _naive(self._clock.now())

    # -- loading ---------------------------------------------------------------------------
    async def load(self, call_id: str, *, uniqueid: str | None = None, peer: str | None = None) -> CallInfo | None:
        """The call's facts, None for an unknown call id; CallRefused when the attempt may not run
        now (see `refusal`). The check costs nothing extra: it reads the row found by the unique
        index on action_id, before anything else is loaded."""

        def fn(session: Session) -> CallInfo | None:
            attempt = session.scalar(select(CallAttempt).where(CallAttempt.action_id == call_id))
            if attempt is None:
                return None
            why = refusal(attempt, uniqueid, peer, self._agi_sources)
            if why is not None:
                raise CallRefused(f"attempt {attempt.id} ({call_id}): {why}")
            account = session.get(Account, attempt.account_id)
            assert account is not None
            case = session.get(DebtCase, attempt.debt_case_id) if attempt.debt_case_id else None
            tz = account.timezone or self._default_tz
            try:
                ZoneInfo(tz)
            except Exception:  # noqa: BLE001 - bad data must not break the call; fall back
                tz = self._default_tz
            return CallInfo(
                attempt_id=attempt.id, account_id=account.id, case_id=case.id if case else None,
                phone_number_id=attempt.phone_number_id, phone=attempt.phone, stage_code=attempt.stage_code,
                language=attempt.language or account.language, holder_name=account.holder_name,
                block_date=account.block_date, amount_owed=case.amount_owed if case else account.balance,
                timezone=tz, case_state=case.state if case else None, purpose=attempt.purpose or "robot",
            )

        return await self._run(fn)

    def local_today(self, info: CallInfo) -> dt.date:
        return self._clock.now().astimezone(ZoneInfo(info.timezone)).date()

    # -- facts -----------------------------------------------------------------------------
    async def answered(self, info: CallInfo, amd_status: str | None) -> None:
        now = self._now()

        def fn(session: Session) -> None:
            attempt = session.get(CallAttempt, info.attempt_id)
            assert attempt is not None
            if attempt.state not in (AttemptState.DONE.value,):
                attempt.state = AttemptState.ANSWERED.value
            attempt.answered_at = attempt.answered_at or now
            attempt.amd_status = amd_status
            if attempt.outcome is None:
                session.add(Outcome(attempt_id=attempt.id, debt_case_id=info.case_id, created_at=now))

        await self._run(fn)

    async def step(self, info: CallInfo, step: str, keys: str = "", result: str = "ok", detail: str = "") -> None:
        seq = self._seq.get(info.attempt_id, 0) + 1
        self._seq[info.attempt_id] = seq
        now = self._now()

        def fn(session: Session) -> None:
            session.add(CallStep(attempt_id=info.attempt_id, seq=seq, step=step, keys=keys[:40],
                                 result=result[:40], detail=detail[:200], created_at=now))

        await self._run(fn)

    async def _outcome(self, info: CallInfo, **values: object) -> None:
        def fn(session: Session) -> None:
            outcome = session.scalar(select(Outcome).where(Outcome.attempt_id == info.attempt_id))
            if outcome is None:
                outcome = Outcome(attempt_id=info.attempt_id, debt_case_id=info.case_id)
                session.add(outcome)
            for key, value in values.items():
                setattr(outcome, key, value)

        await self._run(fn)

    async def identity(self, info: CallInfo, confirmed: bool) -> None:
        await self._outcome(info, identity="confirmed" if confirmed else "denied")

    async def message_delivered(self, info: CallInfo) -> None:
        await self._outcome(info, message_delivered=True)

    async def wrong_party(self, info: CallInfo) -> None:
        now = self._now()

        def fn(session: Session) -> None:
            attempt = session.get(CallAttempt, info.attempt_id)
            assert attempt is not None
            attempt.result = AttemptResult.WRONG_PARTY.value
            if info.phone_number_id is not None:
                phone = session.get(PhoneNumber, info.phone_number_id)
                if phone is not None:
                    phone.status = "wrong_party"
                    phone.status_at = now
            outcome = session.scalar(select(Outcome).where(Outcome.attempt_id == info.attempt_id))
            if outcome is not None:
                outcome.identity = "denied"
                outcome.kind = "wrong_party"

        await self._run(fn)

    async def machine(self, info: CallInfo, message_left: bool) -> None:
        def fn(session: Session) -> None:
            attempt = session.get(CallAttempt, info.attempt_id)
            assert attempt is not None
            attempt.result = AttemptResult.MACHINE.value
            outcome = session.scalar(select(Outcome).where(Outcome.attempt_id == info.attempt_id))
            if outcome is not None:
                outcome.kind = "machine"

        await self._run(fn)

    async def promise(self, info: CallInfo, date: dt.date) -> None:
        now = self._now()

        def fn(session: Session) -> None:
            if info.case_id is not None:
                case = session.get(DebtCase, info.case_id)
                assert case is not None
                for old in case.promises:
                    if old.status == "pending":
                        old.status = "cancelled"
                        old.resolved_at = now
                session.add(Promise(debt_case_id=case.id, attempt_id=info.attempt_id, source="robot",
                                    promised_date=date, amount=case.amount_owed, status="pending",
                                    stage_code=info.stage_code, created_at=now))
                if case.state == CaseState.ACTIVE.value:
                    case.state = CaseState.PROMISED.value
                case.promise_broken = False
                outbox.promise_made(session, case.id, now)
            outcome = session.scalar(select(Outcome).where(Outcome.attempt_id == info.attempt_id))
            if outcome is not None:
                outcome.kind = "promise"
                outcome.promise_date = date

        await self._run(fn)

    async def paid_claim(self, info: CallInfo, grace_days: int) -> None:
        now = self._now()

        def fn(session: Session) -> None:
            if info.case_id is not None:
                case = session.get(DebtCase, info.case_id)
                assert case is not None
                # wait for the payment to reach billing before calling again
                case.next_attempt_at = now + dt.timedelta(days=grace_days)
                case.wait_reason = "paid_claim"
            outcome = session.scalar(select(Outcome).where(Outcome.attempt_id == info.attempt_id))
            if outcome is not None:
                outcome.kind = "paid_claim"
                outcome.paid_claim = True

        await self._run(fn)

    async def reason(self, info: CallInfo, code: str | None) -> int | None:
        """Store the reason (None = the subscriber entered the reason menu but gave no valid
        key); an actionable one raises a callback task on its route. Returns the task id."""
        now = self._now()

        def fn(session: Session) -> int | None:
            reason = session.scalar(select(Reason).where(Reason.code == code)) if code else None
            outcome = session.scalar(select(Outcome).where(Outcome.attempt_id == info.attempt_id))
            if outcome is not None:
                outcome.kind = "reason"
                outcome.reason_id = reason.id if reason else None
            if reason is None or not reason.actionable or not reason.route:
                return None
            task = raise_callback(session, account_id=info.account_id, case_id=info.case_id,
                                  attempt_id=info.attempt_id, reason_id=reason.id, queue=reason.route, now=now)
            return task.id

        return await self._run(fn)

    async def refusal(self, info: CallInfo) -> None:
        await self._outcome(info, kind="refusal")

    async def human_request(self, info: CallInfo, queue: str) -> int:
        now = self._now()

        def fn(session: Session) -> int:
            outcome = session.scalar(select(Outcome).where(Outcome.attempt_id == info.attempt_id))
            if outcome is not None:
                outcome.kind = "human_request"
                outcome.human_requested = True
            task = raise_callback(session, account_id=info.account_id, case_id=info.case_id,
                                  attempt_id=info.attempt_id, queue=queue, now=now, priority=3)
            return task.id

        return await self._run(fn)

    async def opt_out(self, info: CallInfo) -> None:
        now = self._now()

        def fn(session: Session) -> None:
            session.add(OptOut(account_id=info.account_id, phone=info.phone, source="keypad",
                               note=f"attempt {info.attempt_id}", created_at=now))
            if info.case_id is not None:
                case = session.get(DebtCase, info.case_id)
                if case is not None:
                    # off the robot's schedule at once; the debt itself stays open for billing
                    # and operators
                    case.next_attempt_at = None
            outcome = session.scalar(select(Outcome).where(Outcome.attempt_id == info.attempt_id))
            if outcome is not None:
                outcome.kind = "opt_out"
                outcome.opted_out = True
            outbox.opt_out_added(session, info.account_id, info.phone, now)

        await self._run(fn)

    async def finish(self, info: CallInfo, default_kind: str) -> None:
        """Always runs at the end of the script (also after a hang-up): the outcome gets a final
        kind, and the attempt a result, unless something more specific was stored already.
        The outcome is final now: it goes to the billing outbox in the same transaction."""
        now = self._now()

        def fn(session: Session) -> None:
            attempt = session.get(CallAttempt, info.attempt_id)
            assert attempt is not None
            if attempt.result is None:
                attempt.result = AttemptResult.ANSWERED.value
            outcome = session.scalar(select(Outcome).where(Outcome.attempt_id == info.attempt_id))
            if outcome is not None and outcome.kind is None:
                outcome.kind = default_kind
            outbox.call_outcome(session, info.attempt_id, now)

        await self._run(fn)
        self._seq.pop(info.attempt_id, None)
