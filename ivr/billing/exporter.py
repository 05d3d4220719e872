"""Exports back to billing: call outcomes, the block list and the operators' callbacks.

Each export is a list of flat dicts (one per record, keys in a fixed order, values as Python
objects: dates, Decimals, None) that the web API serves as JSON and the `ivr export` command
writes as CSV or JSON. `since` (naive UTC) selects what changed since a previous export:
outcomes updated, block-list entries added or removed, callbacks created or finished.
Phone numbers are exported in full: this goes to the billing that supplied them, not to a log.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TextIO

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from ivr import csvsafe
from ivr.db.models import (
    Account,
    BlockListEntry,
    CallAttempt,
    CallbackTask,
    DebtCase,
    Outcome,
    Reason,
    User,
)

__all__ = [
    "EXPORTS",
    "export_blocklist",
    "export_callbacks",
    "export_outcomes",
    "write_csv",
    "write_json",
]

OUTCOME_FIELDS = (
    "outcome_id", "account", "holder_name", "phone", "called_at", "stage", "result", "identity",
    "kind", "promise_date", "paid_claim", "reason_code", "reason", "opted_out", "human_requested",
    "amount_owed", "currency", "updated_at",
)
BLOCKLIST_FIELDS = (
    "account", "holder_name", "amount_owed", "currency", "stage", "block_date", "added_at",
    "removed_at", "debt_case_id",
)
CALLBACK_FIELDS = (
    "task_id", "account", "holder_name", "queue", "reason_code", "priority", "state", "due_at",
    "claimed_by", "result", "result_note", "next_action", "promise_date", "created_at", "done_at",
)


def _label(labels: Mapping[str, str] | None, language: str) -> str:
    if not labels:
        return ""
    return labels.get(language) or labels.get("ru") or next(iter(labels.values()), "")


def export_outcomes(session: Session, since: dt.datetime | None = None) -> list[dict[str, Any]]:
    """One row per answered-call outcome (updated since `since`), oldest first."""
    stmt = (
        select(Outcome, CallAttempt, Account, DebtCase, Reason)
        .join(CallAttempt, CallAttempt.id == Outcome.attempt_id)
        .join(Account, Account.id == CallAttempt.account_id)
        .outerjoin(DebtCase, DebtCase.id == Outcome.debt_case_id)
        .outerjoin(Reason, Reason.id == Outcome.reason_id)
        .order_by(Outcome.id)
    )
    if since is not None:
        stmt = stmt.where(Outcome.updated_at >= since)
    rows = []
    for outcome, attempt, account, case, reason in session.execute(stmt):
        rows.append({
            "outcome_id": outcome.id,
            "account": account.external_id,
            "holder_name": account.holder_name,
            "phone": attempt.phone,
            "called_at": attempt.answered_at or attempt.created_at,
            "stage": attempt.stage_code,
            "result": attempt.result,
            "identity": outcome.identity,
            "kind": outcome.kind,
            "promise_date": outcome.promise_date,
            "paid_claim": outcome.paid_claim,
            "reason_code": reason.code if reason else None,
            "reason": _label(reason.labels, account.language) if reason else None,
            "opted_out": outcome.opted_out,
            "human_requested": outcome.human_requested,
            "amount_owed": case.amount_owed if case else None,
            "currency": case.currency if case else account.currency,
            "updated_at": outcome.updated_at,
        })
    return rows


def export_blocklist(session: Session, since: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Accounts to restrict. Without `since`: the current list; with it: entries added or
    removed since then (removed_at set = billing may lift the restriction)."""
    stmt = (
        select(BlockListEntry, Account, DebtCase)
        .join(Account, Account.id == BlockListEntry.account_id)
        .outerjoin(DebtCase, DebtCase.id == BlockListEntry.debt_case_id)
        .order_by(BlockListEntry.added_at, BlockListEntry.id)
    )
    if since is None:
        stmt = stmt.where(BlockListEntry.removed_at.is_(None))
    else:
        stmt = stmt.where(or_(BlockListEntry.added_at >= since, BlockListEntry.removed_at >= since))
    rows = []
    for entry, account, case in session.execute(stmt):
        rows.append({
            "account": account.external_id,
            "holder_name": account.holder_name,
            "amount_owed": entry.amount_owed,
            "currency": case.currency if case else account.currency,
            "stage": entry.stage_code,
            "block_date": account.block_date,
            "added_at": entry.added_at,
            "removed_at": entry.removed_at,
            "debt_case_id": entry.debt_case_id,
        })
    return rows


def export_callbacks(session: Session, since: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Operator callback tasks (created or finished since `since`), oldest first."""
    claimer = aliased(User)
    stmt = (
        select(CallbackTask, Account, Reason, claimer.username)
        .join(Account, Account.id == CallbackTask.account_id)
        .outerjoin(Reason, Reason.id == CallbackTask.reason_id)
        .outerjoin(claimer, claimer.id == CallbackTask.claimed_by)
        .order_by(CallbackTask.created_at, CallbackTask.id)
    )
    if since is not None:
        stmt = stmt.where(or_(CallbackTask.created_at >= since, CallbackTask.done_at >= since))
    rows = []
    for task, account, reason, username in session.execute(stmt):
        rows.append({
            "task_id": task.id,
            "account": account.external_id,
            "holder_name": account.holder_name,
            "queue": task.queue,
            "reason_code": reason.code if reason else None,
            "priority": task.priority,
            "state": task.state,
            "due_at": task.due_at,
            "claimed_by": username,
            "result": task.result,
            "result_note": task.result_note,
            "next_action": task.next_action,
            "promise_date": task.promise_date,
            "created_at": task.created_at,
            "done_at": task.done_at,
        })
    return rows


ExportFn = Callable[[Session, dt.datetime | None], list[dict[str, Any]]]
EXPORTS: dict[str, tuple[ExportFn, tuple[str, ...]]] = {
    "outcomes": (export_outcomes, OUTCOME_FIELDS),
    "blocklist": (export_blocklist, BLOCKLIST_FIELDS),
    "callbacks": (export_callbacks, CALLBACK_FIELDS),
}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    return str(value)


def write_csv(rows: Iterable[Mapping[str, Any]], fh: TextIO, *, fields: Iterable[str] | None = None,
              delimiter: str = ",") -> int:
    """Write rows as CSV with a header (from `fields`, else the first row's keys); returns the
    number of data rows. Dates are ISO, times "YYYY-MM-DD HH:MM:SS" UTC, money with 2 decimals,
    booleans 1/0, empty for none."""
    rows = list(rows)
    header = list(fields) if fields is not None else (list(rows[0]) if rows else [])
    if not header:
        return 0
    writer = csvsafe.writer(fh, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in header])
    return len(rows)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")  # stored times are UTC
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"  # a string: no binary floating point for money
    raise TypeError(f"cannot export {type(value).__name__}")


def write_json(rows: Iterable[Mapping[str, Any]], fh: TextIO) -> int:
    """Write rows as a JSON list (UTF-8 text, money as strings); returns the number of rows."""
    rows = [dict(r) for r in rows]
    json.dump(rows, fh, ensure_ascii=False, indent=1, default=_json_default)
    fh.write("\n")
    return len(rows)
