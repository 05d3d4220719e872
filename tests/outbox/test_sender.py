"""The sender against a real HTTP receiver: failures, an outage, a crash mid-delivery, refusals,
and several senders at once (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ivr.db.models import Account, OutboxEvent
from ivr.outbox import events
from ivr.outbox.sender import (
    PushConfig,
    RoundReport,
    claim,
    deliver_once,
    make_client,
    resend,
    run,
    sign,
    verify,
)
from ivr.wiring import Database
from tests.outbox.receiver import Receiver

SECRET = "test-secret-0123456789-abcdefghijklmnop"
UTC = dt.UTC


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET)
    yield r
    r.close()


def fast(url: str, **kw: Any) -> PushConfig:
    values: dict[str, Any] = dict(url=url, secret=SECRET, timeout_s=5.0, backoff_base_s=0.01, backoff_max_s=0.05,
                                  lease_s=30.0, batch=16, concurrency=4, poll_s=0.01)
    values.update(kw)
    return PushConfig(**values)


def add_accounts(sessions: sessionmaker[Session], n: int) -> list[int]:
    with sessions.begin() as s:
        accounts = [Account(external_id=f"ACC-{i:03d}", holder_name=f"Holder {i}") for i in range(n)]
        s.add_all(accounts)
        s.flush()
        return [a.id for a in accounts]


def record_events(sessions: sessionmaker[Session], accounts: list[int], per_account: int) -> list[str]:
    """Events interleaved across accounts, one transaction each (as the facts happen)."""
    keys = []
    now = dt.datetime.now(UTC)
    for i in range(per_account):
        for acc in accounts:
            key = f"test:{acc}:{i}"
            with sessions.begin() as s:
                assert events.record(s, events.PROMISE_MADE, acc, {"n": i, "sum": "1800.00"}, now, key=key)
            keys.append(key)
    return keys


def states(sessions: sessionmaker[Session]) -> dict[str, OutboxEvent]:
    with sessions() as s:
        return {e.idempotency_key: e for e in s.scalars(select(OutboxEvent))}


async def deliver_until(
    sessions: sessionmaker[Session], client: httpx.AsyncClient, config: PushConfig, done: Callable[[], bool],
    *, worker: str = "w1",
) -> list[RoundReport]:
    """Rounds until `done()`; between empty rounds a short pause lets a back-off come due. The
    loop limit only turns a hang into a failure."""
    reports = []
    for _ in range(20000):
        if done():
            return reports
        report = await deliver_once(sessions, client, config, worker=worker)
        reports.append(report)
        if report.attempted == 0:
            await asyncio.sleep(0.005)
    raise AssertionError("delivery never reached the wanted state")


def assert_in_order_once(receiver: Receiver, keys: list[str]) -> None:
    seen = receiver.seen
    assert seen.bad_signatures == 0
    assert sorted(seen.accepted) == sorted(keys)
    by_account: dict[str, list[int]] = {}
    for doc in seen.first:
        by_account.setdefault(doc["account"], []).append(doc["seq"])
    for account, seqs in by_account.items():
        assert seqs == list(range(1, len(seqs) + 1)), f"{account} delivered out of order: {seqs}"


def test_signature_round_trip() -> None:
    body = b'{"id":"x"}'
    header = sign(SECRET, 1_700_000_000, body)
    assert header.startswith("t=1700000000,v1=")
    assert verify(SECRET, header, body, now=1_700_000_010)
    assert not verify(SECRET, header, body + b" ", now=1_700_000_010)
    assert not verify("another-secret", header, body, now=1_700_000_010)
    assert not verify(SECRET, header, body, now=1_700_000_000 + 3600)  # a replay an hour later
    assert not verify(SECRET, "garbage", body, now=1_700_000_000)


@pytest.mark.postgres
async def test_failures_and_outage_deliver_every_event_once_in_order(any_db: Database, receiver: Receiver) -> None:
    sessions = any_db.sessions
    keys = record_events(sessions, add_accounts(sessions, 3), per_account=4)
    config = fast(receiver.url)
    receiver.fail_next = 3  # the first tries get 500
    async with make_client() as client:
        await deliver_until(sessions, client, config, lambda: len(receiver.seen.accepted) >= 3)
        assert receiver.seen.failed_on_purpose == 3
        receiver.down()  # billing is down: connections refused
        await deliver_until(sessions, client, config,
                            lambda: any("ConnectError" in e.last_error for e in states(sessions).values()))
        during = dict(receiver.seen.accepted)
        receiver.up()
        await deliver_until(sessions, client, config,
                            lambda: all(e.state == events.SENT for e in states(sessions).values()))
    assert len(during) < len(keys)  # the outage really held events back
    assert_in_order_once(receiver, keys)
    assert all(n == 1 for n in receiver.seen.accepted.values())  # exactly once per key
    stored = states(sessions)
    assert sum(1 for e in stored.values() if e.attempts > 1) >= 3  # the 500s and the refusals were retried
    assert all(e.sent_at is not None and e.claimed_by is None for e in stored.values())


async def test_crash_between_send_and_mark_resends_with_the_same_key(db: Database, receiver: Receiver) -> None:
    sessions = db.sessions
    keys = record_events(sessions, add_accounts(sessions, 1), per_account=2)
    config = fast(receiver.url)
    receiver.hold_next = True  # billing takes the first event, but its answer never arrives
    async with make_client() as client:
        crashed = asyncio.create_task(deliver_once(sessions, client, config, worker="dies"))
        await asyncio.to_thread(receiver.wait_for, lambda seen: seen.held)
        crashed.cancel()  # the sender stops dead: no "sent" is written
        with pytest.raises(asyncio.CancelledError):
            await crashed
        receiver.release.set()
        first = states(sessions)[keys[0]]
        assert (first.state, first.claimed_by) == (events.PENDING, "dies")
        # While the dead sender's lease lasts nobody sends; the next event waits behind the first.
        idle = await deliver_once(sessions, client, config, worker="heir")
        assert idle.attempted == 0
        later = dt.datetime.now(UTC) + dt.timedelta(seconds=config.lease_s + 1)
        takeover = await deliver_once(sessions, client, config, worker="heir", now=lambda: later)
        assert takeover.sent == 1
        rest = await deliver_once(sessions, client, config, worker="heir", now=lambda: later)
        assert rest.sent == 1
    assert receiver.seen.accepted == {keys[0]: 2, keys[1]: 1}  # the same key twice: billing dedups
    assert_in_order_once(receiver, keys)


async def test_refused_event_holds_its_account_until_resent(db: Database, receiver: Receiver) -> None:
    sessions = db.sessions
    accounts = add_accounts(sessions, 2)
    keys = record_events(sessions, accounts, per_account=2)  # a1#1, a2#1, a1#2, a2#2
    wrong = fast(receiver.url, secret="not-the-shared-secret-but-long-enough")
    async with make_client() as client:
        report = await deliver_once(sessions, client, wrong, worker="w")
        assert (report.failed, report.sent) == (2, 0)  # 401: refused, not retried
        assert await deliver_once(sessions, client, wrong, worker="w") == RoundReport()
        stored = states(sessions)
        assert stored[keys[0]].state == events.FAILED and "401" in stored[keys[0]].last_error
        # Fixed: the admin resends the first account's event only; the second account stays held.
        config = fast(receiver.url)
        assert resend(sessions, stored[keys[0]].id, dt.datetime.now(UTC))
        assert not resend(sessions, 999999, dt.datetime.now(UTC))
        await deliver_until(sessions, client, config, lambda: len(receiver.seen.accepted) == 2)
        assert await deliver_once(sessions, client, config, worker="w") == RoundReport()
    assert sorted(receiver.seen.accepted) == sorted([keys[0], keys[2]])
    assert states(sessions)[keys[1]].state == events.FAILED


@pytest.mark.postgres
async def test_several_senders_share_the_work_without_double_sends(any_db: Database, receiver: Receiver) -> None:
    sessions = any_db.sessions
    keys = record_events(sessions, add_accounts(sessions, 6), per_account=5)
    config = fast(receiver.url, batch=4)

    def all_sent() -> bool:
        return all(e.state == events.SENT for e in states(sessions).values())

    async with make_client() as one, make_client() as two:
        results = await asyncio.gather(
            deliver_until(sessions, one, config, all_sent, worker="one"),
            deliver_until(sessions, two, config, all_sent, worker="two"),
        )
    assert_in_order_once(receiver, keys)
    assert all(n == 1 for n in receiver.seen.accepted.values())
    assert sum(r.sent for reports in results for r in reports) == len(keys)


@pytest.mark.postgres
def test_claims_take_one_head_per_account_and_skip_what_another_sender_holds(any_db: Database) -> None:
    sessions = any_db.sessions
    accounts = add_accounts(sessions, 6)
    record_events(sessions, accounts, per_account=2)
    config = fast("http://127.0.0.1:9/unused", batch=4)
    now = dt.datetime.now(UTC)
    first = claim(sessions, "one", now, config)
    second = claim(sessions, "two", now, config)
    assert len(first) == 4 and len(second) == 2  # the heads of the six accounts, none twice
    heads = {doc_account(c.body) for c in first + second}
    assert len(heads) == 6 and all(doc_seq(c.body) == 1 for c in first + second)
    assert claim(sessions, "three", now, config) == []  # every account has its head in flight
    later = now + dt.timedelta(seconds=config.lease_s + 1)
    assert len(claim(sessions, "three", later, config)) == 4  # expired leases are taken over


@pytest.mark.postgres
def test_postgres_claim_skips_rows_locked_by_another_transaction(pg_db: Database) -> None:
    sessions = pg_db.sessions
    accounts = add_accounts(sessions, 2)
    record_events(sessions, accounts, per_account=1)
    config = fast("http://127.0.0.1:9/unused")
    with sessions.begin() as other:  # another sender in the middle of its claim
        locked = other.scalars(select(OutboxEvent).order_by(OutboxEvent.id).limit(1).with_for_update()).one()
        got = claim(sessions, "two", dt.datetime.now(UTC), config)  # does not wait for `other`
        assert [doc_account(c.body) for c in got] != [] and all(c.id != locked.id for c in got)


def doc_account(body: bytes) -> str:
    return str(json.loads(body)["account"])


def doc_seq(body: bytes) -> int:
    return int(json.loads(body)["seq"])


async def test_run_loop_delivers_until_stopped(db: Database, receiver: Receiver) -> None:
    sessions = db.sessions
    accounts = add_accounts(sessions, 2)
    keys = record_events(sessions, accounts, per_account=2)
    stop = asyncio.Event()
    task = asyncio.create_task(run(sessions, fast(receiver.url), stop, worker="loop"))
    await asyncio.to_thread(receiver.wait_for, lambda seen: len(seen.accepted) == len(keys))
    # a fact recorded while the loop runs goes out too, without a restart
    with sessions.begin() as s:
        events.record(s, events.OPT_OUT, accounts[0], {}, dt.datetime.now(UTC), key="late")
    await asyncio.to_thread(receiver.wait_for, lambda seen: "late" in seen.accepted)
    stop.set()
    await task
    assert_in_order_once(receiver, [*keys, "late"])


async def test_a_billing_that_never_answers_is_retried_after_the_request_deadline(
    db: Database, receiver: Receiver,
) -> None:
    sessions = db.sessions
    keys = record_events(sessions, add_accounts(sessions, 1), per_account=1)
    receiver.hold_next = True  # takes the request, answers only when released
    async with make_client() as client:
        report = await deliver_once(sessions, client, fast(receiver.url, timeout_s=0.5), worker="w")
    receiver.release.set()
    assert report.retrying == 1
    stored = states(sessions)[keys[0]]
    assert stored.state == events.RETRYING and "no answer within 0.5 s" in stored.last_error
    assert stored.claimed_by is None  # the lease is given back with the result


def test_config_refuses_a_lease_shorter_than_a_round() -> None:
    with pytest.raises(ValueError, match="lease_s"):
        PushConfig(url="http://billing/", secret=SECRET, timeout_s=10, batch=32, concurrency=8, lease_s=50)
    with pytest.raises(ValueError, match="URL and a secret"):
        PushConfig(url="", secret=SECRET)
    assert PushConfig(url="http://billing/", secret=SECRET).lease_s == 120


async def test_billing_can_ask_for_a_longer_pause(db: Database, receiver: Receiver) -> None:
    sessions = db.sessions
    keys = record_events(sessions, add_accounts(sessions, 1), per_account=1)
    receiver.fail_next, receiver.retry_after = 1, "3000"  # 503 with Retry-After: 3000
    before = dt.datetime.now(UTC).replace(tzinfo=None)
    async with make_client() as client:
        report = await deliver_once(sessions, client, fast(receiver.url, backoff_max_s=3600.0), worker="w")
    assert report.retrying == 1
    stored = states(sessions)[keys[0]]
    assert "HTTP 503" in stored.last_error
    assert stored.next_try_at >= before + dt.timedelta(seconds=3000)  # not our 0.01 s back-off
