"""`ivr outbox list|resend ID|send`: the push-to-billing event log, for admins and for testing.

list   the newest events (filter with --state, --account), with tries and the last error;
resend ID   make an event due again at once (same idempotency key and body), e.g. a failed
       one after billing has been fixed; the running `ivr run` sends it within a few seconds;
send   deliver what is due now from this shell (IVR_BILLING_PUSH_URL/SECRET), rounds until
       nothing more is deliverable; exit 1 when something is left undelivered.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from typing import Any

from sqlalchemy import func, select

from ivr.config import load_settings
from ivr.wiring import open_database


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("outbox", help="events pushed to billing: list, resend, send now")
    sub = parser.add_subparsers(dest="outbox_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="the newest events, with state, tries and last error")
    listing.add_argument("--state", choices=("pending", "retrying", "sent", "failed"), help="only this state")
    listing.add_argument("--account", metavar="EXTERNAL_ID", help="only this account")
    listing.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=run_list)
    again = sub.add_parser("resend", help="make an event due again now (same key and body)")
    again.add_argument("id", type=int, help="event id (from `ivr outbox list`)")
    again.set_defaults(func=run_resend)
    send = sub.add_parser("send", help="deliver what is due now, then exit")
    send.set_defaults(func=run_send)


def _row(event: Any) -> dict[str, Any]:
    return {
        "id": event.id, "key": event.idempotency_key, "account": event.account_external_id, "seq": event.seq,
        "type": event.kind, "state": event.state, "attempts": event.attempts,
        "created_at": event.created_at.isoformat(), "next_try_at": event.next_try_at.isoformat(),
        "sent_at": event.sent_at.isoformat() if event.sent_at else None, "last_error": event.last_error,
    }


def run_list(args: argparse.Namespace) -> int:
    from ivr.db.models import OutboxEvent

    if args.limit < 1:
        print("ivr outbox list: --limit must be at least 1", file=sys.stderr)
        return 2
    database = open_database(load_settings(args.env_file))
    try:
        with database.sessions() as session:
            stmt = select(OutboxEvent).order_by(OutboxEvent.id.desc()).limit(args.limit)
            if args.state:
                stmt = stmt.where(OutboxEvent.state == args.state)
            if args.account:
                stmt = stmt.where(OutboxEvent.account_external_id == args.account)
            rows = [_row(e) for e in session.scalars(stmt)]
            counts = {str(k): int(v) for k, v in session.execute(
            select(OutboxEvent.state, func.count()).group_by(OutboxEvent.state))}
    finally:
        database.engine.dispose()
    if args.json:
        print(json.dumps({"counts": counts, "events": rows}, ensure_ascii=False, indent=2))
        return 0
    print("events: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
    for r in rows:
        error = f"  {r['last_error']}" if r["last_error"] else ""
        print(f"{r['id']:>7}  {r['state']:<8} tries {r['attempts']:<3} {r['account']:<16} #{r['seq']:<4} "
              f"{r['type']:<20} {r['created_at']}{error}")
    return 0


def run_resend(args: argparse.Namespace) -> int:
    from ivr.outbox.sender import resend

    database = open_database(load_settings(args.env_file))
    try:
        found = resend(database.sessions, args.id, dt.datetime.now(dt.UTC))
    finally:
        database.engine.dispose()
    if not found:
        print(f"ivr outbox resend: no event with id {args.id}", file=sys.stderr)
        return 1
    print(f"event {args.id} is due again")
    return 0


def run_send(args: argparse.Namespace) -> int:
    from ivr.outbox.sender import (
        config_from_settings,
        default_worker_id,
        deliver_once,
        make_client,
        undelivered,
    )

    settings = load_settings(args.env_file)
    config = config_from_settings(settings)
    if config is None:
        print("ivr outbox send: IVR_BILLING_PUSH_URL is not set: nowhere to send", file=sys.stderr)
        return 2
    database = open_database(settings)

    async def rounds() -> tuple[int, int, int]:
        sent = retrying = failed = 0
        async with make_client() as client:
            while True:
                report = await deliver_once(database.sessions, client, config, worker=default_worker_id())
                sent, retrying, failed = sent + report.sent, retrying + report.retrying, failed + report.failed
                if not report.sent:  # nothing more became deliverable (the rest waits for a retry)
                    return sent, retrying, failed

    try:
        sent, retrying, failed = asyncio.run(rounds())
        left = undelivered(database.sessions)
    finally:
        database.engine.dispose()
    print(f"sent {sent}, tries to retry {retrying}, refused {failed}; undelivered now {left}")
    return 0 if left == 0 else 1
