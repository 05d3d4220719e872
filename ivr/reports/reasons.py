"""Reasons report: each reason of the classifier, its norm %, the actual % and the deviation.

Definitions:

- A *reason answer* is the outcome of a robot attempt placed in the period (see
  ivr.reports.period) whose final kind is ``reason`` or ``refusal``. ``reason`` with a reason id is
  that reason; ``reason`` without one is *unknown* (the subscriber entered the reason menu but
  pressed no valid key); ``refusal`` is *refused*.
- The denominator of every percentage is ALL reason answers of the period (and stage), unknown and
  refused included, so that the listed percentages add up to 100 (up to rounding) and compare
  with the norms, which the company plans as shares of all answers.
- actual % = 100 * count / all answers (half-up, 0.01); deviation = actual % - norm %, in
  percentage points (from the rounded actual). With no answers at all, actual and deviation are
  None.
- Rows: every active reason, also with zero answers; an inactive reason only when it has answers
  in the period (else its answers would silently vanish from the sum). Ordered by category
  (controllable, uncontrollable, then unknown/refused as "other"), then classifier position.
- A route filter lists only the reasons routed to that queue (unknown and refused have no route
  and are left out) but keeps the denominator of all answers, so the percentages still compare
  with the norms. A stage filter counts only calls placed in that stage.
- Category rows sum the listed reasons of each category (norm, count, actual %, deviation).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ivr.db.models import CallAttempt, Outcome, Reason
from ivr.reports.output import Column, Table
from ivr.reports.period import Period, pct, robot_attempt_filters

CATEGORIES = ("controllable", "uncontrollable", "other")
UNKNOWN = "unknown"
REFUSED = "refused"

_OWN_LABELS = {
    UNKNOWN: {"ru": "не выбрал причину", "uk": "не обрав причину", "en": "no valid key (unknown)"},
    REFUSED: {"ru": "отказался назвать причину", "uk": "відмовився назвати причину", "en": "refused to say"},
}


@dataclass(frozen=True)
class ReasonRow:
    code: str  # the reason code, or "unknown" / "refused"
    label: str
    category: str  # controllable | uncontrollable | other
    key: str | None  # keypad code in the reason menu
    actionable: bool
    route: str | None
    active: bool
    norm_pct: Decimal | None  # None for unknown / refused
    count: int
    actual_pct: Decimal | None
    deviation_pp: Decimal | None  # actual - norm, percentage points


@dataclass(frozen=True)
class CategoryRow:
    category: str
    norm_pct: Decimal | None
    count: int
    actual_pct: Decimal | None
    deviation_pp: Decimal | None


@dataclass(frozen=True)
class ReasonsReport:
    name: ClassVar[str] = "reasons"
    period: Period
    stage: str | None
    route: str | None
    language: str
    rows: list[ReasonRow]
    categories: list[CategoryRow]
    total_answers: int  # the denominator: all reason answers incl. unknown and refused
    listed_answers: int  # answers in the listed rows (less than total with a route filter)

    @property
    def title(self) -> str:
        filters = "".join(f", {k} {v}" for k, v in (("stage", self.stage), ("route", self.route)) if v)
        return f"Reasons {self.period.label()}{filters}: {self.total_answers} answers"

    def tables(self) -> list[Table]:
        reason_cols = (
            Column("category", "category"), Column("code", "code"), Column("label", "reason"),
            Column("norm_pct", "norm %", True), Column("count", "count", True),
            Column("actual_pct", "actual %", True), Column("deviation_pp", "deviation pp", True),
        )
        rows = [(r.category, r.code, r.label, r.norm_pct, r.count, r.actual_pct, r.deviation_pp) for r in self.rows]
        cat_cols = (
            Column("category", "category"), Column("norm_pct", "norm %", True), Column("count", "count", True),
            Column("actual_pct", "actual %", True), Column("deviation_pp", "deviation pp", True),
        )
        cats = [(c.category, c.norm_pct, c.count, c.actual_pct, c.deviation_pp) for c in self.categories]
        return [
            Table("reasons", "By reason (percent of all reason answers)", reason_cols, rows),
            Table("categories", "By category", cat_cols, cats),
        ]


def label_for(labels: dict[str, str], language: str, fallback: str) -> str:
    for lang in (language, "en", "ru"):
        if labels.get(lang):
            return labels[lang]
    return next((v for v in labels.values() if v), fallback)


def _deviation(actual: Decimal | None, norm: Decimal | None) -> Decimal | None:
    if actual is None or norm is None:
        return None
    return actual - norm


def reasons_report(
    session: Session, period: Period, *, stage: str | None = None, route: str | None = None, language: str = "ru"
) -> ReasonsReport:
    answers = session.execute(
        select(Outcome.kind, Outcome.reason_id, func.count())
        .join(CallAttempt, Outcome.attempt_id == CallAttempt.id)
        .where(*robot_attempt_filters(period, stage), Outcome.kind.in_(("reason", "refusal")))
        .group_by(Outcome.kind, Outcome.reason_id)
    ).all()
    by_reason: Counter[int] = Counter()
    own: Counter[str] = Counter()
    for kind, reason_id, count in answers:
        if kind == "refusal":
            own[REFUSED] += count
        elif reason_id is None:
            own[UNKNOWN] += count
        else:
            by_reason[reason_id] += count
    total = sum(by_reason.values()) + sum(own.values())

    query = select(Reason).where(or_(Reason.active.is_(True), Reason.id.in_(list(by_reason) or [-1])))
    if route is not None:
        query = query.where(Reason.route == route)
    reasons = sorted(
        session.scalars(query),
        key=lambda r: (CATEGORIES.index(r.category) if r.category in CATEGORIES else 1, r.position, r.code),
    )

    rows: list[ReasonRow] = []
    for reason in reasons:
        count = by_reason.get(reason.id, 0)
        actual = pct(count, total)
        norm = Decimal(reason.norm_pct).quantize(Decimal("0.01"))
        rows.append(ReasonRow(
            code=reason.code, label=label_for(reason.labels or {}, language, reason.code),
            category=reason.category, key=reason.key, actionable=reason.actionable, route=reason.route,
            active=reason.active, norm_pct=norm, count=count, actual_pct=actual,
            deviation_pp=_deviation(actual, norm),
        ))
    if route is None:
        for code in (UNKNOWN, REFUSED):
            count = own.get(code, 0)
            rows.append(ReasonRow(
                code=code, label=label_for(_OWN_LABELS[code], language, code), category="other", key=None,
                actionable=False, route=None, active=True, norm_pct=None, count=count,
                actual_pct=pct(count, total), deviation_pp=None,
            ))

    categories: list[CategoryRow] = []
    for category in dict.fromkeys(r.category for r in rows):
        members = [r for r in rows if r.category == category]
        count = sum(r.count for r in members)
        norms = [r.norm_pct for r in members if r.norm_pct is not None]
        norm_sum = sum(norms, Decimal("0.00")) if norms else None
        share = pct(count, total)
        categories.append(CategoryRow(category, norm_sum, count, share, _deviation(share, norm_sum)))

    return ReasonsReport(
        period=period, stage=stage, route=route, language=language, rows=rows, categories=categories,
        total_answers=total, listed_answers=sum(r.count for r in rows),
    )
