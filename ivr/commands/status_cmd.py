"""`ivr status`: what the robot is doing now and, when it calls nobody, why.

Cases by state; callable now; waiting for a call window (when it opens, subscriber's local time);
held by contact limits (until when); retries planned; promised (until when); no usable phone;
opted out; in flight; lines in use per Asterisk server against its limit; AMI connected or not
and since when; whether the FastAGI port answers; the next planned call. Read from the database
(the running services write heartbeats there), so it works from any shell on any host that
reaches the database. `--json` for scripts and monitoring.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import socket
from typing import Any

from sqlalchemy import func, select

from ivr.config import Settings, load_settings

PROBE_TIMEOUT = 2.0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("status", help="what the robot is doing now, and why it calls nobody")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def probe(host: str, port: int) -> tuple[bool, str]:
    """Does something accept TCP connections there? (a wildcard bind is probed on loopback)"""
    target = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    try:
        with socket.create_connection((target, port), timeout=PROBE_TIMEOUT):
            return True, "answers"
    except OSError as exc:
        return False, exc.strerror or type(exc).__name__


def collect(settings: Settings, db: Any, now: dt.datetime) -> dict[str, Any]:
    from ivr import heartbeat
    from ivr.db.models import CallAttempt
    from ivr.dialer import pauses as pauses_mod
    from ivr.dialer.outlook import outlook as build_outlook
    from ivr.dialer.policy import load_rules
    from ivr.dialer.selector import IN_FLIGHT

    with db.sessions() as session:
        outlook = build_outlook(session, load_rules(session, settings.default_timezone), now)
        peers = heartbeat.read(session, now)
        paused = [p.to_dict() for p in pauses_mod.list_active(session)]
        in_flight = {server or "?": int(n) for server, n in session.execute(
            select(CallAttempt.server, func.count()).where(CallAttempt.state.in_(IN_FLIGHT))
            .group_by(CallAttempt.server))}
    alive = [p for p in peers if p.alive]
    limits: dict[str, int] = {}
    ami: dict[str, Any] = {}
    agi: list[dict[str, Any]] = []
    dialers: list[dict[str, Any]] = []
    for peer in alive:
        for name, line in (peer.info.get("lines") or {}).items():
            limits[name] = max(limits.get(name, 0), int(line.get("limit", 0)))
        for name, state in (peer.info.get("ami") or {}).items():
            ami[f"{name}@{peer.instance}"] = {"server": name, "process": peer.instance, **state}
        health = (peer.info.get("dialer") or {}).get("health")
        if health is not None:
            dialers.append({"process": peer.instance, **health})
        if peer.info.get("agi"):
            a = peer.info["agi"]
            ok, why = probe(a["host"], int(a["port"]))
            agi.append({"process": peer.instance, "host": a["host"], "port": a["port"], "answers": ok, "detail": why})
    if not agi:  # no running service says where it listens: probe the configured address
        ok, why = probe(settings.agi_host, settings.agi_port)
        agi.append({"process": None, "host": settings.agi_host, "port": settings.agi_port, "answers": ok, "detail": why})
    lines = {name: {"in_use": in_flight.get(name, 0), "limit": limits.get(name)}
             for name in sorted(set(limits) | set(in_flight))}
    return {
        "at": now.isoformat(timespec="seconds"),
        "services": [{"instance": p.instance, "role": p.role, "host": p.host, "pid": p.pid, "alive": p.alive,
                      "stopped": p.stopped, "simulator": bool(p.info.get("simulator")),
                      "loop": p.info.get("loop"),
                      "started_at": p.started_at.isoformat(timespec="seconds"),
                      "updated_at": p.updated_at.isoformat(timespec="seconds")} for p in peers],
        "cases": outlook.to_dict(),
        "lines": lines,
        "ami": list(ami.values()),
        "fastagi": agi,
        "dialing": dialers,
        "pauses": paused,
        "gist": outlook.gist(),
    }


def render(report: dict[str, Any]) -> str:
    cases = report["cases"]
    out: list[str] = [f"ivr status at {report['at']} (UTC)", ""]
    alive = [s for s in report["services"] if s["alive"]]
    if not alive:
        out.append("service: NOT RUNNING (no `ivr run` or `ivr agi-server` heartbeat in the last 30 s)")
    for s in alive:
        sim = " on the BUILT-IN SIMULATOR" if s["simulator"] else ""
        out.append(f"service: {s['role']} {s['instance']} up since {s['started_at']}{sim}")
        loop = s.get("loop") or {}
        if loop.get("count"):
            out.append(f"  EVENT LOOP STALLS (over {loop['threshold_ms']} ms, every call waits): {loop['count']}, "
                       f"longest {loop['longest_ms']} ms; last at {loop['last_at']} in {loop['last_where']} "
                       "(the log has its stack)")
    for a in report["ami"]:
        state = "connected" if a["connected"] else f"DOWN ({a.get('last_error') or 'not connected'})"
        out.append(f"AMI {a['server']}: {state} since {a['since']}")
    for f in report["fastagi"]:
        state = "answers" if f["answers"] else f"DOES NOT ANSWER ({f['detail']})"
        out.append(f"FastAGI {f['host']}:{f['port']}: {state}")
    for d in report.get("dialing", []):
        state = "on" if d["ok"] else f"PAUSED ({d['reason']})"
        out.append(f"dialling ({d['process']}): {state} since {d['since']}")
    for p in report.get("pauses", []):
        what = "EVERYTHING" if p["scope"] == "global" else f"{p['scope']} {p['key']}"
        why = f": {p['why']}" if p["why"] else ""
        out.append(f"PAUSED {what} by {p['who']} since {p['since']}{why} (`ivr resume` to end)")
    for name, line in report["lines"].items():
        limit = line["limit"] if line["limit"] is not None else "?"
        out.append(f"lines {name}: {line['in_use']} in use of {limit}")
    out.append("")
    states = ", ".join(f"{k} {v}" for k, v in sorted(cases["states"].items())) or "none"
    out.append(f"cases by state: {states}")
    if cases.get("method") == "quick":
        out.append("  (many open cases: counted from what the dialer recorded; due cases count as callable)")
    rows: list[tuple[str, Any, str]] = [
        ("callable now", cases["callable_now"], ""),
        ("in flight", cases["in_flight"], ""),
    ]
    for key, label, verb in (("waiting_window", "waiting for a call window", "first opens"),
                             ("held_by_limits", "held by contact limits", "first until"),
                             ("scheduled", "retry planned", "first at"),
                             ("waiting_stage", "waiting for a ladder stage", "first at"),
                             ("promised", "promised", "first promise ends")):
        b = cases[key]
        when = f"{verb} {b['first_local']} subscriber time ({b['first_zone']})" if b["first_local"] else ""
        rows.append((label, b["count"], when))
    rows += [("no usable phone", cases["no_phone"], ""), ("unknown time zone", cases["bad_timezone"], ""),
             ("opted out", cases["opted_out"], ""), ("leaving the robot today", cases["leaving"], "")]
    width = max(len(r[0]) for r in rows)
    for label, count, note in rows:
        out.append(f"  {label:<{width}}  {count:>7}  {note}".rstrip())
    nxt = cases["next_call"]
    out.append("")
    if cases["open_cases"] == 0:
        out.append("next call: none (no open debt case; import a billing file)")
    elif cases["callable_now"]:
        out.append("next call: now" + ("" if alive else " (but no service is running: start `ivr run`)"))
    else:
        out.append(f"next call: {nxt['at'] or 'none planned'} UTC ({nxt['why']})")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    from ivr.wiring import open_database

    settings = load_settings(args.env_file)
    db = open_database(settings)
    try:
        report = collect(settings, db, dt.datetime.now(dt.UTC))
    finally:
        db.engine.dispose()
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else render(report))
    return 0
