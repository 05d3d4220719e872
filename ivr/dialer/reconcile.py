"""Reconciliation after a crash or an AMI reconnect: nothing is lost, nothing is blindly redialled.

For every attempt still "in flight" in the database (claimed / dialing / answered):

- claimed, never originated (originated_at NULL) and older than `unsent_age`: the dialer died
  between the claim's commit and the Originate. The phone never rang, so the attempt ends as
  `not_sent` (it counts nowhere) and the person is free again.
- originated, older than `safe_age`, on a server whose live channels we could list:
  - its IVR_CALL_ID is on a live channel: still in flight, left alone;
  - otherwise it is lost: state `unknown`, the case's last_result `lost`, the attempt counts
    (it may have rung) and the next try waits the normal no-answer interval. The row stays; a
    late Hangup/OriginateResponse still fills in the real result.
- on a server we could not ask (disconnected): left alone until we can.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from sqlalchemy import select, update

from ivr.db.models import AttemptState, CallAttempt
from ivr.dialer.attempts import Sessions, apply_case_result, release_unsent
from ivr.dialer.claims import rowcount
from ivr.dialer.policy import Rules
from ivr.dialer.retry import LOST
from ivr.dialer.selector import IN_FLIGHT
from ivr.dialer.windows import naive_utc, to_utc

log = logging.getLogger(__name__)

DEFAULT_SAFE_AGE = dt.timedelta(seconds=90)  # > originate round trip + channel creation
DEFAULT_UNSENT_AGE = dt.timedelta(seconds=120)  # > claim-to-send time (audio preparation, pacing)


@dataclass
class ReconcileReport:
    live: list[str] = field(default_factory=list)  # still on a live channel
    lost: list[str] = field(default_factory=list)  # marked unknown, retried later
    not_sent: list[str] = field(default_factory=list)  # never originated, released
    unchecked: list[str] = field(default_factory=list)  # server not asked; left in flight


def reconcile(
    sessions: Sessions,
    rules: Rules,
    now: dt.datetime,
    live_calls: Mapping[str, Collection[str]],
    *,
    safe_age: dt.timedelta = DEFAULT_SAFE_AGE,
    unsent_age: dt.timedelta = DEFAULT_UNSENT_AGE,
) -> ReconcileReport:
    """`live_calls`: server name -> IVR_CALL_IDs on live channels, for the servers that answered."""
    now = to_utc(now)
    report = ReconcileReport()
    oldest = naive_utc(now - min(safe_age, unsent_age))
    with sessions() as session:
        rows = session.execute(
            select(CallAttempt.id, CallAttempt.action_id, CallAttempt.state, CallAttempt.server,
                   CallAttempt.created_at, CallAttempt.originated_at)
            .where(CallAttempt.state.in_(IN_FLIGHT), CallAttempt.created_at <= oldest)
            .order_by(CallAttempt.id)
        ).all()
    for row in rows:
        if row.state == AttemptState.CLAIMED.value and row.originated_at is None:
            if row.created_at <= naive_utc(now - unsent_age) and release_unsent(sessions, row.id, now):
                report.not_sent.append(row.action_id)
                log.warning("attempt %s was claimed but never sent: released", row.action_id)
            continue
        if (row.originated_at or row.created_at) > naive_utc(now - safe_age):
            continue
        if row.server not in live_calls:
            report.unchecked.append(row.action_id)
            continue
        if row.action_id in live_calls[row.server]:
            report.live.append(row.action_id)
            continue
        if _mark_lost(sessions, row.id, row.state, rules, now):
            report.lost.append(row.action_id)
    if report.lost or report.not_sent:
        log.warning("reconcile: %d lost, %d never sent, %d live, %d unchecked",
                    len(report.lost), len(report.not_sent), len(report.live), len(report.unchecked))
    return report


def _mark_lost(sessions: Sessions, attempt_id: int, state: str, rules: Rules, now: dt.datetime) -> bool:
    with sessions.begin() as session:
        moved = session.execute(
            update(CallAttempt)
            .where(CallAttempt.id == attempt_id, CallAttempt.state == state)
            .values(state=AttemptState.UNKNOWN.value)
            .execution_options(synchronize_session=False)
        )
        if rowcount(moved) != 1:
            return False  # an event finished it meanwhile
        attempt = session.get(CallAttempt, attempt_id)
        assert attempt is not None
        apply_case_result(session, attempt, LOST, rules, now)
        log.warning("attempt %s lost (no live channel): retried at the normal interval", attempt.action_id)
        return True
