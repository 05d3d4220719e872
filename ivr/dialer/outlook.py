"""What the robot can do now, and why not: the case outlook behind `ivr status` and the minute
line of `ivr run`.

Two ways to the same buckets:
- `build_outlook` (exact): every open case (active or promised, owed > 0) is put in exactly one
  bucket by the same pure checks the dialer applies before a call (`selector.ladder_today` and
  `selector.assess`), read-only. About a millisecond of CPU per case, so it is used up to
  `EXACT_LIMIT` open cases.
- `quick_outlook` (at scale): grouped queries over what the dialer wrote when it moved a case out
  of the queue head (`next_attempt_at` and `wait_reason`): a case due now is counted as callable
  (the next pass, seconds away, checks it for real); a waiting one by its reason.
A bucket keeps its count and the earliest moment one of its cases becomes callable, in UTC and in
that subscriber's local time, so the next planned call can be named.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ivr.db.models import Account, CallAttempt, CaseState, DebtCase, OptOut
from ivr.dialer import selector as sel
from ivr.dialer.ladder import pending_promises
from ivr.dialer.policy import Rules
from ivr.dialer.windows import naive_utc, to_utc, zone

BATCH = 2000
EXACT_LIMIT = 5000  # open cases up to which `outlook()` checks every case
# wait_reason (written by the dialer) -> bucket
REASON_BUCKET = {
    sel.OUTSIDE_WINDOW: "waiting_window", sel.OVER_LIMIT: "held_by_limits", sel.PROMISED_WAIT: "promised",
    "waiting_stage": "waiting_stage", sel.NO_STAGE: "waiting_stage", "retry": "scheduled", "paid_claim": "scheduled",
}


@dataclass
class Bucket:
    count: int = 0
    first_utc: dt.datetime | None = None  # earliest moment one of them may be called
    first_local: str | None = None  # the same moment in that subscriber's local time
    first_zone: str | None = None

    def add(self, when: dt.datetime | None, tz: str | None) -> None:
        self.count += 1
        if when is None:
            return
        when = to_utc(when)
        if self.first_utc is None or when < self.first_utc:
            self.first_utc = when
            local = when.astimezone(zone(tz) or ZoneInfo("UTC")) if tz else when
            self.first_local = local.strftime("%Y-%m-%d %H:%M")
            self.first_zone = tz or "UTC"


@dataclass
class Outlook:
    at: dt.datetime
    states: dict[str, int] = field(default_factory=dict)  # every case by state
    open_cases: int = 0  # active or promised with something owed
    callable_now: int = 0
    in_flight: int = 0  # a call to the person is in progress
    opted_out: int = 0
    no_phone: int = 0
    bad_timezone: int = 0
    waiting_window: Bucket = field(default_factory=Bucket)  # outside the stage's local hours
    held_by_limits: Bucket = field(default_factory=Bucket)  # contact limits reached
    scheduled: Bucket = field(default_factory=Bucket)  # a retry (or recheck) planned later
    waiting_stage: Bucket = field(default_factory=Bucket)  # the ladder waits for a stage date
    promised: Bucket = field(default_factory=Bucket)  # paused until the promised date passes
    leaving: int = 0  # the ladder takes them off the robot today (retention, block, overdue)
    method: str = "exact"  # exact | quick (see the module's docstring)

    @property
    def next_call(self) -> tuple[dt.datetime | None, str]:
        """When the next call may be placed and why then."""
        if self.callable_now:
            return self.at, "callable now"
        best: tuple[dt.datetime | None, str] = (None, "nothing planned")
        for name in ("waiting_window", "held_by_limits", "scheduled", "waiting_stage", "promised"):
            bucket: Bucket = getattr(self, name)
            if bucket.first_utc is not None and (best[0] is None or bucket.first_utc < best[0]):
                best = (bucket.first_utc, f"{name} ({bucket.first_local} {bucket.first_zone})")
        return best

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        when, why = self.next_call
        data["next_call"] = {"at": _iso(when), "why": why}
        data["at"] = _iso(self.at)
        for name in ("waiting_window", "held_by_limits", "scheduled", "waiting_stage", "promised"):
            data[name]["first_utc"] = _iso(getattr(self, name).first_utc)
        return data

    def gist(self) -> str:
        """One line: what the robot does and, when it cannot call, why."""
        parts = [f"{self.callable_now} callable now", f"{self.in_flight} in flight"]
        for label, bucket in (("waiting for a call window", self.waiting_window),
                              ("held by contact limits", self.held_by_limits),
                              ("retry planned", self.scheduled), ("waiting for a stage", self.waiting_stage),
                              ("promised", self.promised)):
            if bucket.count:
                when = f" (first {bucket.first_local} {bucket.first_zone})" if bucket.first_local else ""
                parts.append(f"{bucket.count} {label}{when}")
        for label, count in (("no usable phone", self.no_phone), ("unknown time zone", self.bad_timezone),
                             ("opted out", self.opted_out)):
            if count:
                parts.append(f"{count} {label}")
        return ", ".join(parts)


def _iso(when: dt.datetime | None) -> str | None:
    return to_utc(when).isoformat(timespec="seconds") if when is not None else None


def _open_rows(session: Session) -> Iterator[list[Any]]:
    base = sel.open_case_rows().order_by(DebtCase.id).limit(BATCH)
    last = 0
    while True:
        rows = session.execute(base.where(DebtCase.id > last)).all()
        if not rows:
            return
        yield list(rows)
        last = rows[-1].id


def build_outlook(session: Session, rules: Rules, now: dt.datetime) -> Outlook:
    now = to_utc(now)
    now_naive = naive_utc(now)
    out = Outlook(at=now)
    out.states = {state: int(n) for state, n in session.execute(
        select(DebtCase.state, func.count()).group_by(DebtCase.state))}
    for rows in _open_rows(session):
        accounts = {r.account_id for r in rows}
        opted_accounts = {a for a in session.scalars(select(OptOut.account_id).where(OptOut.account_id.in_(accounts)))
                          if a is not None}
        busy = set(session.scalars(select(CallAttempt.account_id).where(
            CallAttempt.account_id.in_(accounts), CallAttempt.state.in_(sel.IN_FLIGHT))))
        phones = sel.load_phones(session, accounts)
        opted = sel.opted_out_numbers(session, (p.number for ps in phones.values() for p in ps))
        histories = sel.load_histories(session, accounts, now)
        promises = pending_promises(session, [r.id for r in rows if r.state == CaseState.PROMISED.value])
        for row in rows:
            out.open_cases += 1
            _classify(out, row, rules, now, now_naive, opted_accounts, busy, phones.get(row.account_id, ()),
                      opted, histories.get(row.account_id, ()), promises.get(row.id))
    return out


def _classify(out: Outlook, row: Any, rules: Rules, now: dt.datetime, now_naive: dt.datetime,
              opted_accounts: set[int], busy: set[int], options: Any, opted: set[str], history: Any,
              promise_date: dt.date | None) -> None:
    if row.account_id in opted_accounts:
        out.opted_out += 1
        return
    if row.account_id in busy:
        out.in_flight += 1
        return
    _view, decision, tz = sel.ladder_today(row, rules, now, promise_date, sel.first_number(options))
    staged = sel.staged_view(row, decision, promise_date, tz)
    if staged.state == CaseState.PROMISED.value:
        out.promised.add(staged.next_attempt_at.replace(tzinfo=dt.UTC) if staged.next_attempt_at else None, tz.key)
        return
    if staged.state != CaseState.ACTIVE.value:
        out.leaving += 1
        return
    planned = staged.next_attempt_at if staged.next_attempt_at and staged.next_attempt_at > now_naive else None
    ladder_wait = planned is not None and (decision.changed or staged.stage_code is None
                                           or _exhausted(rules, staged))
    if ladder_wait:
        assert planned is not None
        out.waiting_stage.add(planned.replace(tzinfo=dt.UTC), tz.key)
        return
    # judge it as if it were due now; a later planned time (retry, recheck) is reported as such
    verdict = sel.assess(row, sel.Staged(staged.state, staged.stage_code, staged.attempts_in_stage, None,
                                         staged.next_phone_priority), options, opted, history, rules, now)
    if verdict.kind == sel.CALLABLE:
        if planned is None:
            out.callable_now += 1
        else:
            out.scheduled.add(planned.replace(tzinfo=dt.UTC), verdict.timezone)
    elif verdict.kind == sel.OUTSIDE_WINDOW:
        out.waiting_window.add(max(verdict.until, planned.replace(tzinfo=dt.UTC)) if planned and verdict.until
                               else verdict.until, verdict.timezone)
    elif verdict.kind == sel.OVER_LIMIT:
        out.held_by_limits.add(verdict.until, verdict.timezone)
    elif verdict.kind == sel.NO_PHONE:
        out.no_phone += 1
    elif verdict.kind == sel.BAD_TIMEZONE:
        out.bad_timezone += 1
    else:
        out.waiting_stage.add(planned.replace(tzinfo=dt.UTC) if planned else None, tz.key)


def _exhausted(rules: Rules, staged: sel.Staged) -> bool:
    stage = rules.stage(staged.stage_code)
    return stage is None or staged.attempts_in_stage >= stage.max_attempts


def count_open(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(DebtCase).where(
        DebtCase.state.in_(sel.LADDER_STATES), DebtCase.amount_owed > 0)) or 0)


def outlook(session: Session, rules: Rules, now: dt.datetime) -> Outlook:
    """Exact for small campaigns, quick at scale."""
    if count_open(session) <= EXACT_LIMIT:
        return build_outlook(session, rules, now)
    return quick_outlook(session, now)


def quick_outlook(session: Session, now: dt.datetime) -> Outlook:
    now = to_utc(now)
    now_naive = naive_utc(now)
    out = Outlook(at=now, method="quick")
    out.states = {state: int(n) for state, n in session.execute(
        select(DebtCase.state, func.count()).group_by(DebtCase.state))}
    open_case = (DebtCase.state.in_(sel.LADDER_STATES), DebtCase.amount_owed > 0)
    opted = select(OptOut.id).where(OptOut.account_id == DebtCase.account_id).exists()
    flying = select(CallAttempt.id).where(CallAttempt.account_id == DebtCase.account_id,
                                          CallAttempt.state.in_(sel.IN_FLIGHT)).exists()
    out.open_cases = count_open(session)
    out.opted_out = int(session.scalar(select(func.count()).select_from(DebtCase).where(*open_case, opted)) or 0)
    out.in_flight = int(session.scalar(select(func.count()).select_from(DebtCase).where(*open_case, ~opted, flying)) or 0)
    due = or_(DebtCase.next_attempt_at.is_(None), DebtCase.next_attempt_at <= now_naive)
    out.callable_now = int(session.scalar(select(func.count()).select_from(DebtCase).where(
        DebtCase.state == CaseState.ACTIVE.value, DebtCase.amount_owed > 0, due, ~opted, ~flying)) or 0)
    waiting = (*open_case, ~opted, ~flying, DebtCase.next_attempt_at > now_naive)
    for reason, count, first in session.execute(
        select(DebtCase.wait_reason, func.count(), func.min(DebtCase.next_attempt_at)).where(*waiting)
        .group_by(DebtCase.wait_reason)
    ).all():
        if reason == sel.NO_PHONE:
            out.no_phone += int(count)
            continue
        if reason == sel.BAD_TIMEZONE:
            out.bad_timezone += int(count)
            continue
        bucket: Bucket = getattr(out, REASON_BUCKET.get(reason or "", "scheduled"))
        zone_name = session.scalar(
            select(Account.timezone).join(DebtCase, DebtCase.account_id == Account.id)
            .where(*waiting, DebtCase.wait_reason.is_not_distinct_from(reason), DebtCase.next_attempt_at == first)
            .limit(1))
        bucket.add(first.replace(tzinfo=dt.UTC) if first else None, zone_name)
        bucket.count += int(count) - 1
    # promised cases the dialer has not looked at yet (no wake-up time written)
    unseen = int(session.scalar(select(func.count()).select_from(DebtCase).where(
        DebtCase.state == CaseState.PROMISED.value, DebtCase.amount_owed > 0, due, ~opted, ~flying)) or 0)
    out.promised.count += unseen
    return out
