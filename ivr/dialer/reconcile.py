"""Reconciliation: every attempt in flight has a live channel, or it is settled with a definite
result. Runs at start, after every AMI reconnect and periodically in every process that dials
(Dialer.run), so an attempt never stays in flight without a live channel for longer than the
originate time-out plus a small margin (issue 15).

For every attempt still in flight in the database (claimed / dialing / answered):

- claimed, never originated (originated_at NULL): the dialer died (or stalled) between the
  claim's commit and the Originate. Released as `not_sent` (counts nowhere) once it is older
  than `unsent_age`, or at once when its dialer is gone (its line lease expired, or it carries
  our dialer id but this process never made it: a restart with a fixed IVR_DIALER_ID).
- originated, younger than `safe_age`: left alone (Asterisk may not have created the channel).
- on a server whose channels we could not list: left alone until we can.
- its IVR_CALL_ID is on a live channel: still in flight; its line lease is renewed (adopted by
  us when its dialer is gone, so a crashed dialer's live calls keep their lines).
- no live channel:
  - the server restarted since (its AMI said so, see AMIClient.restarts), or its dialer is
    gone: settled now. The result is what the call script wrote if it wrote one (the call
    ended normally while nobody listened), else `interrupted`; after a restart a script result
    of plain `answered` is `interrupted` too (the script's finally ran because the restart cut
    the call). `interrupted` is not a contact and is retried soon (ivr.dialer.retry).
  - our own attempt otherwise: its Hangup event may still be on its way, so it is settled only
    when it was also missing at the previous reconcile of this process: the script's result, or
    `lost` (state unknown: its fate is unknown; counted as a possible contact and retried at
    the no-answer interval; a late Hangup/OriginateResponse still fills in the real result).
  - another live dialer's attempt: that dialer settles it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from sqlalchemy import select, update

from ivr.db.models import AttemptResult, AttemptState, CallAttempt, LineLease
from ivr.dialer import lines
from ivr.dialer.attempts import Sessions, apply_case_result, release_unsent, settle
from ivr.dialer.claims import rowcount
from ivr.dialer.policy import Rules
from ivr.dialer.retry import INTERRUPTED, LOST
from ivr.dialer.selector import IN_FLIGHT
from ivr.dialer.windows import naive_utc, to_utc

log = logging.getLogger(__name__)

DEFAULT_SAFE_AGE = dt.timedelta(seconds=10)  # > Originate accepted -> channel created
DEFAULT_UNSENT_AGE = dt.timedelta(seconds=120)  # > claim-to-send time (audio preparation, pacing)


@dataclass
class ReconcileReport:
    live: list[str] = field(default_factory=list)  # still on a live channel
    lost: list[str] = field(default_factory=list)  # marked unknown/lost, retried later
    settled: list[str] = field(default_factory=list)  # no channel: ended with a definite result
    not_sent: list[str] = field(default_factory=list)  # never originated, released
    unchecked: list[str] = field(default_factory=list)  # server not asked; left in flight
    missing: list[str] = field(default_factory=list)  # ours, no channel, settled next time if still so


@dataclass(frozen=True)
class Ownership:
    """Who we are, for telling a live dialer's attempts from a dead one's."""

    dialer_id: str | None = None
    ours_in_memory: Collection[str] | None = None  # our attempts this process made (None: unknown)
    previously_missing: Collection[str] = ()  # ours, without a channel at the previous reconcile
    lease_ttl: dt.timedelta = lines.LEASE_TTL


def reconcile(
    sessions: Sessions,
    rules: Rules,
    now: dt.datetime,
    live_calls: Mapping[str, Collection[str]],
    *,
    safe_age: dt.timedelta = DEFAULT_SAFE_AGE,
    unsent_age: dt.timedelta = DEFAULT_UNSENT_AGE,
    restarted_at: Mapping[str, dt.datetime] | None = None,
    owner: Ownership | None = None,
) -> ReconcileReport:
    """`live_calls`: server name -> IVR_CALL_IDs on live channels, for the servers that answered;
    `restarted_at`: servers whose Asterisk restarted, with the (clock) time we learnt it."""
    now = to_utc(now)
    owner = owner or Ownership()
    restarts = {k: naive_utc(v) for k, v in (restarted_at or {}).items()}
    report = ReconcileReport()
    with sessions() as session:
        rows = session.execute(
            select(CallAttempt.id, CallAttempt.action_id, CallAttempt.state, CallAttempt.server,
                   CallAttempt.dialer_id, CallAttempt.created_at, CallAttempt.originated_at,
                   CallAttempt.result, LineLease.expires_at)
            .outerjoin(LineLease, LineLease.action_id == CallAttempt.action_id)
            .where(CallAttempt.state.in_(IN_FLIGHT))
            .order_by(CallAttempt.id)
        ).all()
    now_naive = naive_utc(now)
    to_renew: list[str] = []
    for row in rows:
        # A caller that does not say who it is reconciles everything, at the first look.
        mine = owner.dialer_id is None or row.dialer_id == owner.dialer_id
        forgotten = mine and owner.ours_in_memory is not None and row.action_id not in owner.ours_in_memory
        # No lease row: it lapsed and another claim took the slot (or the attempt never had one)
        lease_gone = row.expires_at is None or row.expires_at < now_naive
        owner_dead = forgotten or (not mine and lease_gone)
        if row.state == AttemptState.CLAIMED.value and row.originated_at is None:
            stale = row.created_at <= naive_utc(now - unsent_age) or owner_dead
            if stale and release_unsent(sessions, row.id, now):
                report.not_sent.append(row.action_id)
                log.warning("attempt %s was claimed but never sent: released", row.action_id)
            continue
        if row.server not in live_calls:
            report.unchecked.append(row.action_id)
            continue
        if row.action_id in live_calls[row.server]:
            report.live.append(row.action_id)
            to_renew.append(row.action_id)
            continue
        sent_at = row.originated_at or row.created_at
        restart = restarts.get(row.server)
        restarted = restart is not None and sent_at <= restart
        if not restarted and sent_at > naive_utc(now - safe_age):
            continue
        if restarted or owner_dead:
            result = _settled_result(row.result, restarted)
            if settle(sessions, row.action_id, now, rules, result) is not None:
                report.settled.append(row.action_id)
                log.warning("attempt %s has no live channel (%s): settled as %s", row.action_id,
                            "Asterisk restarted" if restarted else "its dialer is gone", result)
            continue
        if not mine:
            continue  # a live dialer's call: its own reconcile and events settle it
        if row.result is not None:  # the script finished; only the Hangup was missed
            if settle(sessions, row.action_id, now, rules, row.result, force=False) is not None:
                report.settled.append(row.action_id)
            continue
        if owner.dialer_id is not None and row.action_id not in owner.previously_missing:
            report.missing.append(row.action_id)  # its Hangup event may be on its way
            continue
        if _mark_lost(sessions, row.id, row.action_id, row.state, rules, now):
            report.lost.append(row.action_id)
    if to_renew:
        with sessions.begin() as session:
            lines.renew(session, to_renew, now, owner.lease_ttl)
    if report.lost or report.not_sent or report.settled:
        log.warning("reconcile: %d settled, %d lost, %d never sent, %d live, %d unchecked",
                    len(report.settled), len(report.lost), len(report.not_sent), len(report.live),
                    len(report.unchecked))
    return report


def _settled_result(script_result: str | None, restarted: bool) -> str:
    if script_result is None:
        return INTERRUPTED
    if restarted and script_result == AttemptResult.ANSWERED.value:
        return INTERRUPTED  # the script ended because the restart cut the call
    return script_result


def _mark_lost(sessions: Sessions, attempt_id: int, action_id: str, state: str, rules: Rules, now: dt.datetime) -> bool:
    with sessions.begin() as session:
        moved = session.execute(
            update(CallAttempt)
            .where(CallAttempt.id == attempt_id, CallAttempt.state == state)
            .values(state=AttemptState.UNKNOWN.value, result=LOST, ended_at=naive_utc(now))
            .execution_options(synchronize_session=False)
        )
        if rowcount(moved) != 1:
            return False  # an event finished it meanwhile
        lines.release(session, action_id)
        attempt = session.get(CallAttempt, attempt_id)
        assert attempt is not None
        apply_case_result(session, attempt, LOST, rules, now)
        log.warning("attempt %s lost (no live channel): retried at the normal interval", attempt.action_id)
        return True
