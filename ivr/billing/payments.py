"""Applying a payment to the debt it pays.

A payment reduces the account's open debt cases oldest first. A case paid off is closed at once
(state PAID, closed_at set), so the dialer never calls about it again, and its pending promises
whose date had not yet passed when the money arrived count as kept. Promises already overdue
when the payment came are left to the promise watcher (they were broken, even if paid later).
Nothing else is released here: dial locks, the block list and callback tasks have their owners.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from sqlalchemy.orm import Session

from ivr.db.models import Account, CaseState, DebtCase, Payment
from ivr.outbox import facts as outbox

__all__ = ["apply_payment", "open_cases", "close_case_paid"]

log = logging.getLogger(__name__)

_ENDED = (CaseState.PAID.value, CaseState.CLOSED.value)


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def open_cases(account: Account) -> list[DebtCase]:
    """The account's unpaid episodes of debt, oldest first."""
    cases = [c for c in account.cases if c.closed_at is None and c.state not in _ENDED]
    return sorted(cases, key=lambda c: (c.opened_on, c.id or 0))


def close_case_paid(case: DebtCase, *, paid_on: dt.date, now: dt.datetime) -> None:
    """Close a case as paid off; pending promises dated on or after `paid_on` were kept."""
    stamp = _naive_utc(now)
    case.amount_owed = Decimal("0.00")
    case.state = CaseState.PAID.value
    case.closed_at = stamp
    for promise in case.promises:
        if promise.status == "pending" and promise.promised_date >= paid_on:
            promise.status = "kept"
            promise.resolved_at = stamp


def apply_payment(session: Session, payment: Payment, *, now: dt.datetime) -> None:
    """Reduce the account's open debt cases (oldest first) and its balance by the payment.

    `payment.debt_case_id` is set to the first case the money went to (None when the account
    had no open debt). An overpayment leaves a negative balance (a credit)."""
    account = session.get(Account, payment.account_id)
    if account is None:
        raise ValueError(f"payment {payment.external_id!r}: no account with id {payment.account_id}")
    remaining = Decimal(payment.amount)
    for case in open_cases(account):
        if remaining <= 0:
            break
        if payment.debt_case_id is None:
            payment.debt_case_id = case.id
        owed = Decimal(case.amount_owed)
        take = min(remaining, owed)
        remaining -= take
        if owed - take <= 0:
            close_case_paid(case, paid_on=payment.paid_on, now=now)
            outbox.promises_resolved(session, case.id, now)
            log.debug("case %s paid off by payment id %s", case.id, payment.id)
        else:
            case.amount_owed = owed - take
    account.balance = Decimal(account.balance or 0) - Decimal(payment.amount)
