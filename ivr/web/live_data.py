"""What the live page shows (issue 13), read from the database in one transaction: lines in use
per Asterisk server against its limit, calls in progress with the step each is at, today's plan,
results and callbacks raised today per queue, AMI / FastAGI / dialling health with the last
errors, and the active pauses. `snapshot` returns plain JSON-ready data; ivr.web.live serves it
as /live.json and renders the page from it.

"Today" is the calendar day in the default time zone (IVR_DEFAULT_TIMEZONE). Due today = cases
dialled today plus cases still due by the end of today (`remaining`, in flight excluded).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from ivr import heartbeat
from ivr.config import Settings
from ivr.db.models import Account, CallAttempt, CallbackTask, CallStep, CaseState, DebtCase, Outcome
from ivr.dialer import pauses
from ivr.dialer.outlook import Outlook
from ivr.dialer.retry import FAULT_RESULTS
from ivr.dialer.selector import IN_FLIGHT
from ivr.dialer.windows import local_midnight_utc, naive_utc, to_utc, zone

log = logging.getLogger(__name__)

MAX_CALLS = 200  # calls in progress listed (the lines limit this anyway)
LAST_ERRORS = 5
Translate = Callable[..., str]


def _iso(value: dt.datetime | None) -> str | None:
    return to_utc(value).isoformat(timespec="seconds") if value is not None else None


def day_bounds(now: dt.datetime, tz_name: str) -> tuple[dt.datetime, dt.datetime]:
    """Naive UTC start and end of today in `tz_name` (UTC if the name is unknown)."""
    tz = zone(tz_name) or ZoneInfo("UTC")
    today = to_utc(now).astimezone(tz).date()
    return (naive_utc(local_midnight_utc(today, tz)),
            naive_utc(local_midnight_utc(today + dt.timedelta(days=1), tz)))


def step_label(t: Translate, has_key: Callable[[str], bool], step: str | None, state: str) -> str:
    """The step an in-flight call is at, in the page's language: its latest CallStep, else
    ringing (not answered yet) or answered (the script has not recorded a step yet)."""
    if step:
        return t(f"step_{step}") if has_key(f"step_{step}") else step
    return t("live_answered") if state == "answered" else t("live_ringing")


def _lines(settings: Settings, peers: list[heartbeat.Peer], in_flight: dict[str, int],
           paused: pauses.Active) -> list[dict[str, Any]]:
    limits: dict[str, int] = {s.name: s.channel_limit for s in settings.asterisk_servers}
    for peer in peers:
        if peer.alive:
            for name, line in (peer.info.get("lines") or {}).items():
                limits[name] = int(line.get("limit", limits.get(name, 0)) or 0)
    return [{"server": name, "in_use": in_flight.get(name, 0), "limit": limits.get(name),
             "paused": name in paused.servers}
            for name in sorted(set(limits) | set(in_flight))]


def _label(t: Translate, has_key: Callable[[str], bool], prefix: str, code: str | None) -> str:
    """A code by its catalogue label (ivr.web.labels), or the code when there is none."""
    if not code:
        return ""
    return t(f"{prefix}{code}") if has_key(f"{prefix}{code}") else code


def _calls(session: Session, now: dt.datetime, t: Translate, has_key: Callable[[str], bool]) -> list[dict[str, Any]]:
    rows = session.execute(
        select(CallAttempt.id, CallAttempt.action_id, CallAttempt.state, CallAttempt.stage_code, CallAttempt.server,
               CallAttempt.purpose, CallAttempt.created_at, CallAttempt.originated_at, CallAttempt.answered_at,
               Account.external_id)
        .join(Account, Account.id == CallAttempt.account_id)
        .where(CallAttempt.state.in_(IN_FLIGHT)).order_by(CallAttempt.id).limit(MAX_CALLS)
    ).all()
    latest: dict[int, str] = {}
    if rows:
        last_seq = (select(CallStep.attempt_id, func.max(CallStep.seq).label("seq"))
                    .where(CallStep.attempt_id.in_([r.id for r in rows])).group_by(CallStep.attempt_id).subquery())
        for attempt_id, step in session.execute(
            select(CallStep.attempt_id, CallStep.step)
            .join(last_seq, (last_seq.c.attempt_id == CallStep.attempt_id) & (last_seq.c.seq == CallStep.seq))
        ):
            latest[attempt_id] = step
    naive_now = naive_utc(now)
    calls = []
    for r in rows:
        started = r.originated_at or r.created_at
        calls.append({
            "id": r.action_id, "account": r.external_id, "stage": r.stage_code or "", "server": r.server or "",
            "stage_label": _label(t, has_key, "ladder_stage_", r.stage_code),
            "purpose": r.purpose, "state": r.state, "step": latest.get(r.id) or "",
            "step_label": step_label(t, has_key, latest.get(r.id), r.state),
            "since": _iso(started), "seconds": max(0, int((naive_now - started).total_seconds())),
        })
    return calls


def _today(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
    dialled_today = (CallAttempt.purpose == "robot", CallAttempt.originated_at >= start, CallAttempt.originated_at < end)
    dialled, answered = session.execute(
        select(func.count(), func.count(CallAttempt.answered_at)).where(*dialled_today)).one()
    in_flight_cases = select(CallAttempt.debt_case_id).where(CallAttempt.state.in_(IN_FLIGHT),
                                                             CallAttempt.debt_case_id.is_not(None))
    still_due = and_(DebtCase.state == CaseState.ACTIVE.value, DebtCase.amount_owed > 0,
                     or_(DebtCase.next_attempt_at.is_(None), DebtCase.next_attempt_at < end),
                     DebtCase.id.not_in(in_flight_cases))
    remaining = session.scalar(select(func.count()).select_from(DebtCase).where(still_due)) or 0
    # a case dialled today and due again later today counts once
    dialled_cases = select(CallAttempt.debt_case_id).where(*dialled_today, CallAttempt.debt_case_id.is_not(None))
    due = session.scalar(select(func.count()).select_from(DebtCase)
                         .where(or_(still_due, DebtCase.id.in_(dialled_cases)))) or 0
    return {"due_today": int(due), "dialled_today": int(dialled), "answered_today": int(answered),
            "remaining": int(remaining)}


def _queues(session: Session, start: dt.datetime) -> list[dict[str, Any]]:
    per: dict[str, dict[str, Any]] = defaultdict(lambda: {"raised_today": 0, "done_today": 0, "open": 0,
                                                          "results": {}})
    for queue, n in session.execute(select(CallbackTask.queue, func.count()).where(CallbackTask.created_at >= start)
                                    .group_by(CallbackTask.queue)):
        per[queue]["raised_today"] = int(n)
    for queue, result, n in session.execute(
        select(CallbackTask.queue, CallbackTask.result, func.count()).where(CallbackTask.done_at >= start)
        .group_by(CallbackTask.queue, CallbackTask.result)
    ):
        per[queue]["done_today"] += int(n)
        per[queue]["results"][result or "-"] = int(n)
    for queue, n in session.execute(select(CallbackTask.queue, func.count()).where(CallbackTask.state == "open")
                                    .group_by(CallbackTask.queue)):
        per[queue]["open"] = int(n)
    return [{"queue": q, **v} for q, v in sorted(per.items())]


def _outcomes(session: Session, start: dt.datetime) -> dict[str, int]:
    return {kind or "-": int(n) for kind, n in session.execute(
        select(Outcome.kind, func.count()).where(Outcome.created_at >= start).group_by(Outcome.kind))}


def _health(peers: list[heartbeat.Peer]) -> dict[str, Any]:
    ami, agi, dialing = [], [], []
    for peer in peers:
        if not peer.alive:
            continue
        for name, state in (peer.info.get("ami") or {}).items():
            ami.append({"server": name, "process": peer.instance, "connected": bool(state.get("connected")),
                        "since": state.get("since"), "last_error": state.get("last_error") or ""})
        if peer.info.get("agi"):
            a = peer.info["agi"]
            agi.append({"process": peer.instance, "address": f"{a.get('host')}:{a.get('port')}"})
        health = (peer.info.get("dialer") or {}).get("health")
        if health is not None:
            dialing.append({"process": peer.instance, "ok": bool(health.get("ok")), "reason": health.get("reason") or "",
                            "since": health.get("since")})
    return {"running": any(p.alive for p in peers), "ami": ami, "agi": agi, "dialing": dialing}


def _last_errors(session: Session, start: dt.datetime) -> list[dict[str, Any]]:
    rows = session.execute(
        select(CallAttempt.action_id, CallAttempt.server, CallAttempt.result, CallAttempt.hangup_cause,
               CallAttempt.ended_at, CallAttempt.created_at)
        .where(CallAttempt.result.in_(sorted(FAULT_RESULTS)), CallAttempt.created_at >= start)
        .order_by(CallAttempt.id.desc()).limit(LAST_ERRORS)
    ).all()
    return [{"id": r.action_id, "server": r.server or "", "result": r.result, "cause": r.hangup_cause,
             "at": _iso(r.ended_at or r.created_at)} for r in rows]


def snapshot(session: Session, settings: Settings, now: dt.datetime, plan: Outlook, t: Translate,
             has_key: Callable[[str], bool]) -> dict[str, Any]:
    """Everything the live page shows, JSON-ready. `plan` is the case outlook (computed by the
    caller, which may reuse a recent one: it reads every open case)."""
    now = to_utc(now)
    start, end = day_bounds(now, settings.default_timezone)
    peers = heartbeat.read(session, now)
    paused = pauses.active(session)
    in_flight = {server or "?": int(n) for server, n in session.execute(
        select(CallAttempt.server, func.count()).where(CallAttempt.state.in_(IN_FLIGHT)).group_by(CallAttempt.server))}
    health = _health(peers)
    health["last_errors"] = [{**e, "result_label": _label(t, has_key, "fault_", e["result"])}
                             for e in _last_errors(session, start)]
    outcomes = _outcomes(session, start)
    queues = [{**q, "label": _label(t, has_key, "queue_", q["queue"])} for q in _queues(session, start)]
    pauses_shown = []
    for p in pauses.list_active(session):
        shown = p.to_dict()
        if shown.get("scope") == "stage":
            shown["key_label"] = _label(t, has_key, "ladder_stage_", str(shown.get("key") or ""))
        pauses_shown.append(shown)
    return {
        "at": _iso(now),
        "lines": _lines(settings, peers, in_flight, paused),
        "calls": _calls(session, now, t, has_key),
        "plan": {**plan.to_dict(), **_today(session, start, end)},
        "outcomes_today": outcomes,
        "outcome_labels": {k: _label(t, has_key, "outcome_", k) for k in outcomes},
        "queues": queues,
        "health": health,
        "pauses": pauses_shown,
    }
