"""The parsing stage of the account import: in-process, or in a second process for big files.

Parsing and validating a row costs about as much as writing it, so for a big file a child
process reads and parses while the importer writes the previous batch (two cores, about half
the time). Rows cross the process boundary already in the store's form (StoreRow: tuples of
str/float/None for SQLite), which pickles fast. The child is started with "spawn" (no fork of a process that
may hold database connections and threads) and always ended by its handle when the import ends.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ivr.billing.bulk import Native
from ivr.billing.columns import Resolved
from ivr.billing.csvread import BrokenRecord, CsvFileError, CsvSource, open_csv
from ivr.billing.parse import AccountParser, RowError, broken_record_error
from ivr.billing.store import StoreRow, store_row

__all__ = ["AccountBatcher", "Batch", "parallel_batches"]

log = logging.getLogger(__name__)

# rows, problems, rows read so far in the file, bytes read so far
Batch = tuple[list[StoreRow], list[RowError], int, int]
_QUEUE_DEPTH = 3
_POLL_SECONDS = 1.0


class AccountBatcher:
    """Parses a file's rows, drops within-file duplicate ids, yields batches of good rows."""

    def __init__(self, parser: AccountParser, batch_size: int, native: Native) -> None:
        self.parser = parser
        self.batch_size = batch_size
        self.native = native
        self.first_line: dict[str, int] = {}

    def batches(self, src: CsvSource) -> Iterator[Batch]:
        parse = self.parser.parse
        first_line = self.first_line
        native = self.native
        rows: list[StoreRow] = []
        errors: list[RowError] = []
        total = 0
        for line, fields in src.rows():
            total += 1
            if isinstance(fields, BrokenRecord):
                errors.append(broken_record_error(line, fields))
                continue
            row, problems = parse(line, fields)
            if row is None:
                errors.extend(problems)
                continue
            first = first_line.setdefault(row.external_id, line)
            if first != line:
                errors.append(RowError(line, f"duplicate id {row.external_id!r} (first on line {first})",
                                       "external_id", row.external_id))
                continue
            if problems:
                errors.extend(problems)
            rows.append(store_row(row, native))
            if len(rows) >= self.batch_size:
                yield rows, errors, total, src.position()
                rows, errors = [], []
        if rows or errors or total:
            yield rows, errors, total, src.position()


def _worker(path: str, detected: tuple[str, str, int], cols: Resolved, parser_kw: dict[str, Any],
            batch_size: int, dialect: str, out: Any, delimiter: str | None = None) -> None:
    """Child process: parse the file and send batches; None at the end, ("error", text) on failure,
    ("file_error", text) when the file cannot be opened again (before any batch)."""
    try:
        try:
            src = open_csv(path, detected=detected, delimiter=delimiter)
        except CsvFileError as exc:  # e.g. the file was replaced since the scan: the admin's error
            out.put(("file_error", str(exc)))
            return
        try:
            batcher = AccountBatcher(AccountParser(cols, **parser_kw), batch_size, Native(dialect))
            for batch in batcher.batches(src):
                out.put(batch)
        finally:
            src.close()
        out.put(None)
    except BaseException as exc:  # noqa: BLE001 (reported to the parent, which raises it)
        out.put(("error", f"{type(exc).__name__}: {exc}"))


def parallel_batches(path: Path, detected: tuple[str, str, int], cols: Resolved, parser_kw: dict[str, Any],
                     batch_size: int, dialect: str, delimiter: str | None = None) -> Iterator[Batch]:
    """Batches parsed by a child process (same content and order as AccountBatcher.batches)."""
    ctx = mp.get_context("spawn")
    channel = ctx.Queue(maxsize=_QUEUE_DEPTH)
    proc = ctx.Process(target=_worker, args=(str(path), detected, cols, parser_kw, batch_size, dialect, channel, delimiter),
                       name="ivr-import-parser", daemon=True)
    proc.start()
    log.debug("import parser process %s started", proc.pid)
    try:
        while True:
            try:
                item = channel.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not proc.is_alive():
                    raise RuntimeError(f"the import parser process ended unexpectedly (exit code {proc.exitcode})") from None
                continue
            if item is None:
                break
            if item[0] == "file_error":
                raise CsvFileError(item[1])
            if item[0] == "error":
                raise RuntimeError(f"the import parser process failed: {item[1]}")
            yield item
    finally:
        if proc.is_alive():
            proc.terminate()  # the import stopped early: do not leave the parser behind
        proc.join(timeout=10)
        channel.close()
