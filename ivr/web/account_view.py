"""The account page's data and its changes, without HTTP: everything about one subscriber loaded
into plain data, and the operator's edits (phone numbers, notes, holding the robot).

Callers own the transaction and pass the time in."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ivr.db.models import (
    Account,
    AccountNote,
    BlockListEntry,
    CallAttempt,
    CallbackTask,
    CaseState,
    DebtCase,
    OptOut,
    Payment,
    PhoneNumber,
    Promise,
    User,
)
from ivr.dialer.retry import USABLE_STATUS
from ivr.dialer.windows import local_midnight_utc
from ivr.logsetup import mask_phone
from ivr.web.card import (
    AttemptView,
    PromiseView,
    StepView,
    TaskView,
    _task_view,
    account_zone,
    reason_label,
)

log = logging.getLogger(__name__)

HOLD_WAIT_REASON = "hold"
DISABLED_STATUS = "disabled"
# cases the dialer may still call: a hold moves their next attempt
HOLDABLE_STATES = (CaseState.ACTIVE.value, CaseState.PROMISED.value, CaseState.BLOCKED.value)
MAX_NOTE = 2000


class AccountError(ValueError):
    """An account change that cannot be made; `key` names the UI message (ivr.web.i18n)."""

    def __init__(self, key: str, message: str, **params: object) -> None:
        super().__init__(message)
        self.key = key
        self.params = params


@dataclass(frozen=True)
class PhoneRow:
    id: int
    masked: str
    priority: int
    status: str


@dataclass(frozen=True)
class CaseRow:
    id: int
    opened_on: dt.date
    amount_initial: Decimal
    amount_owed: Decimal
    state: str
    stage_code: str
    attempts_in_stage: int
    next_attempt_at: dt.datetime | None
    wait_reason: str


@dataclass(frozen=True)
class NoteRow:
    author: str
    text: str
    created_at: dt.datetime


@dataclass
class AccountPage:
    id: int
    external_id: str
    holder_name: str
    service_name: str
    tariff: str
    balance: Decimal
    currency: str
    due_date: dt.date | None
    block_date: dt.date | None
    zone: str
    local_now: dt.datetime
    phones: list[PhoneRow]
    cases: list[CaseRow]
    attempts: list[AttemptView] = field(default_factory=list)
    promises: list[PromiseView] = field(default_factory=list)
    payments: list[tuple[dt.date, Decimal, str]] = field(default_factory=list)
    tasks: list[TaskView] = field(default_factory=list)
    optouts: list[tuple[str, str, str, dt.datetime]] = field(default_factory=list)  # phone, source, note, at
    blocks: list[tuple[dt.datetime, dt.datetime | None, Decimal, str]] = field(default_factory=list)
    notes: list[NoteRow] = field(default_factory=list)


def load_account(session: Session, account_id: int, now: dt.datetime, lang: str, default_tz: str) -> AccountPage | None:
    account = session.scalar(select(Account).where(Account.id == account_id).options(selectinload(Account.phones)))
    if account is None:
        return None
    zone = account_zone(account, default_tz)
    users = {u.id: u.username for u in session.scalars(select(User))}
    cases = list(session.scalars(select(DebtCase).where(DebtCase.account_id == account_id).order_by(DebtCase.id.desc())))
    attempts = session.scalars(
        select(CallAttempt).where(CallAttempt.account_id == account_id)
        .options(selectinload(CallAttempt.steps), selectinload(CallAttempt.outcome))
        .order_by(CallAttempt.created_at.desc(), CallAttempt.id.desc())
    ).all()
    case_ids = [c.id for c in cases]
    promises = session.scalars(
        select(Promise).where(Promise.debt_case_id.in_(case_ids)).order_by(Promise.created_at.desc())
    ).all() if case_ids else []
    numbers = [p.number for p in account.phones]
    optout_filter = OptOut.account_id == account_id
    if numbers:
        optout_filter = optout_filter | OptOut.phone.in_(numbers)
    return AccountPage(
        id=account.id, external_id=account.external_id, holder_name=account.holder_name,
        service_name=account.service_name, tariff=account.tariff, balance=account.balance,
        currency=account.currency, due_date=account.due_date, block_date=account.block_date,
        zone=zone.key, local_now=now.astimezone(zone),
        phones=[PhoneRow(p.id, mask_phone(p.number), p.priority, p.status) for p in account.phones],
        cases=[CaseRow(c.id, c.opened_on, c.amount_initial, c.amount_owed, c.state, c.stage_code or "",
                       c.attempts_in_stage, c.next_attempt_at, c.wait_reason or "") for c in cases],
        attempts=[AttemptView(
            id=a.id, created_at=a.created_at, phone=mask_phone(a.phone), stage_code=a.stage_code or "",
            purpose=a.purpose, state=a.state, result=a.result or "", duration_s=a.duration_s,
            steps=[StepView(s.seq, s.step, s.keys, s.result, s.detail) for s in a.steps],
            identity=a.outcome.identity if a.outcome else "",
            outcome_kind=(a.outcome.kind or "") if a.outcome else "",
            promise_date=a.outcome.promise_date if a.outcome else None,
            paid_claim=bool(a.outcome.paid_claim) if a.outcome else False,
            reason=reason_label(a.outcome.reason, lang) if a.outcome else "",
        ) for a in attempts],
        promises=[PromiseView(p.promised_date, p.source, p.status, p.amount, p.created_at) for p in promises],
        payments=[(p.paid_on, p.amount, p.external_id) for p in session.scalars(
            select(Payment).where(Payment.account_id == account_id).order_by(Payment.paid_on.desc()))],
        tasks=[_task_view(t, users, lang) for t in session.scalars(
            select(CallbackTask).where(CallbackTask.account_id == account_id).order_by(CallbackTask.created_at.desc()))],
        optouts=[(mask_phone(o.phone) if o.phone else "", o.source, o.note, o.created_at)
                 for o in session.scalars(select(OptOut).where(optout_filter).order_by(OptOut.created_at.desc()))],
        blocks=[(b.added_at, b.removed_at, b.amount_owed, b.stage_code or "") for b in session.scalars(
            select(BlockListEntry).where(BlockListEntry.account_id == account_id))],
        notes=[NoteRow(n.author, n.text, n.created_at) for n in session.scalars(
            select(AccountNote).where(AccountNote.account_id == account_id)
            .order_by(AccountNote.created_at.desc(), AccountNote.id.desc()))],
    )


def _account(session: Session, account_id: int) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        raise AccountError("err_account_not_found", f"no account {account_id}")
    return account


def add_note(session: Session, account_id: int, author: str, text: str, now: dt.datetime) -> AccountNote:
    text = text.strip()
    if not text:
        raise AccountError("err_note_empty", "empty note")
    if len(text) > MAX_NOTE:
        raise AccountError("err_note_long", "note too long", max=MAX_NOTE)
    _account(session, account_id)
    note = AccountNote(account_id=account_id, author=author, text=text,
                       created_at=now.astimezone(dt.UTC).replace(tzinfo=None))
    session.add(note)
    session.flush()
    return note


def hold_resume_at(until: dt.date, zone_name: str) -> dt.datetime:
    """Naive UTC of the subscriber's local midnight after `until`: the robot may call again from
    the first minute of the next local day."""
    from zoneinfo import ZoneInfo

    return local_midnight_utc(until + dt.timedelta(days=1), ZoneInfo(zone_name)).replace(tzinfo=None)


def hold_account(session: Session, account_id: int, until: dt.date, author: str, why: str,
                 now: dt.datetime, default_tz: str) -> int:
    """Keep the robot off this account until the end of `until` (subscriber's local date): every
    case it may still call waits (wait_reason "hold") until the local midnight after that date; a
    note records who, when, until when and why. Returns how many cases were held."""
    why = why.strip()
    if not why:
        raise AccountError("err_hold_reason", "a hold needs a reason")
    account = _account(session, account_id)
    zone = account_zone(account, default_tz)
    if until < now.astimezone(zone).date():
        raise AccountError("err_hold_past", "hold date in the past")
    resume = hold_resume_at(until, zone.key)
    cases = list(session.scalars(
        select(DebtCase).where(DebtCase.account_id == account_id, DebtCase.state.in_(HOLDABLE_STATES))
    ))
    for case in cases:
        case.next_attempt_at = resume
        case.wait_reason = HOLD_WAIT_REASON
    add_note(session, account_id, author, f"[hold until {until.isoformat()}] {why}", now)
    log.info("account %s held until %s by %s (%d case(s))", account_id, until, author, len(cases))
    return len(cases)


def add_phone(session: Session, account_id: int, number_e164: str) -> PhoneNumber:
    account = _account(session, account_id)
    if any(p.number == number_e164 for p in account.phones):
        raise AccountError("err_phone_exists", "number already on the account")
    phone = PhoneNumber(account_id=account_id, number=number_e164,
                        priority=max((p.priority for p in account.phones), default=0) + 1)
    session.add(phone)
    session.flush()
    return phone


def _phone(session: Session, account_id: int, phone_id: int) -> PhoneNumber:
    phone = session.get(PhoneNumber, phone_id)
    if phone is None or phone.account_id != account_id:
        raise AccountError("err_phone_missing", "no such number on the account")
    return phone


def move_phone(session: Session, account_id: int, phone_id: int, up: bool) -> None:
    """Swap the number with its neighbour in dialling order (priorities are renumbered 1..n so
    duplicates left by imports cannot make a move a no-op)."""
    _phone(session, account_id, phone_id)
    phones = sorted(session.scalars(select(PhoneNumber).where(PhoneNumber.account_id == account_id)),
                    key=lambda p: (p.priority, p.id))
    index = next(i for i, p in enumerate(phones) if p.id == phone_id)
    other = index - 1 if up else index + 1
    if 0 <= other < len(phones):
        phones[index], phones[other] = phones[other], phones[index]
    for priority, phone in enumerate(phones, start=1):
        phone.priority = priority


def set_phone_enabled(session: Session, account_id: int, phone_id: int, enabled: bool, now: dt.datetime) -> None:
    phone = _phone(session, account_id, phone_id)
    phone.status = USABLE_STATUS if enabled else DISABLED_STATUS
    phone.status_at = now.astimezone(dt.UTC).replace(tzinfo=None)
