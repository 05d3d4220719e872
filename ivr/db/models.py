"""ORM models named after the brief's vocabulary (see shared/DESIGN.md).

Money is Numeric(14, 2); times are stored as naive UTC datetimes (`utcnow()` below), local
times are computed from the account's time zone where a rule needs them.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ivr.db.base import Base


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class CaseState(StrEnum):
    ACTIVE = "active"  # the robot works it
    PROMISED = "promised"  # paused until the promised date
    PAID = "paid"  # paid off: closed, never called again
    RETENTION = "retention"  # handed to the retention team (left the robot)
    OVERDUE = "overdue"  # handed to overdue collection
    BLOCKED = "blocked"  # service restricted, robot stopped (ladder end action "block")
    CLOSED = "closed"  # closed for another reason (opt-out, ladder exhausted)


class AttemptState(StrEnum):
    CLAIMED = "claimed"  # row written before Originate is sent
    DIALING = "dialing"  # Originate queued by Asterisk
    ANSWERED = "answered"  # OriginateResponse Success / call script running
    DONE = "done"  # final result known
    UNKNOWN = "unknown"  # lost in a crash/disconnect; reconciled later


class AttemptResult(StrEnum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    FAILED = "failed"
    MACHINE = "machine"
    WRONG_PARTY = "wrong_party"
    # Faults: the subscriber was not really served. Neither counts as a contact; both are
    # retried soon on the same number (ivr.dialer.retry).
    ROBOT_FAILED = "robot_failed"  # answered, but the call script never ran (AGISTATUS=FAILURE)
    INTERRUPTED = "interrupted"  # cut by our side: Asterisk restarted, the robot or dialer died


class TaskState(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    DONE = "done"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    holder_name: Mapped[str] = mapped_column(String(200))
    service_name: Mapped[str] = mapped_column(String(200), default="")
    tariff: Mapped[str] = mapped_column(String(100), default="")
    balance: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    block_date: Mapped[dt.date | None] = mapped_column(Date)
    # issue 16: the last day a payment keeps this month's price (an optional billing column);
    # templates say "pay by ... to keep this month's price" only when it is set
    keep_price_until: Mapped[dt.date | None] = mapped_column(Date)
    timezone: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(5), default="ru")
    country: Mapped[str] = mapped_column(String(2), default="RU")
    blocked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Dial lock: one call in flight per person. A dialer sets owner+until atomically
    # (conditional UPDATE) before it originates; cleared when the attempt ends.
    dial_lock_owner: Mapped[str | None] = mapped_column(String(64))
    dial_lock_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    phones: Mapped[list[PhoneNumber]] = relationship(
        back_populates="account", order_by="PhoneNumber.priority", cascade="all, delete-orphan"
    )
    cases: Mapped[list[DebtCase]] = relationship(back_populates="account")


class PhoneNumber(Base):
    __tablename__ = "phone_numbers"
    __table_args__ = (UniqueConstraint("account_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(20), index=True)  # E.164, with '+'
    priority: Mapped[int] = mapped_column(Integer, default=1)  # 1 = first to try
    status: Mapped[str] = mapped_column(String(20), default="ok")  # ok | wrong_party | invalid
    status_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    account: Mapped[Account] = relationship(back_populates="phones")


class DebtCase(Base):
    """One episode of debt on an account, from the due date until it is paid off."""

    __tablename__ = "debt_cases"
    __table_args__ = (Index("ix_debt_cases_due_work", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    opened_on: Mapped[dt.date] = mapped_column(Date)  # the missed due date
    amount_initial: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    amount_owed: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    state: Mapped[str] = mapped_column(String(16), default=CaseState.ACTIVE.value)
    stage_code: Mapped[str | None] = mapped_column(String(40))
    stage_entered_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    attempts_in_stage: Mapped[int] = mapped_column(Integer, default=0)
    # Earliest UTC time the dialer may try this case again (retry interval, window opening).
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # why next_attempt_at is in the future (outside_window, over_limit, retry, promised,
    # waiting_stage, no_phone, ...): lets `ivr status` say why nobody is called without
    # re-checking every case
    wait_reason: Mapped[str | None] = mapped_column(String(20))
    next_phone_priority: Mapped[int] = mapped_column(Integer, default=1)
    last_result: Mapped[str | None] = mapped_column(String(20))
    promise_broken: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    account: Mapped[Account] = relationship(back_populates="cases")
    attempts: Mapped[list[CallAttempt]] = relationship(back_populates="case", order_by="CallAttempt.id")
    promises: Mapped[list[Promise]] = relationship(back_populates="case", order_by="Promise.id")


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    debt_case_id: Mapped[int | None] = mapped_column(ForeignKey("debt_cases.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    paid_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class CallAttempt(Base):
    """One origination to one phone number."""

    __tablename__ = "call_attempts"
    __table_args__ = (
        Index("ix_call_attempts_account_created", "account_id", "created_at"),
        Index("ix_call_attempts_state", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    debt_case_id: Mapped[int | None] = mapped_column(ForeignKey("debt_cases.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    phone_number_id: Mapped[int | None] = mapped_column(ForeignKey("phone_numbers.id", ondelete="SET NULL"))
    phone: Mapped[str] = mapped_column(String(20))
    stage_code: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(5), default="ru")
    purpose: Mapped[str] = mapped_column(String(20), default="robot")  # robot | operator (click-to-call)
    server: Mapped[str | None] = mapped_column(String(64))
    dialer_id: Mapped[str | None] = mapped_column(String(64))
    action_id: Mapped[str] = mapped_column(String(64), unique=True)  # AMI ActionID, also IVR_CALL_ID
    channel: Mapped[str | None] = mapped_column(String(128))
    uniqueid: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=AttemptState.CLAIMED.value)
    result: Mapped[str | None] = mapped_column(String(20))
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    amd_status: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    originated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    duration_s: Mapped[float | None] = mapped_column(Numeric(10, 3))
    # click-to-call: the operator who placed it, and why when it was placed outside the
    # subscriber's call hours (NULL = inside the hours, no override)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    override_reason: Mapped[str | None] = mapped_column(String(300))

    case: Mapped[DebtCase | None] = relationship(back_populates="attempts")
    steps: Mapped[list[CallStep]] = relationship(back_populates="attempt", order_by="CallStep.seq")
    outcome: Mapped[Outcome | None] = relationship(back_populates="attempt", uselist=False)


class CallStep(Base):
    """What happened at one step of an answered call: the prompt and the keys pressed."""

    __tablename__ = "call_steps"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("call_attempts.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    step: Mapped[str] = mapped_column(String(40))  # greet, identity, menu, promise_date, ...
    keys: Mapped[str] = mapped_column(String(40), default="")  # digits pressed ('' = none)
    result: Mapped[str] = mapped_column(String(40), default="")  # ok, timeout, invalid, hangup, ...
    detail: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    attempt: Mapped[CallAttempt] = relationship(back_populates="steps")


class Outcome(Base):
    """What an answered call established; updated step by step as facts become known."""

    __tablename__ = "outcomes"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("call_attempts.id", ondelete="CASCADE"), unique=True)
    debt_case_id: Mapped[int | None] = mapped_column(ForeignKey("debt_cases.id"), index=True)
    # unknown | confirmed | denied
    identity: Mapped[str] = mapped_column(String(12), default="unknown")
    # final kind: promise | paid_claim | reason | refusal | no_input | wrong_party | machine |
    #             opt_out | human_request | hangup | message_only
    kind: Mapped[str | None] = mapped_column(String(20))
    promise_date: Mapped[dt.date | None] = mapped_column(Date)
    paid_claim: Mapped[bool] = mapped_column(Boolean, default=False)
    reason_id: Mapped[int | None] = mapped_column(ForeignKey("reasons.id"))
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    human_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    message_delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    attempt: Mapped[CallAttempt] = relationship(back_populates="outcome")
    reason: Mapped[Reason | None] = relationship()


class Promise(Base):
    __tablename__ = "promises"

    id: Mapped[int] = mapped_column(primary_key=True)
    debt_case_id: Mapped[int] = mapped_column(ForeignKey("debt_cases.id", ondelete="CASCADE"), index=True)
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("call_attempts.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(20), default="robot")  # robot | operator | api
    promised_date: Mapped[dt.date] = mapped_column(Date)
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending | kept | broken | cancelled
    stage_code: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    case: Mapped[DebtCase] = relationship(back_populates="promises")


class Reason(Base):
    """One entry of the company's reason classifier."""

    __tablename__ = "reasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    key: Mapped[str] = mapped_column(String(2))  # keypad code in the reason menu
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # {lang: label}
    category: Mapped[str] = mapped_column(String(20))  # controllable | uncontrollable
    actionable: Mapped[bool] = mapped_column(Boolean, default=False)
    route: Mapped[str | None] = mapped_column(String(40))  # queue
    replies: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)  # {lang: robot reply}
    incentive_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    norm_pct: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=Decimal("0"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CallbackTask(Base):
    __tablename__ = "callback_tasks"
    __table_args__ = (Index("ix_callback_tasks_queue_state", "queue", "state", "priority"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    debt_case_id: Mapped[int | None] = mapped_column(ForeignKey("debt_cases.id"))
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("call_attempts.id", ondelete="SET NULL"))
    reason_id: Mapped[int | None] = mapped_column(ForeignKey("reasons.id"))
    queue: Mapped[str] = mapped_column(String(40))
    priority: Mapped[int] = mapped_column(Integer, default=5)  # lower = sooner
    due_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(10), default=TaskState.OPEN.value)
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_activity_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # resolved | promise | refused | unreachable | wrong_number
    result: Mapped[str | None] = mapped_column(String(20))
    result_note: Mapped[str] = mapped_column(Text, default="")
    next_action: Mapped[str] = mapped_column(String(200), default="")
    promise_date: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    account: Mapped[Account] = relationship()
    reason: Mapped[Reason | None] = relationship()


class LadderStage(Base):
    """One rung of the escalation ladder (data, not code)."""

    __tablename__ = "ladder_stages"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    anchor: Mapped[str] = mapped_column(String(10), default="due")  # due | block
    start_day: Mapped[int] = mapped_column(Integer)  # days relative to the anchor date
    prompt: Mapped[str] = mapped_column(String(40))  # template name of the debt message
    window_profile: Mapped[str] = mapped_column(String(40), default="default")
    required_hour: Mapped[int | None] = mapped_column(Integer)  # local hour the stage must call in
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    retry_minutes: Mapped[int] = mapped_column(Integer, default=240)
    # block = put the account on the block list when a case enters this stage
    on_enter: Mapped[str | None] = mapped_column(String(12))
    # next | block | retention | stop
    on_end: Mapped[str] = mapped_column(String(12), default="next")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CallWindow(Base):
    """Local hours (of the subscriber) a window profile allows, per weekday; weekday 7 = holiday."""

    __tablename__ = "call_windows"
    __table_args__ = (UniqueConstraint("profile", "weekday", "start_time"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    profile: Mapped[str] = mapped_column(String(40), default="default")
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday .. 6 = Sunday, 7 = public holiday
    start_time: Mapped[dt.time] = mapped_column(Time)
    end_time: Mapped[dt.time] = mapped_column(Time)


class ContactLimit(Base):
    """Cap on calls to one person per period, across all stages and numbers."""

    __tablename__ = "contact_limits"
    __table_args__ = (UniqueConstraint("period", "counts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(10))  # day | week | month
    max_calls: Mapped[int] = mapped_column(Integer)
    # attempts = every originate counts; answered = only answered calls count
    counts: Mapped[str] = mapped_column(String(12), default="attempts")


class OptOut(Base):
    __tablename__ = "opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    source: Mapped[str] = mapped_column(String(20), default="keypad")  # keypad | admin | api
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class BlockListEntry(Base):
    """Accounts whose service is to be restricted (exported back to billing)."""

    __tablename__ = "block_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), unique=True)
    debt_case_id: Mapped[int | None] = mapped_column(ForeignKey("debt_cases.id"))
    stage_code: Mapped[str | None] = mapped_column(String(40))
    amount_owed: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    added_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    removed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class PromptTemplate(Base):
    """An admin's override of a prompt file under prompts/<language>/ (per stage when set)."""

    __tablename__ = "prompt_templates"
    __table_args__ = (UniqueConstraint("language", "name", "stage_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    language: Mapped[str] = mapped_column(String(5))
    name: Mapped[str] = mapped_column(String(40))  # greeting, identity, debt_message, ...
    stage_code: Mapped[str | None] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    recording_path: Mapped[str | None] = mapped_column(String(300))  # admin's recorded WAV
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(64))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(12))  # admin | operator | manager
    phone: Mapped[str | None] = mapped_column(String(64))  # operator's own line for click-to-call
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty = all queues
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # Written into every session cookie at login and compared on each request; logout and a
    # password change bump it, so a copied cookie stops working (sessions are revocable).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # issue 14: the IANA zone the web pages show times in for this user; None = the company's
    # (IVR_DEFAULT_TIMEZONE). Stored times stay UTC.
    timezone: Mapped[str | None] = mapped_column(String(64))


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # what the token may do, comma separated: import (push accounts/payments), export (pull
    # outcomes, block list, callbacks); tokens made before scopes existed keep both
    scopes: Mapped[str] = mapped_column(String(64), default="import,export", server_default="import,export")


class Setting(Base):
    """Admin-editable runtime settings (holiday policy, promise horizon, menu tries, ...)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class ImportRun(Base):
    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # accounts | payments
    filename: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    rows_ok: Mapped[int] = mapped_column(Integer, default=0)
    rows_bad: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ImportMapping(Base):
    """The column mapping an admin confirmed in the import wizard, per kind of file: offered
    again for the next file of that kind (billing exports keep their columns)."""

    __tablename__ = "import_mappings"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)  # accounts | payments
    # field -> the file's column names (phones: several, in priority order)
    columns: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class LineLease(Base):
    """One line slot of one Asterisk server, shared by every dialer (issue 15).

    A slot is taken with a compare-and-set UPDATE (free when `action_id` is NULL or the lease
    expired), so a server's channel limit holds across dialers at every moment. The owning
    dialer renews `expires_at` while the call is in flight; after a crash the lease expires.
    Slots are rows `0 .. channel_limit-1`, inserted on first use.
    """

    __tablename__ = "line_leases"

    server: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    action_id: Mapped[str | None] = mapped_column(String(64), index=True)
    dialer_id: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class ServiceHeartbeat(Base):
    """What a running `ivr run` / `ivr agi-server` process says about itself every few seconds
    (AMI connections, FastAGI port, lines, the dialer's state), so that `ivr status` and the web
    UI, in other processes or on other hosts, can tell what the robot is doing. A row whose
    `updated_at` is old belongs to a process that is gone."""

    __tablename__ = "service_heartbeats"

    instance: Mapped[str] = mapped_column(String(100), primary_key=True)  # host-pid (the dialer id)
    role: Mapped[str] = mapped_column(String(20))  # run | agi-server | web
    host: Mapped[str] = mapped_column(String(100))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class OutboxEvent(Base):
    """A fact to push to the billing system's HTTP endpoint, written in the same transaction as
    the fact itself (see ivr/outbox/). `seq` counts the account's events from 1 without gaps;
    the sender delivers them strictly in that order per account."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        UniqueConstraint("account_id", "seq"),
        Index("ix_outbox_events_state_next", "state", "next_try_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    account_external_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40))  # call.outcome, promise.made, opt_out, ...
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | retrying | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    # a sender's lease while it delivers the event (another sender takes over after it expires)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class AccountNote(Base):
    """A note an operator or admin left on an account (also the record of who held the robot for
    it, until when and why)."""

    __tablename__ = "account_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class RobotPause(Base):
    """An admin's pause of the robot: everything (`global`), one ladder stage or one Asterisk
    server. Active while `resumed_at` is NULL; kept afterwards as the record of who paused it,
    when and why, and who resumed it. Calls in progress finish; the dialer starts no new ones."""

    __tablename__ = "robot_pauses"
    __table_args__ = (Index("ix_robot_pauses_active", "resumed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(10))  # global | stage | server
    key: Mapped[str] = mapped_column(String(64), default="")  # stage code or server name ('' for global)
    who: Mapped[str] = mapped_column(String(64))
    why: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    resumed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    resumed_by: Mapped[str | None] = mapped_column(String(64))


class ThankYouCall(Base):
    """Issue 16: a payment that followed a robot call or a promise (ivr.dialer.thanks).

    One row per paid-off case that qualified, written when the payment is imported, whether or
    not thank-you calls are enabled: the rows with state `off` are the comparison group of the
    report (ivr.reports.reactions). States: pending (the dialer may call it from `due_at`),
    done (answered, or reached a machine: not tried again), expired (no answer within the tries
    or the days allowed), off (thank-you calls were disabled when the payment came)."""

    __tablename__ = "thank_you_calls"
    __table_args__ = (Index("ix_thank_you_calls_state_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    debt_case_id: Mapped[int] = mapped_column(ForeignKey("debt_cases.id", ondelete="CASCADE"), unique=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id", ondelete="SET NULL"))
    paid_on: Mapped[dt.date] = mapped_column(Date)
    # what made it qualify: call (an answered robot call) | promise
    trigger: Mapped[str] = mapped_column(String(10), default="call")
    state: Mapped[str] = mapped_column(String(10), default="pending")
    due_at: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_id: Mapped[int | None] = mapped_column(ForeignKey("call_attempts.id", ondelete="SET NULL"))
    result: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    done_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
