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
- operators: per operator (user name), as the tasks are now: *taken* = tasks the operator holds
  or closed whose claim was made in the period; *done* = tasks the operator closed in the period
  (done_at), by result; a task reported unreachable goes back to its queue and forgets who had it,
  so it counts for nobody. *calls* = the operator's click-to-calls placed in the period,
  *answered* those with result answered, *talk minutes* = their stored duration / 60 to 0.01
  (the operator's leg, from the operator's answer to the hangup), *outside hours* = calls placed
  with an override of the subscriber's hours. The route filter applies to the tasks, not to the
  calls; the stage filter does not apply. Users with nothing in the period are not listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import ClassVar

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from ivr.db.models import AttemptResult, CallAttempt, CallbackTask, Outcome, Reason, TaskState, User
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
class OperatorRow:
    operator: str  # user name; "total" in the total row
    taken: int
    done: int
    resolved: int
    promise: int
    refused: int
    unreachable: int
    wrong_number: int
    other_result: int
    calls: int
    answered: int
    talk_minutes: Decimal
    outside_hours: int


OPERATOR_COUNTS = ("taken", "done", *RESULTS, "other_result", "calls", "answered", "outside_hours")


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
    operators: list[OperatorRow]
    operators_total: OperatorRow

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
        op_cols = (
            Column("operator", "operator"), Column("taken", "taken", True), Column("done", "done", True),
            *(Column(r, r.replace("_", " "), True) for r in RESULTS), Column("other_result", "other", True),
            Column("calls", "calls", True), Column("answered", "answered", True),
            Column("talk_minutes", "talk minutes", True), Column("outside_hours", "outside hours", True),
        )
        op_rows = [_operator_tuple(r) for r in [*self.operators, self.operators_total]]
        return [
            Table("callbacks", "Callbacks raised in the period, by route", cols, rows),
            Table("robot", "Calls the robot handled (route filter not applied)", robot_cols, robot),
            Table("operators", "Operator work in the period, per operator", op_cols, op_rows),
        ]


def _route_tuple(r: RouteRow) -> tuple[object, ...]:
    return (r.queue, r.raised, r.open, r.claimed, r.done, r.resolved, r.promise, r.refused, r.unreachable,
            r.wrong_number, r.other_result)


def _operator_tuple(r: OperatorRow) -> tuple[object, ...]:
    return (r.operator, r.taken, r.done, r.resolved, r.promise, r.refused, r.unreachable, r.wrong_number,
            r.other_result, r.calls, r.answered, r.talk_minutes, r.outside_hours)


def _minutes(seconds: object) -> Decimal:
    return (Decimal(str(seconds or 0)) / 60).quantize(CENT, rounding=ROUND_HALF_UP)


def operator_rows(session: Session, period: Period, route: str | None = None) -> tuple[list[OperatorRow], OperatorRow]:
    """Per-operator work in the period (see the module docstring) and the total row."""
    in_period = lambda col: (col >= period.start_at, col < period.end_at)  # noqa: E731
    route_filter = [CallbackTask.queue == route] if route is not None else []
    counts: dict[str, dict[str, int]] = {}

    def add(name: str, key: str, n: int) -> None:
        row = counts.setdefault(name, dict.fromkeys(OPERATOR_COUNTS, 0))
        row[key] += n

    taken = (
        select(User.username, func.count()).select_from(CallbackTask).join(User, User.id == CallbackTask.claimed_by)
        .where(*in_period(CallbackTask.claimed_at), *route_filter).group_by(User.username)
    )
    for name, n in session.execute(taken):
        add(name, "taken", n)
    done = (
        select(User.username, CallbackTask.result, func.count()).select_from(CallbackTask)
        .join(User, User.id == CallbackTask.claimed_by)
        .where(CallbackTask.state == TaskState.DONE.value, *in_period(CallbackTask.done_at), *route_filter)
        .group_by(User.username, CallbackTask.result)
    )
    for name, result, n in session.execute(done):
        add(name, "done", n)
        add(name, result if result in RESULTS else "other_result", n)
    seconds: dict[str, object] = {}
    calls = (
        select(User.username, func.count(),
               func.sum(case((CallAttempt.result == AttemptResult.ANSWERED.value, 1), else_=0)),
               func.sum(CallAttempt.duration_s),
               func.sum(case((CallAttempt.override_reason.is_not(None), 1), else_=0)))
        .select_from(CallAttempt).join(User, User.id == CallAttempt.operator_id)
        .where(CallAttempt.purpose == "operator", *in_period(CallAttempt.created_at))
        .group_by(User.username)
    )
    for name, n, answered, talk, overridden in session.execute(calls):
        add(name, "calls", n)
        add(name, "answered", int(answered or 0))
        add(name, "outside_hours", int(overridden or 0))
        seconds[name] = talk

    def row(name: str, values: dict[str, int], talk: object) -> OperatorRow:
        return OperatorRow(operator=name, talk_minutes=_minutes(talk), **values)

    rows = [row(name, counts[name], seconds.get(name)) for name in sorted(counts)]
    totals = {key: sum(c[key] for c in counts.values()) for key in OPERATOR_COUNTS}
    total_seconds = sum((Decimal(str(v or 0)) for v in seconds.values()), Decimal(0))
    return rows, row("total", totals, total_seconds)


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
    robot_minutes = _minutes(seconds)
    operators, operators_total = operator_rows(session, period, route)
    return WorkReport(
        period=period, stage=stage, route=route, minutes_per_call=minutes, routes=rows,
        total=_route_row("total", all_counts), robot_attempts=int(attempts or 0), robot_picked_up=int(picked_up or 0),
        robot_completed=done_calls, robot_minutes=robot_minutes,
        operator_hours_saved=(done_calls * minutes / 60).quantize(CENT, rounding=ROUND_HALF_UP),
        operators=operators, operators_total=operators_total,
    )
