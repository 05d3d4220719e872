"""APScheduler wiring: the jobs exist, coalesce, never overlap, and do their work."""

from __future__ import annotations

import datetime as dt

from ivr.clock import FixedClock
from ivr.config import AsteriskServer, Settings
from ivr.db.models import DebtCase
from ivr.dialer.engine import Dialer
from ivr.dialer.policy import load_rules
from ivr.dialer.scheduler import DIAL_JOB, LADDER_JOB, RECONCILE_JOB, build_scheduler, ladder_tick
from ivr.wiring import Database
from tests.dialer.conftest import add_case

NOW = dt.datetime(2026, 3, 4, 9, 0, tzinfo=dt.UTC)


class Recorder:
    connected = True

    def __init__(self) -> None:
        self.requests: list[object] = []

    async def originate(self, request: object) -> None:
        self.requests.append(request)


async def test_jobs_are_configured_and_run(db: Database) -> None:
    settings = Settings(asterisk_servers=(AsteriskServer("a", "127.0.0.1", 5038, "u", "s", 1, "PJSIP/{number}@t"),),
                        dialer_tick_seconds=7)
    clock = FixedClock(NOW)
    dialer = Dialer(sessions=db.sessions, rules_loader=load_rules, clock=clock, settings=settings,
                    originators={"a": (recorder := Recorder())}, dialer_id="d")
    sched = build_scheduler(sessions=db.sessions, rules_loader=load_rules, clock=clock, dialer=dialer, ladder_seconds=30)
    jobs = {job.id: job for job in sched.get_jobs()}
    assert set(jobs) == {LADDER_JOB, DIAL_JOB, RECONCILE_JOB}
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1
    assert jobs[DIAL_JOB].trigger.interval == dt.timedelta(seconds=7)
    assert jobs[LADDER_JOB].trigger.interval == dt.timedelta(seconds=30)

    with db.sessions.begin() as s:
        case_id = add_case(s, stage_code=None, opened_on=dt.date(2026, 3, 1)).id
    jobs[LADDER_JOB].func()  # what the scheduler calls every tick
    with db.sessions() as s:
        assert s.get(DebtCase, case_id).stage_code == "reminder"  # type: ignore[union-attr]
    assert await jobs[DIAL_JOB].func() == 1  # 12:00 MSK, the new stage's first call goes out
    assert len(recorder.requests) == 1
    sched.start()
    assert sched.running
    sched.shutdown(wait=False)


def test_ladder_tick_commits_its_own_transaction(db: Database) -> None:
    with db.sessions.begin() as s:
        case_id = add_case(s, stage_code=None, opened_on=dt.date(2026, 3, 1)).id
    report = ladder_tick(db.sessions, load_rules, FixedClock(NOW))
    assert report.changed == 1
    with db.sessions() as s:
        assert s.get(DebtCase, case_id).stage_code == "reminder"  # type: ignore[union-attr]
