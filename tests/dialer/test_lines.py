"""Line leases: at most `limit` slots per server across dialers, freed by the attempt's end,
lapsing when their dialer stops renewing them."""

from __future__ import annotations

import datetime as dt

from ivr.dialer import lines
from ivr.wiring import Database

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
TTL = dt.timedelta(seconds=30)


def take(db: Database, action_id: str, dialer: str, now: dt.datetime = NOW, limit: int = 2) -> int | None:
    with db.sessions.begin() as s:
        return lines.acquire(s, "ast1", limit, action_id, dialer, now, TTL)


def test_a_server_never_has_more_leases_than_lines(any_db: Database) -> None:
    assert take(any_db, "a1", "A") == 0
    assert take(any_db, "b1", "B") == 1
    assert take(any_db, "a2", "A") is None  # full, whoever asks
    with any_db.sessions() as s:
        assert lines.in_use(s, NOW) == {"ast1": 2}
    with any_db.sessions.begin() as s:
        assert lines.release(s, "b1")
    assert take(any_db, "a2", "A") == 1


def test_an_unrenewed_lease_lapses_and_a_renewed_one_does_not(any_db: Database) -> None:
    take(any_db, "a1", "A")
    take(any_db, "b1", "B")
    later = NOW + dt.timedelta(seconds=20)
    with any_db.sessions.begin() as s:
        assert lines.renew(s, ["a1"], later, TTL) == 1
    after = NOW + dt.timedelta(seconds=31)  # b1's dialer is gone
    with any_db.sessions() as s:
        assert lines.lease_expired(s, "b1", after) and not lines.lease_expired(s, "a1", after)
    assert take(any_db, "c1", "C", after) == 1  # b1's slot
    assert take(any_db, "c2", "C", after) is None


def test_lowering_the_limit_drains_the_upper_slots(any_db: Database) -> None:
    take(any_db, "a1", "A", limit=3)
    take(any_db, "a2", "A", limit=3)
    take(any_db, "a3", "A", limit=3)
    with any_db.sessions.begin() as s:
        lines.release(s, "a3")
    assert take(any_db, "a4", "A", limit=2) is None  # slot 2 is free but above the new limit
