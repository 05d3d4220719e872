"""APScheduler 3.x wiring of the periodic jobs: the ladder tick, the dial tick and reconcile.

Every job coalesces missed runs and never runs twice at once (max_instances=1). The ladder tick
is a plain function, so AsyncIOScheduler runs it in the event loop's thread pool (database work
off the loop); the dial tick and reconcile are coroutines and run on the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from ivr.clock import Clock
from ivr.dialer.attempts import Sessions
from ivr.dialer.engine import Dialer, RulesLoader
from ivr.dialer.ladder import LadderReport, advance_cases

log = logging.getLogger(__name__)

LADDER_JOB = "dialer-ladder-tick"
DIAL_JOB = "dialer-dial-tick"
RECONCILE_JOB = "dialer-reconcile"
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}


def ladder_tick(sessions: Sessions, rules_loader: RulesLoader, clock: Clock) -> LadderReport:
    """One ladder pass (stages, promises, lifecycle, block list), a transaction per chunk of cases."""
    with sessions() as session:
        return advance_cases(session, rules_loader(session), clock.now(), commit=True)


def make_ladder_job(sessions: Sessions, rules_loader: RulesLoader, clock: Clock,
                    runner: Callable[[datetime], Any] | None = None) -> Callable[[], None]:
    """`runner(now)` runs the pass elsewhere (`ivr run`: ivr.jobs.ladder_runner, another process)."""

    def job() -> None:
        try:
            if runner is not None:
                runner(clock.now())
            else:
                ladder_tick(sessions, rules_loader, clock)
        except Exception:  # noqa: BLE001 - log and try again next tick
            log.exception("ladder tick failed")

    return job


def build_scheduler(
    *,
    sessions: Sessions,
    rules_loader: RulesLoader,
    clock: Clock,
    dialer: Dialer | None = None,
    ladder_seconds: float = 60.0,
    dial_seconds: float | None = None,
    reconcile_seconds: float | None = None,
    scheduler: AsyncIOScheduler | None = None,
    ladder_at_start: bool = False,
    ladder_runner: Callable[[datetime], Any] | None = None,
) -> AsyncIOScheduler:
    """Add the dialer's jobs to `scheduler` (a new AsyncIOScheduler by default); not started.

    Intervals are in real seconds (APScheduler's clock); each job reads `clock.now()` for its
    own notion of time, so the demo's fast clock still sees consistent dates.

    No job depends on another having run: the dial pass applies the ladder's decision to every
    case it may call (see ivr.dialer.selector), so the ladder sweep only keeps what is not due
    up to date (lifecycle, block list, promises); `ladder_at_start` runs it once at once.
    """
    sched = scheduler or AsyncIOScheduler(job_defaults=dict(JOB_DEFAULTS))
    first: dict[str, Any] = {"next_run_time": datetime.now(UTC)} if ladder_at_start else {}
    sched.add_job(
        make_ladder_job(sessions, rules_loader, clock, ladder_runner), IntervalTrigger(seconds=ladder_seconds),
        id=LADDER_JOB, replace_existing=True, **JOB_DEFAULTS, **first,
    )
    if dialer is not None:
        seconds = dial_seconds if dial_seconds is not None else dialer.settings.dialer_tick_seconds
        sched.add_job(dialer.run_once, IntervalTrigger(seconds=seconds), id=DIAL_JOB, replace_existing=True, **JOB_DEFAULTS)
        # issue 15: as often as Dialer.run reconciles (dialer.reconcile_seconds) unless told
        every = reconcile_seconds if reconcile_seconds is not None else dialer.reconcile_seconds
        sched.add_job(dialer.reconcile, IntervalTrigger(seconds=every), id=RECONCILE_JOB,
                      replace_existing=True, **JOB_DEFAULTS)
    return sched
