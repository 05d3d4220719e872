"""Work report: the callbacks operators got, by route, and the calls the robot handled for them.

Definitions:

- callbacks: tasks *created* in the period, by queue (= route). Their state and result are read
  as they are now: open, claimed, done; done ones by result (resolved, promise, refused,
  unreachable, wrong_number; anything else, or none, is "other_result"). Every route of the
  reason classifier and the human-request queue is listed, with zeros too. A route filter keeps
  one queue; a stage filter keeps tasks raised by a robot call placed in that stage (tasks with no
  call, e.g. hand-overs by the ladder, then drop out).
- robot: all robot attempts placed in the period, with or without a debt case
  (ivr.reports.period; the stage filter applies, the route filter does not). *completed* = result answered and the call script wrote a final outcome
  other than wrong_party or machine (a subscriber who hung up on the robot counts: an operator
  would have placed that call too).
- operator hours saved = completed * minutes per call (a setting) / 60, half-up to 0.01.
- robot minutes = total duration of the attempts that were picked up / 60, to 0.01.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import ClassVar

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from ivr.db.models import AttemptResult, CallAttempt, CallbackTask, Outcome, Reason
from ivr.db.options import get_option
from ivr.reports.output import Column, Table
from ivr.reports.period import CENT, PICKED_UP, Period, robot_attempt_filters

RESULTS = ("resolved", "promise", "refused", "unreachable", "wrong_number")
NOT_COMPLETED = ("wrong_party", "machine")


@dataclass(frozen=True)
class RouteRow:
    queue: str  # "total" in the total row
    raised: int
    open: int
    claimed: int
    done: int
    resolved: int
    promise: int
    refused: int
    unreachable: int
    wrong_number: int
    other_result: int  # done with another result or none


@dataclass(frozen=True)
class WorkReport:
    name: ClassVar[str] = "work"
    period: Period
    stage: str | None
    route: str | None
    minutes_per_call: Decimal
    routes: list[RouteRow]
    total: RouteRow
    robot_attempts: int
    robot_picked_up: int
    robot_completed: int
    robot_minutes: Decimal
    operator_hours_saved: Decimal

    @property
    def title(self) -> str:
        filters = "".join(f", {k} {v}" for k, v in (("stage", self.stage), ("route", self.route)) if v)
        return f"Work {self.period.label()}{filters}: {self.operator_hours_saved} operator hours saved"

    def tables(self) -> list[Table]:
        cols = (
            Column("queue", "route"), Column("raised", "raised", True), Column("open", "open", True),
            Column("claimed", "claimed", True), Column("done", "done", True),
            *(Column(r, r.replace("_", " "), True) for r in RESULTS), Column("other_result", "other", True),
        )
        rows = [_route_tuple(r) for r in [*self.routes, self.total]]
        robot_cols = (
            Column("attempts", "attempts", True), Column("picked_up", "picked up", True),
            Column("completed", "completed", True), Column("robot_minutes", "robot minutes", True),
            Column("minutes_per_call", "operator min/call", True),
            Column("operator_hours_saved", "operator hours saved", True),
        )
        robot = [(self.robot_attempts, self.robot_picked_up, self.robot_completed, self.robot_minutes,
                  self.minutes_per_call, self.operator_hours_saved)]
        return [
            Table("callbacks", "Callbacks raised in the period, by route", cols, rows),
            Table("robot", "Calls the robot handled (route filter not applied)", robot_cols, robot),
        ]


def _route_tuple(r: RouteRow) -> tuple[object, ...]:
    return (r.queue, r.raised, r.open, r.claimed, r.done, r.resolved, r.promise, r.refused, r.unreachable,
            r.wrong_number, r.other_result)


def _route_row(queue: str, counts: dict[tuple[str, str | None], int]) -> RouteRow:
    done = {result: n for (state, result), n in counts.items() if state == "done"}
    known = {r: done.get(r, 0) for r in RESULTS}
    return RouteRow(
        queue=queue, raised=sum(counts.values()),
        open=sum(n for (state, _), n in counts.items() if state == "open"),
        claimed=sum(n for (state, _), n in counts.items() if state == "claimed"),
        done=sum(done.values()), other_result=sum(done.values()) - sum(known.values()), **known,
    )


def work_report(
    session: Session, period: Period, *, minutes_per_call: float | Decimal, stage: str | None = None,
    route: str | None = None,
) -> WorkReport:
    minutes = Decimal(str(minutes_per_call))
    if minutes < 0:
        raise ValueError(f"minutes_per_call must be >= 0, got {minutes_per_call}")

    tasks = (
        select(CallbackTask.queue, CallbackTask.state, CallbackTask.result, func.count())
        .where(CallbackTask.created_at >= period.start_at, CallbackTask.created_at < period.end_at)
        .group_by(CallbackTask.queue, CallbackTask.state, CallbackTask.result)
    )
    if route is not None:
        tasks = tasks.where(CallbackTask.queue == route)
    if stage is not None:
        tasks = tasks.join(CallAttempt, CallAttempt.id == CallbackTask.attempt_id).where(CallAttempt.stage_code == stage)
    by_queue: dict[str, dict[tuple[str, str | None], int]] = {}
    for queue, state, result, n in session.execute(tasks):
        by_queue.setdefault(queue, {})[(state, result)] = n

    if route is not None:
        queues = [route]
    else:
        routes = {r for r in session.scalars(select(Reason.route).where(Reason.active.is_(True))) if r}
        human_queue = get_option(session, "human_request_queue")
        queues = sorted(routes | set(by_queue) | ({human_queue} if human_queue else set()))
    rows = [_route_row(q, by_queue.get(q, {})) for q in queues]
    all_counts: dict[tuple[str, str | None], int] = {}
    for counts in by_queue.values():
        for key, n in counts.items():
            all_counts[key] = all_counts.get(key, 0) + n

    picked = or_(CallAttempt.result.in_(PICKED_UP), Outcome.id.is_not(None))
    completed = and_(
        CallAttempt.result == AttemptResult.ANSWERED.value, Outcome.kind.is_not(None), Outcome.kind.not_in(NOT_COMPLETED)
    )
    attempts, picked_up, done_calls, seconds = session.execute(
        select(
            func.count(),
            func.sum(case((picked, 1), else_=0)),
            func.sum(case((completed, 1), else_=0)),
            func.sum(case((picked, CallAttempt.duration_s), else_=0)),
        )
        .select_from(CallAttempt)
        .outerjoin(Outcome, Outcome.attempt_id == CallAttempt.id)
        .where(*robot_attempt_filters(period, stage))
    ).one()
    done_calls = int(done_calls or 0)
    robot_minutes = (Decimal(str(seconds or 0)) / 60).quantize(CENT, rounding=ROUND_HALF_UP)
    return WorkReport(
        period=period, stage=stage, route=route, minutes_per_call=minutes, routes=rows,
        total=_route_row("total", all_counts), robot_attempts=int(attempts or 0), robot_picked_up=int(picked_up or 0),
        robot_completed=done_calls, robot_minutes=robot_minutes,
        operator_hours_saved=(done_calls * minutes / 60).quantize(CENT, rounding=ROUND_HALF_UP),
    )
