"""The forecast ("what if"): when today's plan finishes, how that changes with the number of lines,
and how many callbacks each operator queue should expect tomorrow. Pure: numbers in, numbers out
(`ivr.forecast_db` reads the rates and the plan from the database).

The model (deterministic, expected values, no randomness):
- `Rates` are measured over the last weeks of finished robot attempts: the share of each result
  (answered, wrong_party, busy, no_answer, machine, congestion, failed), the mean line-seconds an
  attempt of each result holds a line (originate to end: an answered call is long, no answer rings
  the originate timeout, busy is short) and, per answered call, how many callback tasks each queue
  got (actionable reasons routed to the queue, requests for a person). With no history the
  documented `PRIOR` is used and the forecast says so (`Forecast.prior`).
- The plan is one `PlanCase` per case callable today: from when (now, or when its call window
  opens today), until when (its window's end) and how many attempts it may still get today (the
  stage's attempts left, capped by the daily attempt limit).
- Cases with the same (ready, window end, attempts left) form a cohort of expected case mass. The
  lines are one fluid server of `lines` line-seconds per second: cohorts are served in the order
  they become ready, each taking mass x mean line-seconds per attempt / lines. After an attempt,
  the answered (and wrong party) share is done for the day (the daily answered limit); each other
  result's share comes back as a new cohort after that result's retry delay (`Rules.options`), if
  attempts remain and its window is still open. Work that does not fit before a cohort's window
  closes is left over for tomorrow.
- The plan finishes when the last cohort holding at least `MIN_MASS` (half a case) ends: smaller
  cohorts are "probably nobody" and are counted, not waited for.
- Callbacks per queue = expected answered calls x new tasks per answered call, measured apart
  for a case's first answered call and for a case answered before, weighted by the plan's share of
  cases answered before. (A subscriber who named a reason yesterday mostly names it again, and
  his open task is refreshed, not raised again: one card per case and queue. One rate for every
  answered call overestimated the busiest queue by half on a day of repeat calls,
  tests/test_forecast_sim.py.) Tomorrow's answered calls come from the same model with unlimited
  lines over tomorrow's callable cases.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

ANSWERED = "answered"
WRONG_PARTY = "wrong_party"
# results after which a case is not called again today (the default daily limit of one answered
# call; the dialer counts a machine as answered)
DONE_FOR_TODAY = frozenset({ANSWERED, WRONG_PARTY, "machine"})
RESULTS = (ANSWERED, WRONG_PARTY, "busy", "no_answer", "machine", "congestion", "failed")
MIN_MASS = 0.5  # a cohort smaller than half a case is "probably nobody"
TINY = 1e-4  # cohorts below this are dropped (keeps the event list short)


@dataclass(frozen=True)
class Rates:
    shares: Mapping[str, float]  # result -> share of attempts (sums to 1)
    line_seconds: Mapping[str, float]  # result -> mean seconds an attempt holds a line
    # queue -> new tasks per answered call: of a case answering for the first time, and of a case
    # answered before (None: no such call measured yet, the first-time figures are used)
    callbacks_per_answered: Mapping[str, float]
    callbacks_per_repeat: Mapping[str, float] | None = None
    attempts: int = 0  # how many attempts the figures come from (0 = prior)
    prior: bool = False

    def callbacks(self, repeat_share: float) -> dict[str, float]:
        """Queue -> new tasks per answered call when `repeat_share` of them are repeat answers."""
        repeat = self.callbacks_per_repeat if self.callbacks_per_repeat is not None else self.callbacks_per_answered
        queues = sorted(set(self.callbacks_per_answered) | set(repeat))
        return {q: (1 - repeat_share) * self.callbacks_per_answered.get(q, 0.0) + repeat_share * repeat.get(q, 0.0)
                for q in queues}

    @property
    def answer_rate(self) -> float:
        return self.shares.get(ANSWERED, 0.0)

    def mean_line_seconds(self) -> float:
        return sum(share * self.line_seconds.get(result, 0.0) for result, share in self.shares.items())


# The prior when there is no history (documented in the README): half the attempts answered,
# answered calls hold a line about 60 s, no answer rings the 30 s originate timeout, and one
# answered call in ten asks for a person (billing queue), one in twenty names a routed reason.
PRIOR = Rates(
    shares={ANSWERED: 0.5, "busy": 0.1, "no_answer": 0.25, "machine": 0.1, "congestion": 0.03, "failed": 0.02},
    line_seconds={ANSWERED: 60.0, WRONG_PARTY: 20.0, "busy": 5.0, "no_answer": 30.0, "machine": 30.0,
                  "congestion": 2.0, "failed": 2.0},
    callbacks_per_answered={"billing": 0.15},
    prior=True,
)


@dataclass(frozen=True)
class Retry:
    """Minutes until the next try after each result (the dialer's retry rules)."""
    minutes: Mapping[str, float]
    ends_day: frozenset[str] = DONE_FOR_TODAY


@dataclass(frozen=True)
class PlanCase:
    ready: dt.datetime  # UTC: now, or when the case's window opens today
    window_end: dt.datetime  # UTC: when that window closes
    attempts_left: int
    answered_before: bool = False  # a robot call of this case has been answered before


@dataclass
class LineRow:
    lines: int
    finish: dt.datetime | None  # None: nothing to do
    hours_from_open: float | None
    attempts: float
    answered: float
    left_over: float  # cases still unreached when their windows close


@dataclass
class Forecast:
    at: dt.datetime
    opens: dt.datetime | None  # the first window opening of today's plan (or now)
    cases_today: int
    lines: int
    finish: dt.datetime | None
    hours_from_open: float | None
    attempts: float
    answered: float
    left_over: float
    by_lines: list[LineRow] = field(default_factory=list)
    callbacks_today: dict[str, float] = field(default_factory=dict)  # from today's answered calls
    cases_tomorrow: int = 0
    callbacks_tomorrow: dict[str, float] = field(default_factory=dict)
    answer_rate: float = 0.0
    mean_line_seconds: float = 0.0
    measured_attempts: int = 0
    prior: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("at", "opens", "finish"):
            data[key] = _iso(getattr(self, key))
        for row in data["by_lines"]:
            row["finish"] = _iso(row["finish"])
        return data


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when is not None else None


@dataclass
class _Run:
    finish: float | None = None
    attempts: float = 0.0
    answered: float = 0.0
    left_over: float = 0.0


def _simulate(plan: Sequence[PlanCase], rates: Rates, retry: Retry, lines: float, t0: dt.datetime) -> _Run:
    """The fluid cohort model of the module docstring; times in seconds after t0."""
    def sec(when: dt.datetime) -> float:
        return (when - t0).total_seconds()

    groups: dict[tuple[float, float, int], float] = defaultdict(float)
    for case in plan:
        if case.attempts_left > 0 and case.window_end > case.ready:
            groups[(sec(case.ready), sec(case.window_end), case.attempts_left)] += 1.0
    heap = [(ready, end, left, mass) for (ready, end, left), mass in groups.items()]
    heapq.heapify(heap)
    per_attempt = rates.mean_line_seconds()
    free = float("-inf")  # when the lines finish the work already taken
    run = _Run()
    while heap:
        ready, end, left, mass = heapq.heappop(heap)
        start = max(free, ready)
        if start >= end:
            run.left_over += mass
            continue
        duration = mass * per_attempt / lines
        done = mass
        if start + duration > end:  # only part of the cohort is called before its window closes
            done = mass * (end - start) / duration
            run.left_over += mass - done
            duration = end - start
        free = start + duration
        run.attempts += done
        if done >= MIN_MASS:
            run.finish = free  # cohorts are taken in time order, so this only grows
        for result, share in rates.shares.items():
            part = done * share
            if result in retry.ends_day:
                run.answered += part if result == ANSWERED else 0.0
                continue
            if part < TINY:
                continue
            again = free + 60.0 * retry.minutes.get(result, 0.0)
            if left > 1 and again < end:
                heapq.heappush(heap, (again, end, left - 1, part))
            elif left > 1:
                run.left_over += part
    return run


def repeat_share(plan: Sequence[PlanCase]) -> float:
    """The share of the plan's cases answered before."""
    return sum(case.answered_before for case in plan) / len(plan) if plan else 0.0


def forecast(plan: Sequence[PlanCase], rates: Rates, retry: Retry, lines: int, now: dt.datetime, *,
             what_if: Sequence[int] = (), cases_tomorrow: int = 0, attempts_tomorrow: int = 3,
             repeat_tomorrow: float = 0.0) -> Forecast:
    """Today's finish with `lines` (and each of `what_if`), tomorrow's callbacks per queue."""
    if lines < 1:
        raise ValueError("lines must be at least 1")
    opens = min((c.ready for c in plan), default=None)
    t0 = opens or now
    rows = []
    for n in sorted({lines, *what_if} - {0}):
        run = _simulate(plan, rates, retry, float(n), t0)
        finish = t0 + dt.timedelta(seconds=run.finish) if run.finish is not None else None
        rows.append(LineRow(n, finish, round(run.finish / 3600, 3) if run.finish is not None else None,
                            round(run.attempts, 1), round(run.answered, 1), round(run.left_over, 1)))
    main = next(r for r in rows if r.lines == lines)
    # tomorrow: each callable case gets up to the stage's attempts, spread over a long window
    day = dt.timedelta(hours=10)
    tomorrow = [PlanCase(t0, t0 + day, attempts_tomorrow)] * cases_tomorrow
    answered_tomorrow = _simulate(tomorrow, rates, retry, 1e9, t0).answered if cases_tomorrow else 0.0
    per_today = rates.callbacks(repeat_share(plan))
    per_tomorrow = rates.callbacks(repeat_tomorrow)
    return Forecast(
        at=now, opens=opens, cases_today=len(plan), lines=lines, finish=main.finish,
        hours_from_open=main.hours_from_open, attempts=main.attempts, answered=main.answered,
        left_over=main.left_over, by_lines=rows, cases_tomorrow=cases_tomorrow,
        callbacks_today={q: round(main.answered * per, 1) for q, per in per_today.items()},
        callbacks_tomorrow={q: round(answered_tomorrow * per, 1) for q, per in per_tomorrow.items()},
        answer_rate=round(rates.answer_rate, 3), mean_line_seconds=round(rates.mean_line_seconds(), 1),
        measured_attempts=rates.attempts, prior=rates.prior,
    )


def default_what_if(lines: int) -> list[int]:
    return sorted({max(1, lines // 2), lines, lines * 2})
