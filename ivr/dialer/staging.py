"""Stage new cases at once: after an accounts import, every open case that has no ladder stage
yet gets the ladder's decision for today (its stage, or the date it waits for), so `ivr status`
and the web UI show them staged right away. The dial pass does the same for any case it may
call (see ivr.dialer.selector), so calling never depends on this having run."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ivr.db.models import CaseState, DebtCase
from ivr.dialer.ladder import LadderReport, _advance_chunk, commit_chunk
from ivr.dialer.policy import load_rules
from ivr.dialer.windows import naive_utc

log = logging.getLogger(__name__)

CHUNK = 500


def stage_new_cases(sessions: sessionmaker[Session], default_timezone: str, now: dt.datetime) -> LadderReport:
    report = LadderReport()
    naive_now = naive_utc(now)
    with sessions() as session:
        rules = load_rules(session, default_timezone)
        ids = list(session.scalars(
            select(DebtCase.id).where(
                DebtCase.state == CaseState.ACTIVE.value, DebtCase.stage_code.is_(None),
                or_(DebtCase.next_attempt_at.is_(None), DebtCase.next_attempt_at <= naive_now),
            ).order_by(DebtCase.id)
        ))
        for start in range(0, len(ids), CHUNK):
            _advance_chunk(session, rules, now, ids[start:start + CHUNK], report)
            commit_chunk(session)  # each chunk its own transaction (why: commit_chunk)
    if report.changed:
        log.info("staged %d new case(s): %s", report.changed, dict(report.events))
    return report


def restage_waiting(session: Session) -> int:
    """After a ladder edit: active cases that wait for a stage date (wait_reason waiting_stage)
    were dated by the old ladder. Clearing that date makes them due, so the next dial pass (or
    tick) gives them the new ladder's decision: a before-due stage just enabled (issue 16) starts
    earlier than the first debt stage they were waiting for. The caller commits."""
    result = session.execute(
        update(DebtCase)
        .where(DebtCase.state == CaseState.ACTIVE.value, DebtCase.wait_reason == "waiting_stage")
        .values(next_attempt_at=None, wait_reason=None)
        .execution_options(synchronize_session=False)
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        log.info("ladder changed: %d waiting case(s) will be re-staged", count)
    return count
