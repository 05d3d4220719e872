"""What the forecast (ivr.forecast) reads from the database: the measured rates, today's plan and
tomorrow's callable cases; `forecast_json` puts them together for `ivr forecast --json` and the
live page.

Today's plan: every open case the dialer's own checks (`selector.ladder_today`, `selector.assess`)
find callable now, or outside its window or held by a contact limit with the window opening (the
limit reopening) within `horizon` hours; a case waiting for a stage date or a promise is not in it. Its attempts left today are the
stage's attempts left, capped by the daily attempt limit.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.db.models import CallAttempt, CallbackTask, CaseState, OptOut
from ivr.dialer import selector as sel
from ivr.dialer.ladder import pending_promises
from ivr.dialer.policy import Rules
from ivr.dialer.windows import (
    _minute_ranges,
    holiday_checker,
    naive_utc,
    to_utc,
    windows_for_day,
    zone,
)
from ivr.forecast import (
    PRIOR,
    RESULTS,
    Forecast,
    PlanCase,
    Rates,
    Retry,
    default_what_if,
    forecast,
    repeat_share,
)

log = logging.getLogger(__name__)

MIN_ATTEMPTS = 30  # fewer measured attempts than this: use the prior
DAY_HOURS = 18.0  # a window opening within this many hours counts as today's


def retry_of(rules: Rules, stage_retry_minutes: float = 240.0) -> Retry:
    o = rules.options
    return Retry({"busy": o.retry_busy_minutes, "no_answer": o.retry_no_answer_minutes,
                  "congestion": o.retry_congestion_minutes, "failed": o.retry_failed_minutes,
                  "machine": o.retry_machine_minutes, "answered": stage_retry_minutes,
                  "wrong_party": o.retry_failed_minutes})


def measure(session: Session, now: dt.datetime, weeks: int = 4) -> Rates:
    """Result shares, line-seconds per result and callbacks per answered call over `weeks`."""
    since = naive_utc(now) - dt.timedelta(weeks=weeks)
    counts: Counter[str] = Counter()
    seconds: dict[str, float] = defaultdict(float)
    timed: Counter[str] = Counter()
    # a line is held from the originate (the row is written just before it) to the hang-up:
    # originated_at is only set once Asterisk answers the originate, after the ringing
    for result, claimed, ended in session.execute(
        select(CallAttempt.result, CallAttempt.created_at, CallAttempt.ended_at).where(
            CallAttempt.purpose == "robot", CallAttempt.created_at >= since, CallAttempt.result.in_(RESULTS))
    ):
        result = str(result)
        counts[result] += 1
        if claimed is not None and ended is not None and ended >= claimed:
            seconds[result] += (ended - claimed).total_seconds()
            timed[result] += 1
    total = sum(counts.values())
    if total < MIN_ATTEMPTS:
        log.info("forecast: %d attempts measured since %s, using the prior", total, since)
        return PRIOR
    first, repeat = _new_tasks_per_answered(session, since) if counts["answered"] else (None, None)
    return Rates(
        shares={r: counts[r] / total for r in RESULTS if counts[r]},
        line_seconds={r: seconds[r] / timed[r] if timed[r] else PRIOR.line_seconds.get(r, 0.0) for r in RESULTS},
        callbacks_per_answered=first if first is not None else dict(PRIOR.callbacks_per_answered),
        callbacks_per_repeat=repeat,
        attempts=total,
    )


def _answered(*columns: Any) -> Any:
    return select(*columns).where(
        CallAttempt.purpose == "robot", CallAttempt.result == "answered", CallAttempt.debt_case_id.is_not(None))


def _new_tasks_per_answered(session: Session, since: dt.datetime
                            ) -> tuple[dict[str, float] | None, dict[str, float] | None]:
    """Per queue, the tasks the robot's calls raised per answered call: of cases answering for the
    first time, and of cases answered before (None where no such call was measured). A task is the
    work of its case's last answered call before it was raised (a refresh overwrites its attempt)."""
    calls: dict[int | None, list[dt.datetime]] = defaultdict(list)
    # every answered call (also before `since`) of the cases answered since `since`
    recent = _answered(CallAttempt.debt_case_id).where(CallAttempt.created_at >= since)
    for case_id, at in session.execute(_answered(CallAttempt.debt_case_id, CallAttempt.created_at)
                                       .where(CallAttempt.debt_case_id.in_(recent)).order_by(CallAttempt.created_at)):
        calls[case_id].append(at)
    answered: Counter[str] = Counter()  # "first" / "repeat" -> answered calls since `since`
    for times in calls.values():
        for i, at in enumerate(times):
            if at >= since:
                answered["repeat" if i else "first"] += 1
    raised: dict[str, Counter[str]] = {"first": Counter(), "repeat": Counter()}
    for case_id, queue, created in session.execute(  # the debt_case_id filter below: never None
        select(CallbackTask.debt_case_id, CallbackTask.queue, CallbackTask.created_at).where(
            CallbackTask.attempt_id.is_not(None), CallbackTask.created_at >= since, CallbackTask.debt_case_id.is_not(None))
    ):
        before = [at for at in calls.get(case_id, ()) if at <= created]
        if before:
            raised["repeat" if len(before) > 1 else "first"][queue] += 1

    def rates(kind: str) -> dict[str, float] | None:
        return {q: n / answered[kind] for q, n in sorted(raised[kind].items())} if answered[kind] else None

    return rates("first"), rates("repeat")


def _window_end(rules: Rules, stage: Any, tz_name: str, country: str, at: dt.datetime) -> dt.datetime | None:
    tz = zone(tz_name)
    profile = rules.profile(stage.window_profile)
    if tz is None or not profile:
        return None
    local = to_utc(at).astimezone(tz)
    holiday = holiday_checker(country)(local.date())
    windows = windows_for_day(profile, local.weekday(), holiday, rules.options.holiday_policy)
    minute = local.hour * 60 + local.minute
    # cut to the legal limits as the dialer does: a window never stays open past them
    for start, end in rules.legal.clip(_minute_ranges(windows, stage.required_hour), local.weekday(), holiday):
        if start <= minute < end:
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
            return to_utc(midnight + dt.timedelta(minutes=end))
    return None


def _daily_attempts(rules: Rules) -> int | None:
    caps = [lim.max_calls for lim in rules.limits if lim.period == "day" and lim.counts == "attempts"]
    return min(caps) if caps else None


def plan_today(session: Session, rules: Rules, now: dt.datetime, horizon_hours: float = DAY_HOURS) -> list[PlanCase]:
    now = to_utc(now)
    now_naive = naive_utc(now)
    horizon = now + dt.timedelta(hours=horizon_hours)
    cap = _daily_attempts(rules)
    plan: list[PlanCase] = []
    rows = session.execute(sel.open_case_rows().order_by(sel.DebtCase.id)).all()
    accounts = {r.account_id for r in rows}
    opted_accounts = set(session.scalars(select(OptOut.account_id).where(OptOut.account_id.in_(accounts))))
    phones = sel.load_phones(session, accounts)
    opted = sel.opted_out_numbers(session, (p.number for ps in phones.values() for p in ps))
    histories = sel.load_histories(session, accounts, now)
    promises = pending_promises(session, [r.id for r in rows if r.state == CaseState.PROMISED.value])
    answered_cases = set(session.scalars(_answered(CallAttempt.debt_case_id).where(
        CallAttempt.debt_case_id.in_(select(sel.DebtCase.id).where(sel.DebtCase.state.in_(sel.LADDER_STATES))))
        .distinct()))
    for row in rows:
        if row.account_id in opted_accounts:
            continue
        options = phones.get(row.account_id, ())
        _view, decision, _tz = sel.ladder_today(row, rules, now, promises.get(row.id), sel.first_number(options))
        staged = sel.staged_view(row, decision, promises.get(row.id), _tz)
        if staged.state != CaseState.ACTIVE.value:
            continue
        planned = staged.next_attempt_at if staged.next_attempt_at and staged.next_attempt_at > now_naive else None
        if planned is not None and (decision.changed or staged.stage_code is None):
            continue  # the ladder waits for a stage date
        verdict = sel.assess(row, sel.Staged(staged.state, staged.stage_code, staged.attempts_in_stage, None,
                                             staged.next_phone_priority), options, opted,
                             histories.get(row.account_id, ()), rules, now)
        if verdict.kind == sel.CALLABLE:
            ready = max(now, planned.replace(tzinfo=dt.UTC)) if planned else now
        elif verdict.kind in (sel.OUTSIDE_WINDOW, sel.OVER_LIMIT) and verdict.until is not None:
            # a window opening, or a contact limit reopening, later today
            ready = max(verdict.until, planned.replace(tzinfo=dt.UTC)) if planned else verdict.until
        else:
            continue
        if ready >= horizon or verdict.stage is None or verdict.timezone is None:
            continue
        end = _window_end(rules, verdict.stage, verdict.timezone, verdict.country, ready)
        if end is None:
            continue  # a planned retry outside the window: not today's work
        left = verdict.stage.max_attempts - staged.attempts_in_stage
        plan.append(PlanCase(ready, end, min(left, cap) if cap is not None else left, row.id in answered_cases))
    return plan


# `ivr run` without Asterisk servers runs the simulator with this many lines
SIMULATOR_LINES = 10


def lines_of(settings: Any) -> int:
    """The lines the robot may use: the sum of every Asterisk server's channel limit."""
    return sum(server.channel_limit for server in settings.asterisk_servers) or 0


def make_forecast(session: Session, rules: Rules, now: dt.datetime, lines: int,
                  what_if: list[int] | None = None, weeks: int = 4) -> Forecast:
    rates = measure(session, now, weeks)
    plan = plan_today(session, rules, now)
    tomorrow = plan_today(session, rules, now + dt.timedelta(days=1))
    stage_attempts = max((s.max_attempts for s in rules.stages), default=3)
    cap = _daily_attempts(rules)
    return forecast(plan, rates, retry_of(rules), lines, to_utc(now),
                    what_if=what_if if what_if is not None else default_what_if(lines),
                    cases_tomorrow=len(tomorrow), repeat_tomorrow=repeat_share(tomorrow),
                    attempts_tomorrow=min(stage_attempts, cap) if cap is not None else stage_attempts)


def forecast_json(session: Session, rules: Rules, now: dt.datetime, lines: int,
                  what_if: list[int] | None = None, weeks: int = 4) -> dict[str, Any]:
    """The forecast as a JSON-ready dict (for `ivr forecast --json` and the live page)."""
    return make_forecast(session, rules, now, lines, what_if, weeks).to_dict()
