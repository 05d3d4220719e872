"""Writing a batch of parsed account rows: upsert accounts, phones and their debt cases.

One batch is one transaction. Per batch: one query loads the stored accounts (by external id),
one their phones; rows equal to what is stored are counted "unchanged" and not touched at all
(`updated_at` stays), new and changed rows go out in one INSERT ... ON CONFLICT upsert.

Debt cases (an account's episode of debt):
- a new account with balance > 0 gets one open case (state active, opened_on = due date or the
  import day, amount_initial = amount_owed = balance, stage None: the dialer assigns stages);
- a changed account with balance > 0 and an open case: the newest open case's amount_owed
  follows the balance (amount_initial is raised if the debt grew);
- a changed account with balance > 0, no open case, and a different balance or due date than
  stored: a new case (a new episode). Changes of name or phones alone never reopen debt that the
  robot or an operator closed;
- balance <= 0 closes the open cases as paid, and pending promises not yet due count as kept.
Accounts missing from the file are left alone (many billings export only the debtors).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, select, update
from sqlalchemy.engine import Connection

from ivr.billing.bulk import Bulk, Native, raw
from ivr.billing.parse import AccountRow
from ivr.db.models import Account, CaseState, DebtCase, PhoneNumber, Promise
from ivr.outbox import facts as outbox

__all__ = ["AccountStore", "BatchResult", "OPEN_CLOSED_STATES", "StoreRow", "store_row"]

ACCOUNTS = cast(Table, Account.__table__)
PHONES = cast(Table, PhoneNumber.__table__)
CASES = cast(Table, DebtCase.__table__)
PROMISES = cast(Table, Promise.__table__)

VALUE_COLUMNS = (
    "holder_name", "service_name", "tariff", "balance", "currency", "due_date", "block_date",
    "timezone", "language", "country", "keep_price_until",
)
_BALANCE = VALUE_COLUMNS.index("balance")
_DUE = VALUE_COLUMNS.index("due_date")
_CURRENCY = VALUE_COLUMNS.index("currency")
_INSERT_COLUMNS = ("external_id", *VALUE_COLUMNS, "created_at", "updated_at")
_CASE_COLUMNS = (
    "account_id", "opened_on", "amount_initial", "amount_owed", "currency", "state",
    "attempts_in_stage", "next_phone_priority", "promise_broken", "created_at", "updated_at",
)
# Case states that end an episode of debt; any other state with closed_at NULL is open.
OPEN_CLOSED_STATES = (CaseState.PAID.value, CaseState.CLOSED.value)
_ACTIVE = CaseState.ACTIVE.value
_by_number = itemgetter(1)


@dataclass
class BatchResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    cases_opened: int = 0
    cases_updated: int = 0
    cases_closed: int = 0


# One account row as the store takes it: (external_id, VALUE_COLUMNS values in the driver's
# form, phone numbers in priority order, balance > 0). Plain tuples, so that the parser
# process can send them cheaply.
StoreRow = tuple[str, tuple[Any, ...], tuple[str, ...], bool]


def store_row(row: AccountRow, native: Native) -> StoreRow:
    """An AccountRow in the store's form (values converted for the driver)."""
    values = (
        row.holder_name, row.service_name, row.tariff, native.money(row.balance), row.currency,
        native.date(row.due_date), native.date(row.block_date), row.timezone, row.language, row.country,
        native.date(row.keep_price_until),
    )
    return row.external_id, values, row.phones, row.balance > 0


class AccountStore:
    """Account upserts on one connection; build once per import (statements compile once)."""

    def __init__(self, conn: Connection, *, now: dt.datetime, today: dt.date) -> None:
        self.bulk = Bulk(conn)
        self.native = self.bulk.native
        self.now = now
        self.today = today
        self._stamp = self.native.stamp(now)
        self._today = self.native.date(today)
        a, p, c, pr = ACCOUNTS, PHONES, CASES, PROMISES
        self._phone_priority = update(p).where(p.c.id == bindparam("b_id")).values(priority=bindparam("b_priority"))
        self._phone_delete = delete(p).where(p.c.id == bindparam("b_id"))
        self._case_amount = (
            update(c).where(c.c.id == bindparam("b_id"))
            .values(amount_owed=bindparam("b_owed"), amount_initial=bindparam("b_initial"),
                    currency=bindparam("b_currency"), updated_at=bindparam("b_now"))
        )
        self._case_paid = (
            update(c).where(c.c.id == bindparam("b_id"))
            .values(state=bindparam("b_state"), amount_owed=bindparam("b_zero"),
                    closed_at=bindparam("b_now"), updated_at=bindparam("b_now"))
        )
        self._promise_kept = (
            update(pr)
            .where(and_(pr.c.debt_case_id == bindparam("b_case"), pr.c.status == bindparam("b_pending"),
                        pr.c.promised_date >= bindparam("b_today")))
            .values(status=bindparam("b_kept"), resolved_at=bindparam("b_now"))
        )
        self._select_accounts = lambda among: select(
            raw(a.c.id), raw(a.c.external_id), *(raw(a.c[n]) for n in VALUE_COLUMNS)
        ).where(among(a.c.external_id))
        self._select_phones = lambda among: (
            select(raw(p.c.id), raw(p.c.account_id), raw(p.c.number), raw(p.c.priority))
            .where(among(p.c.account_id)).order_by(p.c.account_id, p.c.priority, p.c.id)
        )
        self._select_ids = lambda among: select(raw(a.c.external_id), raw(a.c.id)).where(among(a.c.external_id))
        # (state is filtered in Python: select_in statements take no parameter but the keys)
        self._select_open_cases = lambda among: (
            select(raw(c.c.id), raw(c.c.account_id), raw(c.c.amount_initial), raw(c.c.amount_owed),
                   raw(c.c.currency), raw(c.c.state))
            .where(among(c.c.account_id), c.c.closed_at.is_(None))
            .order_by(c.c.account_id, c.c.opened_on, c.c.id)
        )

    def write(self, rows: list[StoreRow], *, dry_run: bool = False) -> BatchResult:
        result = BatchResult()
        bulk = self.bulk
        # stored accounts: external_id -> (id, external_id, *values)
        stored = {r[1]: r for r in bulk.select_in(self._select_accounts, [r[0] for r in rows])}
        phones: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
        if stored:
            for pid, acc_id, number, priority in bulk.select_in(self._select_phones, [r[0] for r in stored.values()]):
                phones[acc_id].append((pid, number, priority))
        numbers = {acc_id: tuple(n for _i, n, _p in items) for acc_id, items in phones.items()}

        new: list[StoreRow] = []
        changed: list[tuple[StoreRow, int, tuple[Any, ...]]] = []  # (row, account id, stored values)
        for row in rows:
            old = stored.get(row[0])
            if old is None:
                new.append(row)
                continue
            old_values = tuple(old[2:])
            if old_values == row[1] and numbers.get(old[0], ()) == row[2]:
                result.unchanged += 1
            else:
                changed.append((row, old[0], old_values))
        result.created = len(new)
        result.updated = len(changed)
        if dry_run or not (new or changed):
            return result

        stamp = self._stamp
        upserts = [(row[0], *row[1], stamp, stamp) for row in new]
        upserts.extend((row[0], *row[1], stamp, stamp) for row, _id, _old in changed)
        bulk.insert_rows(ACCOUNTS, _INSERT_COLUMNS, upserts, conflict=("external_id",),
                         update=(*VALUE_COLUMNS, "updated_at"))
        ids = dict(bulk.select_in(self._select_ids, [row[0] for row in new])) if new else {}
        self._write_phones(new, changed, ids, phones)
        self._write_cases(new, changed, ids, result)
        return result

    def _write_phones(
        self,
        new: list[StoreRow],
        changed: list[tuple[StoreRow, int, tuple[Any, ...]]],
        ids: dict[str, int],
        phones: dict[int, list[tuple[int, str, int]]],
    ) -> None:
        inserts: list[tuple[Any, ...]] = []
        for ext_id, _values, numbers, _positive in new:
            acc_id = ids[ext_id]
            inserts.extend((acc_id, number, prio, "ok") for prio, number in enumerate(numbers, start=1))
        deletes: list[tuple[Any, ...]] = []
        reorder: list[tuple[Any, ...]] = []
        for row, acc_id, _old in changed:
            have = {number: (pid, prio) for pid, number, prio in phones.get(acc_id, ())}
            wanted = set(row[2])
            # numbers billing no longer lists go; kept numbers keep their row (and any
            # wrong-party mark the robot set on them)
            deletes.extend((pid,) for number, (pid, _p) in have.items() if number not in wanted)
            for prio, number in enumerate(row[2], start=1):
                if number not in have:
                    inserts.append((acc_id, number, prio, "ok"))
                elif have[number][1] != prio:
                    reorder.append((have[number][0], prio))
        self.bulk.execute_many(self._phone_delete, ("b_id",), deletes)
        self.bulk.execute_many(self._phone_priority, ("b_id", "b_priority"), reorder)
        inserts.sort(key=_by_number)  # in index order: the number index is the only random one
        self.bulk.insert_rows(PHONES, ("account_id", "number", "priority", "status"), inserts,
                              conflict=("account_id", "number"))

    def _new_case(self, acc_id: int, row: StoreRow) -> tuple[Any, ...]:
        values = row[1]
        amount = values[_BALANCE]
        return (
            acc_id, values[_DUE] or self._today, amount, amount, values[_CURRENCY],
            _ACTIVE, 0, 1, False, self._stamp, self._stamp,
        )

    def _write_cases(
        self,
        new: list[StoreRow],
        changed: list[tuple[StoreRow, int, tuple[Any, ...]]],
        ids: dict[str, int],
        result: BatchResult,
    ) -> None:
        n = self.native
        stamp = self._stamp
        inserts = [self._new_case(ids[row[0]], row) for row in new if row[3]]
        amounts: list[tuple[Any, ...]] = []
        paid: list[int] = []
        if changed:
            open_cases: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
            for case in self.bulk.select_in(self._select_open_cases, [acc_id for _r, acc_id, _o in changed]):
                if case[5] not in OPEN_CLOSED_STATES:
                    open_cases[case[1]].append(case)
            for row, acc_id, old in changed:
                cases = open_cases.get(acc_id, [])
                values = row[1]
                if row[3]:  # balance > 0
                    balance = n.to_money(values[_BALANCE]) or Decimal("0")
                    if cases:
                        case_id, _acc, initial_raw, owed_raw, currency, _state = cases[-1]
                        initial = n.to_money(initial_raw) or Decimal("0")
                        if n.to_money(owed_raw) != balance or currency != values[_CURRENCY]:
                            amounts.append((case_id, values[_BALANCE], n.money(max(initial, balance)),
                                            values[_CURRENCY], stamp))
                    elif (old[_BALANCE], old[_DUE]) != (values[_BALANCE], values[_DUE]):
                        inserts.append(self._new_case(acc_id, row))
                else:
                    paid.extend(case[0] for case in cases)
        self.bulk.insert_rows(CASES, _CASE_COLUMNS, inserts)
        self.bulk.execute_many(self._case_amount, ("b_id", "b_owed", "b_initial", "b_currency", "b_now"), amounts)
        zero = n.money(Decimal("0"))
        self.bulk.execute_many(self._case_paid, ("b_id", "b_state", "b_zero", "b_now"),
                               [(cid, CaseState.PAID.value, zero, stamp) for cid in paid])
        self.bulk.execute_many(self._promise_kept, ("b_case", "b_pending", "b_today", "b_kept", "b_now"),
                               [(cid, "pending", self._today, "kept", stamp) for cid in paid])
        outbox.promises_kept_on_import(self.bulk.conn, paid, self.now)
        result.cases_opened += len(inserts)
        result.cases_updated += len(amounts)
        result.cases_closed += len(paid)
