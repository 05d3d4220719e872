"""Promises report: promises made in the period and how they ended, overall and by stage.

Definitions:

- made: promises *created* in the period (any source: robot, operator, api). The period picks a
  cohort; their status is read as it is now, so a promise made near the end of the period may
  still be pending.
- kept / broken / pending / cancelled: ``Promise.status`` (kept = paid by the promised date, as
  the promise watcher decided; cancelled = replaced by a newer promise or withdrawn).
- kept rate % = kept / (kept + broken): pending and cancelled promises are not judged yet or not
  judgeable. None when nothing was kept or broken.
- by stage: ``Promise.stage_code`` (the stage the case was in when the promise was made). Every
  active ladder stage is listed (zero rows too), in ladder order, then other stage codes met, then
  promises without a stage. A stage filter keeps only that stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.db.models import LadderStage, Promise
from ivr.reports.output import Column, Table
from ivr.reports.period import Period, pct

STATUSES = ("kept", "broken", "pending", "cancelled")
NO_STAGE = "(none)"


@dataclass(frozen=True)
class PromiseRow:
    stage: str | None  # None in the total row; "(none)" for promises without a stage
    made: int
    kept: int
    broken: int
    pending: int
    cancelled: int
    kept_rate_pct: Decimal | None  # kept / (kept + broken)


@dataclass(frozen=True)
class PromisesReport:
    name: ClassVar[str] = "promises"
    period: Period
    stage: str | None
    total: PromiseRow
    by_stage: list[PromiseRow]

    @property
    def title(self) -> str:
        stage = f", stage {self.stage}" if self.stage else ""
        return f"Promises {self.period.label()}{stage}: {self.total.made} made, kept rate {_show(self.total.kept_rate_pct)}"

    def tables(self) -> list[Table]:
        cols = (
            Column("stage", "stage"), Column("made", "made", True), Column("kept", "kept", True),
            Column("broken", "broken", True), Column("pending", "pending", True),
            Column("cancelled", "cancelled", True), Column("kept_rate_pct", "kept rate %", True),
        )

        def row(r: PromiseRow, stage: str) -> tuple[object, ...]:
            return (stage, r.made, r.kept, r.broken, r.pending, r.cancelled, r.kept_rate_pct)

        rows = [row(r, r.stage or NO_STAGE) for r in self.by_stage] + [row(self.total, "total")]
        return [Table("promises", "Promises made in the period, by stage", cols, rows)]


def _show(value: Decimal | None) -> str:
    return "-" if value is None else f"{value}%"


def _row(stage: str | None, counts: dict[str, int]) -> PromiseRow:
    kept, broken = counts.get("kept", 0), counts.get("broken", 0)
    return PromiseRow(
        stage=stage, made=sum(counts.values()), kept=kept, broken=broken, pending=counts.get("pending", 0),
        cancelled=counts.get("cancelled", 0), kept_rate_pct=pct(kept, kept + broken),
    )


def promises_report(session: Session, period: Period, *, stage: str | None = None) -> PromisesReport:
    query = (
        select(Promise.stage_code, Promise.status, func.count())
        .where(Promise.created_at >= period.start_at, Promise.created_at < period.end_at)
        .group_by(Promise.stage_code, Promise.status)
    )
    if stage is not None:
        query = query.where(Promise.stage_code == stage)
    counts: dict[str | None, dict[str, int]] = {}
    total: dict[str, int] = {}
    for stage_code, status, n in session.execute(query):
        counts.setdefault(stage_code, {})[status] = counts.get(stage_code, {}).get(status, 0) + n
        total[status] = total.get(status, 0) + n

    if stage is not None:
        order: list[str | None] = [stage]
    else:
        ladder = list(session.scalars(select(LadderStage.code).where(LadderStage.active.is_(True)).order_by(LadderStage.position)))
        others = sorted(c for c in counts if c is not None and c not in ladder)
        order = [*ladder, *others] + ([None] if None in counts else [])
    by_stage = [_row(code if code is not None else NO_STAGE, counts.get(code, {})) for code in order]
    return PromisesReport(period=period, stage=stage, total=_row(None, total), by_stage=by_stage)
