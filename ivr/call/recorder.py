"""Stores what the call establishes, the moment it is known: a hang-up at any point keeps what
was already captured.

Every fact goes to the process's single writer (ivr/call/writer.py): the call script puts it on
the writer's queue and goes on at once; the writer applies it (ivr/call/facts.py: SQLAlchemy Core
statements, in this process or the facts writer process) and commits it with the facts of the other calls that arrived in the same few milliseconds (group
commit). A call's facts are applied in the order the script made them. Where the script needs an
answer (a task id), it awaits a future that resolves once the writer has committed; the call's
data at the start is read on a worker thread, not behind the writer's queue; `finish` also waits, so when the handler returns every fact of the call is
stored. Outbox events (ivr/outbox) are written in the same transaction as the fact that causes
them, as before."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from ivr.call import facts
from ivr.call.writer import FactSink, FactWriter
from ivr.clock import Clock
from ivr.db.models import AttemptState

log = logging.getLogger(__name__)


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


class CallRecorder:
    """The call script's facts, as statements for the writer. Without a `writer` the recorder
    starts its own (closed by `close()`, or at process exit): one process per call (classic AGI)
    and tests. A `writer` given with `own_writer` is closed by `close()` too."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock, default_timezone: str = "Europe/Moscow",
                 *, agi_sources: Mapping[str, Callable[[str], bool]] | None = None,
                 writer: FactSink | None = None, own_writer: bool = False) -> None:
        self._sessions = sessions
        self._agi_sources = dict(agi_sources or {})
        self._clock = clock
        self._default_tz = default_timezone
        self._seq: dict[int, int] = {}
        self._own_writer = writer is None or own_writer
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
                return conn.execute(facts.LOAD, {"b_call": call_id}).first()

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
        self.writer.write(partial(facts.answered, attempt_id=info.attempt_id, case_id=info.case_id, now=self._now(),
                                  amd=amd_status), self._label(info, "answered"))

    async def step(self, info: CallInfo, step: str, keys: str = "", result: str = "ok", detail: str = "") -> None:
        seq = self._seq.get(info.attempt_id, 0) + 1
        self._seq[info.attempt_id] = seq
        row = {"attempt_id": info.attempt_id, "seq": seq, "step": step, "keys": keys[:40], "result": result[:40],
               "detail": detail[:200], "created_at": self._now()}
        # a plain row: the steps of a group go in as one executemany
        self.writer.write_row(facts.INSERT_STEP, row, "step")

    async def _outcome(self, info: CallInfo, what: str, **values: object) -> None:
        self.writer.write(partial(facts.set_outcome, attempt_id=info.attempt_id, case_id=info.case_id, values=values),
                          self._label(info, what))

    async def identity(self, info: CallInfo, confirmed: bool) -> None:
        await self._outcome(info, "identity", identity="confirmed" if confirmed else "denied")

    async def message_delivered(self, info: CallInfo) -> None:
        await self._outcome(info, "message delivered", message_delivered=True)

    async def wrong_party(self, info: CallInfo) -> None:
        self.writer.write(partial(facts.wrong_party, attempt_id=info.attempt_id, phone_number_id=info.phone_number_id,
                                  now=self._now()), self._label(info, "wrong party"))

    async def machine(self, info: CallInfo, message_left: bool) -> None:
        self.writer.write(partial(facts.machine, attempt_id=info.attempt_id), self._label(info, "machine"))

    async def promise(self, info: CallInfo, date: dt.date) -> None:
        self.writer.write(partial(facts.promise, attempt_id=info.attempt_id, case_id=info.case_id,
                                  stage_code=info.stage_code, date=date, now=self._now()),
                          self._label(info, "promise"))

    async def paid_claim(self, info: CallInfo, grace_days: int) -> None:
        self.writer.write(partial(facts.paid_claim, attempt_id=info.attempt_id, case_id=info.case_id,
                                  next_at=self._now() + dt.timedelta(days=grace_days)),
                          self._label(info, "paid claim"))

    async def reason(self, info: CallInfo, code: str | None) -> int | None:
        """Store the reason (None = the subscriber entered the reason menu but gave no valid
        key); an actionable one raises a callback task on its route. Returns the task id (the
        script waits for it: it only promises a call-back once the task is stored)."""
        fact = partial(facts.reason, attempt_id=info.attempt_id, account_id=info.account_id, case_id=info.case_id,
                       code=code, now=self._now())
        return cast("int | None", await self.writer.call(fact, self._label(info, "reason")))

    async def refusal(self, info: CallInfo) -> None:
        await self._outcome(info, "refusal", kind="refusal")

    async def human_request(self, info: CallInfo, queue: str) -> None:
        """A person asked for: a callback task in `queue` (queued; the script does not wait)."""
        self.writer.write(partial(facts.human_request, attempt_id=info.attempt_id, account_id=info.account_id,
                                  case_id=info.case_id, queue=queue, now=self._now()),
                          self._label(info, "human request"))

    async def opt_out(self, info: CallInfo) -> None:
        self.writer.write(partial(facts.opt_out, attempt_id=info.attempt_id, account_id=info.account_id,
                                  case_id=info.case_id, phone=info.phone, now=self._now()),
                          self._label(info, "opt-out"))

    async def finish(self, info: CallInfo, default_kind: str) -> None:
        """Always runs at the end of the script (also after a hang-up): the outcome gets a final
        kind, and the attempt a result, unless something more specific was stored already.
        The outcome is final now: it goes to the billing outbox in the same transaction.
        Returns once this and every earlier fact of the call is committed (or logged as lost):
        the call is over, nothing waits on it, and whoever reads after the handler sees it all."""
        self._seq.pop(info.attempt_id, None)
        fact = partial(facts.finish, attempt_id=info.attempt_id, default_kind=default_kind, now=self._now())
        try:
            await self.writer.call(fact, self._label(info, "finish"))
        except Exception:  # noqa: BLE001 - the writer logged it; the call is over either way
            log.debug("attempt %s: final write failed", info.attempt_id, exc_info=True)
