"""Importing billing exports: accounts (with their debt cases) and payments.

Every bad row is reported with its line number and reason while every good row is stored; an
import of the same file a second time changes nothing (accounts are upserted by external id and
compared first, payments are deduplicated by their id). Each run is recorded in `import_runs`.
Reading and validation rules: ivr.billing.csvread and ivr.billing.parse; database writes:
ivr.billing.store (accounts) and ivr.billing.payments (payments).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload, sessionmaker
from tqdm import tqdm

from ivr.billing.bulk import Native
from ivr.billing.columns import ColumnMap
from ivr.billing.csvread import BrokenRecord, CsvFileError, CsvSource, open_csv
from ivr.billing.parse import (
    AccountParser,
    PaymentParser,
    PaymentRow,
    RowError,
    broken_record_error,
)
from ivr.billing.payments import apply_payment
from ivr.billing.pipeline import AccountBatcher, parallel_batches
from ivr.billing.store import AccountStore, BatchResult
from ivr.config import Settings
from ivr.db.models import Account, DebtCase, ImportRun, Payment, utcnow
from ivr.db.sqlite_lock import yield_write_lock
from ivr.dialer.thanks_store import record_paid_cases

__all__ = ["ImportFileError", "ImportReport", "RowError", "import_accounts", "import_payments"]

log = logging.getLogger(__name__)

ImportFileError = CsvFileError  # the file cannot be read at all (the command exits non-zero)

ACCOUNT_BATCH = 50_000  # rows per transaction (PostgreSQL: other writers are not held up by it)
# SQLite has one write lock for the whole file, held from a transaction's first write to its
# commit: 500 rows hold it about 10 ms (p99 20 ms), and after each commit the import lets any
# writer waiting for the lock go first (ivr.db.sqlite_lock.yield_write_lock), so the call facts
# written meanwhile by `ivr run` wait at most about one such transaction, not the 60-135 ms of
# 2,000 rows or the second of 50,000 (README "Durability of call facts"). 400,000 rows took no
# longer to write than in 2,000-row transactions (10.7 against 12.0 s).
SQLITE_ACCOUNT_BATCH = 500
PAYMENT_BATCH = 2_000
# a payment costs about 0.3 ms, a tenth of it holding the lock (2,000 held it about 180 ms)
SQLITE_PAYMENT_BATCH = 200
# from this size (about 100,000 rows) a second process parses while this one writes
PARALLEL_MIN_BYTES = 10 << 20
# import_runs.errors keeps this many errors; the report object keeps them all
STORED_ERRORS = 1000
_PROGRESS_MIN_BYTES = 1 << 20

T = TypeVar("T")
Progress = Callable[[int, int], None]  # (bytes read so far, file size)


@dataclass
class ImportReport:
    kind: str
    encoding: str
    delimiter: str
    rows_total: int = 0
    rows_ok: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    filename: str = ""
    sha256: str = ""
    dry_run: bool = False
    cases_opened: int = 0
    cases_updated: int = 0
    cases_closed: int = 0
    seen_before: dt.datetime | None = None  # an earlier run imported the very same file
    run_id: int | None = None
    thanks_recorded: int = 0  # issue 16: paid-off cases that qualified for a thank-you call

    @property
    def rows_bad(self) -> int:
        return self.rows_total - self.rows_ok

    @property
    def nothing_read(self) -> bool:
        return self.rows_ok == 0

    def summary(self) -> str:
        delim = {"\t": "tab"}.get(self.delimiter, repr(self.delimiter))
        head = "Dry run, nothing written. " if self.dry_run else ""
        lines = [
            f"{head}{self.kind.capitalize()} from {self.filename or 'input'} ({self.encoding}, {delim}): "
            f"{self.rows_total} rows read, {self.rows_ok} good ({self.created} new, {self.updated} updated, "
            f"{self.unchanged} unchanged), {self.rows_bad} rejected."
        ]
        if self.cases_opened or self.cases_updated or self.cases_closed:
            lines.append(
                f"Debt cases: {self.cases_opened} opened, {self.cases_updated} amount updated, "
                f"{self.cases_closed} closed as paid."
            )
        if self.seen_before is not None:
            lines.append(f"Note: this same file was already imported on {self.seen_before:%Y-%m-%d %H:%M} UTC.")
        warnings = sum(1 for e in self.errors if "were kept" in e.reason)
        if self.errors:
            lines.append(f"Problems ({len(self.errors) - warnings} row(s) rejected, {warnings} warning(s) on kept rows):")
            lines.extend(str(e) for e in self.errors)
        return "\n".join(lines)


def _batches(items: Iterator[T], size: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _name_of(source: Path | BinaryIO | str, filename: str | None) -> str:
    if filename:
        return filename
    if isinstance(source, (str, Path)):
        return Path(source).name
    return str(getattr(source, "name", "") or "upload")


def _progress_bar(enabled: bool, src: CsvSource, kind: str) -> tqdm[Any]:
    show = enabled and src.size >= _PROGRESS_MIN_BYTES and sys.stderr.isatty()
    return tqdm(total=src.size, unit="B", unit_scale=True, desc=f"import {kind}", file=sys.stderr,
                disable=not show, leave=False)


def _seen_before(session: Session, kind: str, sha: str) -> dt.datetime | None:
    return session.scalar(
        select(ImportRun.created_at).where(ImportRun.kind == kind, ImportRun.sha256 == sha)
        .order_by(ImportRun.id).limit(1)
    )


def _record_run(sessions: sessionmaker[Session], report: ImportReport, now: dt.datetime) -> None:
    errors: list[dict[str, Any]] = [
        {"line": e.line, "reason": e.reason, "field": e.field, "value": e.value} for e in report.errors[:STORED_ERRORS]
    ]
    if len(report.errors) > STORED_ERRORS:
        errors.append({"line": None, "reason": f"... and {len(report.errors) - STORED_ERRORS} more", "field": None, "value": None})
    with sessions.begin() as session:
        run = ImportRun(
            kind=report.kind, filename=report.filename[:300], sha256=report.sha256,
            rows_ok=report.rows_ok, rows_bad=report.rows_bad, created=report.created,
            updated=report.updated, errors=errors, created_at=now,
        )
        session.add(run)
        session.flush()
        report.run_id = run.id


def _engine(sessions: sessionmaker[Session]) -> Engine:
    bind = sessions.kw.get("bind")
    if not isinstance(bind, Engine):
        raise TypeError("import needs a sessionmaker bound to an Engine")
    return bind


def import_accounts(
    sessions: sessionmaker[Session],
    source: Path | BinaryIO | str,
    *,
    settings: Settings,
    today: dt.date,
    columns: ColumnMap | None = None,
    progress: bool = False,
    dry_run: bool = False,
    filename: str | None = None,
    now: dt.datetime | None = None,
    batch_size: int | None = None,
    parallel: bool | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    on_progress: Progress | None = None,
) -> ImportReport:
    """Import an accounts file; raises ImportFileError when the file cannot be read at all.

    `today` dates a new debt case whose row has no due date; `now` (naive UTC, default the
    current time) stamps created/updated/closed times. `parallel` parses in a second process
    (default: for files of PARALLEL_MIN_BYTES or more given by path, on a multi-core machine).
    `batch_size` is rows per transaction (default per database: ACCOUNT_BATCH,
    SQLITE_ACCOUNT_BATCH). `encoding` / `delimiter` override detection (the web wizard's choice); `on_progress(bytes
    read, file size)` is called after every batch (the wizard's status page)."""
    now = now or utcnow()
    src = open_csv(source, encoding=encoding, delimiter=delimiter)
    try:
        cols = (columns or ColumnMap.default()).resolve("accounts", src.header)
        report = ImportReport(kind="accounts", encoding=src.encoding_label, delimiter=src.delimiter,
                              filename=_name_of(source, filename), sha256=src.sha256, dry_run=dry_run)
        with sessions() as session:
            report.seen_before = _seen_before(session, "accounts", src.sha256)
        bar = _progress_bar(progress, src, "accounts")
        parser_kw: dict[str, Any] = {
            "region": settings.default_region, "default_currency": settings.default_currency,
            "default_language": settings.default_language, "years": settings.import_years,
        }
        if parallel is None:
            parallel = isinstance(source, (str, Path)) and src.size >= PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1
        engine = _engine(sessions)
        if batch_size is None:
            batch_size = SQLITE_ACCOUNT_BATCH if engine.dialect.name == "sqlite" else ACCOUNT_BATCH
        if parallel and isinstance(source, (str, Path)):
            batches = parallel_batches(Path(source), (src.encoding, src.sha256, src.size), cols, parser_kw,
                                       batch_size, engine.dialect.name, src.delimiter)
        else:
            batches = AccountBatcher(AccountParser(cols, **parser_kw), batch_size,
                                     Native(engine.dialect.name)).batches(src)
        with engine.connect() as conn:
            store = AccountStore(conn, now=now, today=today)
            done = 0
            with store.bulk.tuned():
                for rows, errors, total, pos in batches:
                    report.rows_total = total
                    report.errors.extend(errors)
                    if rows:
                        with conn.begin():
                            result = store.write(rows, dry_run=dry_run)
                        _add(report, result, len(rows))
                        yield_write_lock(conn)  # SQLite: a call's facts waiting for the lock go first
                    bar.update(max(0, pos - done))
                    done = pos
                    if on_progress is not None:
                        on_progress(pos, src.size)
        bar.close()
    finally:
        src.close()
    if not dry_run:
        _record_run(sessions, report, now)
        if report.cases_opened or report.cases_updated:
            from ivr.dialer.staging import stage_new_cases  # the new cases get their stage now

            stage_new_cases(sessions, settings.default_timezone, now.replace(tzinfo=dt.UTC))
    log.info("accounts import %s: %d rows, %d good, %d new, %d updated, %d unchanged, %d problems",
             report.filename, report.rows_total, report.rows_ok, report.created, report.updated,
             report.unchanged, len(report.errors))
    return report


def _add(report: ImportReport, result: BatchResult, rows: int) -> None:
    report.rows_ok += rows
    report.created += result.created
    report.updated += result.updated
    report.unchanged += result.unchanged
    report.cases_opened += result.cases_opened
    report.cases_updated += result.cases_updated
    report.cases_closed += result.cases_closed


def import_payments(
    sessions: sessionmaker[Session],
    source: Path | BinaryIO | str,
    *,
    settings: Settings,
    columns: ColumnMap | None = None,
    progress: bool = False,
    dry_run: bool = False,
    filename: str | None = None,
    now: dt.datetime | None = None,
    today: dt.date | None = None,
    batch_size: int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    on_progress: Progress | None = None,
) -> ImportReport:
    """Import a payments file: new payments are stored and applied to the debt at once.

    A payment whose id was imported before is "unchanged" (or reported if its values differ);
    a payment for an account we do not know is a bad row, and so is one dated after `today`
    (plus a day of slack for time zones; default: the UTC date of `now`). `batch_size` is payments
    per transaction (default per database: PAYMENT_BATCH, SQLITE_PAYMENT_BATCH)."""
    now = now or utcnow()
    latest = (today or now.date()) + dt.timedelta(days=1)
    src = open_csv(source, encoding=encoding, delimiter=delimiter)
    try:
        cols = (columns or ColumnMap.default()).resolve("payments", src.header)
        parser = PaymentParser(cols, settings.import_years)
        report = ImportReport(kind="payments", encoding=src.encoding_label, delimiter=src.delimiter,
                              filename=_name_of(source, filename), sha256=src.sha256, dry_run=dry_run)
        with sessions() as session:
            report.seen_before = _seen_before(session, "payments", src.sha256)
        first_line: dict[str, int] = {}
        bar = _progress_bar(progress, src, "payments")

        def good_rows() -> Iterator[PaymentRow]:
            for line, fields in src.rows():
                report.rows_total += 1
                if isinstance(fields, BrokenRecord):
                    report.errors.append(broken_record_error(line, fields))
                    continue
                row, problems = parser.parse(line, fields)
                if row is None:
                    report.errors.extend(problems)
                    continue
                if row.paid_on > latest:
                    report.errors.append(RowError(line, f"bad date '{row.paid_on:%d.%m.%Y}' (in the future)",
                                                  "paid_on", f"{row.paid_on:%d.%m.%Y}"))
                    continue
                first = first_line.setdefault(row.payment_id, line)
                if first != line:
                    report.errors.append(RowError(line, f"duplicate payment id {row.payment_id!r} (first on line {first})",
                                                  "payment_id", row.payment_id))
                    continue
                yield row

        done = 0
        engine = _engine(sessions)
        if batch_size is None:
            batch_size = SQLITE_PAYMENT_BATCH if engine.dialect.name == "sqlite" else PAYMENT_BATCH
        for batch in _batches(good_rows(), batch_size):
            with sessions() as session:
                _payment_batch(session, batch, report, settings=settings, now=now)
                if dry_run:
                    session.rollback()
                else:
                    session.commit()
            yield_write_lock(engine)  # SQLite: a call's facts waiting for the lock go first
            pos = src.position()
            bar.update(max(0, pos - done))
            done = pos
            if on_progress is not None:
                on_progress(pos, src.size)
        bar.close()
    finally:
        src.close()
    report.errors.sort(key=lambda e: e.line)  # file problems and database problems, in file order
    if not dry_run:
        _record_run(sessions, report, now)
    log.info("payments import %s: %d rows, %d new, %d unchanged, %d problems",
             report.filename, report.rows_total, report.created, report.unchanged, len(report.errors))
    return report


def _payment_batch(session: Session, batch: list[PaymentRow], report: ImportReport, *, settings: Settings,
                   now: dt.datetime) -> None:
    known = {
        pid: (acc, Decimal(amount), paid_on)
        for pid, acc, amount, paid_on in session.execute(
            select(Payment.external_id, Account.external_id, Payment.amount, Payment.paid_on)
            .join(Account, Account.id == Payment.account_id)
            .where(Payment.external_id.in_([r.payment_id for r in batch]))
        )
    }
    accounts = {
        a.external_id: a
        for a in session.scalars(
            select(Account).where(Account.external_id.in_({r.account for r in batch}))
            .options(selectinload(Account.cases).selectinload(DebtCase.promises))
        )
    }
    paid_off: list[tuple[DebtCase, Payment]] = []
    for row in batch:
        old = known.get(row.payment_id)
        if old is not None:
            if old == (row.account, row.amount, row.paid_on):
                report.unchanged += 1
                report.rows_ok += 1
            else:
                report.errors.append(RowError(
                    row.line, f"payment {row.payment_id!r} was already imported with other values "
                    f"(account {old[0]}, {old[1]} on {old[2]:%d.%m.%Y}); left as it was", "payment_id", row.payment_id))
            continue
        account = accounts.get(row.account)
        if account is None:
            report.errors.append(RowError(row.line, f"unknown account {row.account!r}", "account", row.account))
            continue
        if row.currency and row.currency != account.currency:
            report.errors.append(RowError(row.line, f"bad currency {row.currency!r} (the account is in {account.currency})",
                                          "currency", row.currency))
            continue
        payment = Payment(external_id=row.payment_id, account_id=account.id, amount=row.amount,
                          paid_on=row.paid_on, created_at=now)
        session.add(payment)
        open_before = [c for c in account.cases if c.state != "paid"]
        apply_payment(session, payment, now=now)
        just_paid = [c for c in open_before if c.state == "paid"]
        report.cases_closed += len(just_paid)
        paid_off.extend((c, payment) for c in just_paid)
        report.created += 1
        report.rows_ok += 1
    session.flush()
    if paid_off:  # issue 16: a payment after a robot call or a promise may get a thank-you call
        report.thanks_recorded += record_paid_cases(session, paid_off, now)
