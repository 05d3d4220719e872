"""Delivering outbox events to the billing system's HTTP endpoint.

One round (`deliver_once`): claim the deliverable events, POST them, mark each sent or due again.
An event is deliverable when it is pending or retrying, its next try is due, no sender holds a
live lease on it, and every earlier event of its account (lower `seq`) is sent: so an account's
events go strictly in order (a later one waits while an earlier one is undelivered, failed
included), while other accounts go on. At most one event per account is in flight.

Claims: a claim is a lease (claimed_by, claimed_until) set with a compare-and-set UPDATE; on
PostgreSQL the candidate rows are first selected FOR UPDATE SKIP LOCKED, so several senders do
not queue up on the same rows. A sender that dies between the POST and marking the event sent
leaves the lease to expire; then the event is sent again with the same Idempotency-Key (billing
must treat a repeated key as the same event and answer 2xx).

Responses: 2xx = delivered. 408, 425, 429, 5xx, a timeout or no connection = retry after an
exponential back-off with jitter, or billing's Retry-After when longer (never given up: a billing
outage of any length loses nothing).
Any other status (400, 401, 404, ...) = failed: billing refused the event, retrying the same bytes
will not help; it stays failed (and its account's later events wait) until an admin resends it
(`ivr outbox resend ID` or the admin page), normally after billing has been fixed.

Signature: header `X-IVR-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>`
over the exact request body bytes (see `verify`, which billing may copy).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import math
import os
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from ivr.config import Settings
from ivr.db.models import OutboxEvent
from ivr.outbox.events import FAILED, PENDING, RETRYING, SENT, naive_utc, rowcount

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-IVR-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVENT_HEADER = "X-IVR-Event"
RETRY_STATUSES = frozenset({408, 425, 429})
DUE = (PENDING, RETRYING)
MAX_ERROR = 500


@dataclass(frozen=True)
class PushConfig:
    """Where and how to push; the timings are parameters so tests can run fast."""

    url: str
    secret: str
    timeout_s: float = 10.0  # per request, all of it (connect, send, wait, read)
    backoff_base_s: float = 5.0  # first retry after about this long, doubling each time
    backoff_max_s: float = 3600.0  # cap of the doubling
    lease_s: float = 120.0  # a claim older than this is taken over (its sender is gone)
    batch: int = 32  # events (accounts) per round
    concurrency: int = 8  # requests in flight at once
    poll_s: float = 5.0  # pause of `run` when nothing was due

    def __post_init__(self) -> None:
        if not self.url or not self.secret:
            raise ValueError("billing push needs a URL and a secret")
        if self.batch < 1 or self.concurrency < 1:
            raise ValueError("batch and concurrency must be at least 1")
        # A live sender's lease must outlast its whole round (requests queue behind `concurrency`),
        # or a second sender would take over and send again.
        if self.lease_s <= (math.ceil(self.batch / self.concurrency) + 1) * self.timeout_s:
            raise ValueError("lease_s must exceed (batch / concurrency + 1) request timeouts")


@dataclass
class RoundReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    lost_lease: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.sent + self.retrying + self.failed + self.lost_lease


@dataclass(frozen=True)
class Claimed:
    id: int
    key: str
    kind: str
    attempts: int
    body: bytes


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance_s: float = 300.0) -> bool:
    """What billing does with the header: recompute the HMAC over "<t>." + body and compare in
    constant time; a timestamp further than `tolerance_s` from `now` is refused (replays)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    want = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(want, given)


def body_of(event: OutboxEvent) -> bytes:
    """The JSON body billing receives (stable field names; see README "Push to billing")."""
    doc = {
        "id": event.idempotency_key, "type": event.kind, "account": event.account_external_id,
        "seq": event.seq, "created_at": event.created_at.isoformat() + "Z", "data": event.payload,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def backoff_s(attempts: int, config: PushConfig, rnd: Callable[[], float] = random.random) -> float:
    """Delay before try number `attempts + 1`: base * 2^(attempts-1), capped, with jitter (half
    fixed, half random) so that many events failed together do not come back together."""
    delay = min(config.backoff_max_s, config.backoff_base_s * 2 ** max(0, attempts - 1))
    return delay / 2 + rnd() * delay / 2


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


# -- database steps (blocking; run in a worker thread) ---------------------------------------------

def claim(sessions: sessionmaker[Session], worker: str, now: dt.datetime, config: PushConfig) -> list[Claimed]:
    """Lease the deliverable events (the head of each account's queue), oldest first."""
    stamp = naive_utc(now)
    earlier = aliased(OutboxEvent)
    waiting = (
        select(earlier.id)
        .where(earlier.account_id == OutboxEvent.account_id, earlier.seq < OutboxEvent.seq, earlier.state != SENT)
        .exists()
    )
    free = or_(OutboxEvent.claimed_until.is_(None), OutboxEvent.claimed_until < stamp)
    stmt = (
        select(OutboxEvent)
        .where(OutboxEvent.state.in_(DUE), OutboxEvent.next_try_at <= stamp, free, ~waiting)
        .order_by(OutboxEvent.id)
        .limit(config.batch)
    )
    until = stamp + dt.timedelta(seconds=config.lease_s)
    claimed: list[Claimed] = []
    with sessions.begin() as session:
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=OutboxEvent)
        for event in session.scalars(stmt).all():
            won = session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id == event.id, OutboxEvent.state.in_(DUE), free)
                .values(claimed_by=worker, claimed_until=until)
                .execution_options(synchronize_session=False)
            )
            if rowcount(won) == 1:
                claimed.append(Claimed(event.id, event.idempotency_key, event.kind, event.attempts, body_of(event)))
    return claimed


def mark(
    sessions: sessionmaker[Session], event_id: int, worker: str, now: dt.datetime, *,
    state: str, error: str = "", next_try_at: dt.datetime | None = None,
) -> bool:
    """Record a try's result; False when this sender no longer held the lease."""
    stamp = naive_utc(now)
    values: dict[str, Any] = {
        "state": state, "attempts": OutboxEvent.attempts + 1, "last_error": error[:MAX_ERROR],
        "claimed_by": None, "claimed_until": None,
    }
    if state == SENT:
        values["sent_at"] = stamp
    if next_try_at is not None:
        values["next_try_at"] = naive_utc(next_try_at)
    with sessions.begin() as session:
        done = session.execute(
            update(OutboxEvent).where(OutboxEvent.id == event_id, OutboxEvent.claimed_by == worker)
            .values(**values).execution_options(synchronize_session=False)
        )
        return rowcount(done) == 1


def resend(sessions: sessionmaker[Session], event_id: int, now: dt.datetime) -> bool:
    """An admin's resend: the event is due again at once (same key, same body), whatever its
    state; its try count starts over. False when there is no such event."""
    stamp = naive_utc(now)
    with sessions.begin() as session:
        done = session.execute(
            update(OutboxEvent).where(OutboxEvent.id == event_id)
            .values(state=PENDING, attempts=0, next_try_at=stamp, claimed_by=None, claimed_until=None)
            .execution_options(synchronize_session=False)
        )
        return rowcount(done) == 1


# -- HTTP -----------------------------------------------------------------------------------------

def retry_after_s(response: httpx.Response) -> float | None:
    """Billing's own `Retry-After: <seconds>` (429, 503); a date form or garbage is ignored."""
    raw = response.headers.get("Retry-After", "").strip()
    return float(raw) if raw.isdigit() else None


async def _post(
    client: httpx.AsyncClient, config: PushConfig, event: Claimed, unix_now: float,
) -> tuple[str, str, float | None]:
    """POST one event: (new state, error text, billing's Retry-After in seconds)."""
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        IDEMPOTENCY_HEADER: event.key,
        EVENT_HEADER: event.kind,
        SIGNATURE_HEADER: sign(config.secret, int(unix_now), event.body),
    }
    try:
        # httpx's timeouts are per phase (a slow trickle of bytes never trips the read timeout):
        # the whole request gets one deadline, so a round always ends within its lease
        async with asyncio.timeout(config.timeout_s):
            response = await client.post(config.url, content=event.body, headers=headers, timeout=config.timeout_s)
    except TimeoutError:
        return RETRYING, f"no answer within {config.timeout_s:g} s", None
    except httpx.HTTPError as exc:  # refused, reset, timed out, DNS: billing unreachable for now
        return RETRYING, f"{type(exc).__name__}: {exc}".rstrip(": "), None
    if 200 <= response.status_code < 300:
        return SENT, "", None
    detail = f"HTTP {response.status_code}: {response.text[:200]}"
    if response.status_code >= 500 or response.status_code in RETRY_STATUSES:
        return RETRYING, detail, retry_after_s(response)
    return FAILED, detail, None


async def deliver_once(
    sessions: sessionmaker[Session], client: httpx.AsyncClient, config: PushConfig, *,
    worker: str, now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    rnd: Callable[[], float] = random.random,
) -> RoundReport:
    """One round: claim what is deliverable now, POST it (one request per account at a time,
    `concurrency` at once), record each result."""
    report = RoundReport()
    claimed = await asyncio.to_thread(claim, sessions, worker, now(), config)
    if not claimed:
        return report
    gate = asyncio.Semaphore(config.concurrency)

    async def one(event: Claimed) -> None:
        async with gate:
            state, error, asked = await _post(client, config, event, now().timestamp())
        moment = now()
        retry_at = None
        if state == RETRYING:  # our back-off, or later when billing asks for it (up to the cap)
            delay = max(backoff_s(event.attempts + 1, config, rnd), min(asked or 0.0, config.backoff_max_s))
            retry_at = moment + dt.timedelta(seconds=delay)
        kept = await asyncio.to_thread(mark, sessions, event.id, worker, moment, state=state, error=error,
                                       next_try_at=retry_at)
        if not kept:
            report.lost_lease += 1
            log.warning("outbox event %s: lease lost while sending (another sender took over)", event.id)
        elif state == SENT:
            report.sent += 1
        elif state == RETRYING:
            report.retrying += 1
            report.errors.append(error)
            log.info("outbox event %s (%s) not delivered, try %d: %s", event.id, event.kind, event.attempts + 1, error)
        else:
            report.failed += 1
            report.errors.append(error)
            log.error("outbox event %s (%s) refused by billing: %s; resend it once billing is fixed",
                      event.id, event.kind, error)

    await asyncio.gather(*(one(event) for event in claimed))
    return report


def make_client() -> httpx.AsyncClient:
    # no redirects: a signed POST must not be replayed to wherever a Location header points
    return httpx.AsyncClient(follow_redirects=False, trust_env=False)


async def run(
    sessions: sessionmaker[Session], config: PushConfig, stop: asyncio.Event, *,
    worker: str | None = None, client: httpx.AsyncClient | None = None,
) -> None:
    """Deliver until `stop` is set: rounds back to back while there is work, otherwise a pause of
    `poll_s`. A database or other unexpected error is logged and the loop goes on."""
    me = worker or default_worker_id()
    own = client is None
    http = client or make_client()
    log.info("billing push to %s started (sender %s)", config.url, me)
    try:
        while not stop.is_set():
            try:
                report = await deliver_once(sessions, http, config, worker=me)
            except Exception:  # noqa: BLE001 - the push must outlive a database hiccup
                log.exception("billing push round failed; trying again in %.0f s", config.poll_s)
                report = RoundReport()
            if report.sent or report.lost_lease:
                continue  # more may be deliverable now (the next event of the same accounts)
            try:
                await asyncio.wait_for(stop.wait(), timeout=config.poll_s)
            except TimeoutError:
                pass
    finally:
        if own:
            await http.aclose()
        log.info("billing push stopped")


def config_from_settings(settings: Settings) -> PushConfig | None:
    """The push configuration of IVR_BILLING_PUSH_URL/SECRET; None when no URL is set (events
    are still recorded, and go out once a URL is configured)."""
    if not settings.billing_push_url:
        return None
    return PushConfig(url=settings.billing_push_url, secret=settings.billing_push_secret)


def undelivered(sessions: sessionmaker[Session]) -> int:
    """Events not sent yet (pending, retrying or failed)."""
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(OutboxEvent).where(OutboxEvent.state != SENT)) or 0)
