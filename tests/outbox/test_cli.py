"""`ivr outbox list|resend|send` and the two settings, as an admin runs them."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from ivr.cli import main
from ivr.config import ConfigError, load_settings
from ivr.db.models import Account, OutboxEvent
from ivr.outbox import events
from ivr.wiring import Database
from tests.outbox.receiver import Receiver

SECRET = "Zq8v-3kLm_9TpX2wR7yB4nHs6dJf1cGe"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET)
    yield r
    r.close()


@pytest.fixture
def env(db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("IVR_DATABASE_URL", str(db.engine.url))
    monkeypatch.delenv("IVR_BILLING_PUSH_URL", raising=False)
    monkeypatch.delenv("IVR_BILLING_PUSH_SECRET", raising=False)
    with db.sessions.begin() as s:
        account = Account(external_id="CLI-1", holder_name="Holder")
        s.add(account)
        s.flush()
        for i in range(3):
            events.record(s, events.OPT_OUT, account.id, {"n": i}, dt.datetime.now(dt.UTC), key=f"cli:{i}")
    return tmp_path / "no.env"


def test_list_send_and_resend(env: Path, db: Database, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--env-file", str(env), "outbox", "send"]) == 2  # no URL: nowhere to send
    assert "IVR_BILLING_PUSH_URL" in capsys.readouterr().err
    monkeypatch.setenv("IVR_BILLING_PUSH_URL", receiver.url)
    monkeypatch.setenv("IVR_BILLING_PUSH_SECRET", SECRET)
    assert main(["--env-file", str(env), "outbox", "send"]) == 0
    assert "sent 3" in capsys.readouterr().out
    assert sorted(receiver.seen.accepted) == ["cli:0", "cli:1", "cli:2"]
    assert main(["--env-file", str(env), "outbox", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["counts"] == {"sent": 3} and [e["seq"] for e in listed["events"]] == [3, 2, 1]
    first = listed["events"][-1]["id"]
    assert main(["--env-file", str(env), "outbox", "resend", str(first)]) == 0
    assert main(["--env-file", str(env), "outbox", "list", "--state", "pending"]) == 0
    text = capsys.readouterr().out
    assert "pending 1" in text and "CLI-1" in text and "opt_out" in text
    assert main(["--env-file", str(env), "outbox", "send"]) == 0
    assert receiver.seen.accepted["cli:0"] == 2  # the resend carries the same key
    assert main(["--env-file", str(env), "outbox", "resend", "999999"]) == 1


def test_send_reports_what_is_left(env: Path, db: Database, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IVR_BILLING_PUSH_URL", receiver.url)
    monkeypatch.setenv("IVR_BILLING_PUSH_SECRET", SECRET)
    receiver.fail_next = 1
    assert main(["--env-file", str(env), "outbox", "send"]) == 1  # the first event waits for its retry
    assert "undelivered now 3" in capsys.readouterr().out
    with db.sessions() as s:
        head = s.scalars(select(OutboxEvent).where(OutboxEvent.seq == 1)).one()
        assert (head.state, head.attempts) == ("retrying", 1) and "HTTP 500" in head.last_error
    with db.sessions.begin() as s:  # the back-off has passed
        s.execute(update(OutboxEvent).values(next_try_at=dt.datetime(2000, 1, 1)))
    assert main(["--env-file", str(env), "outbox", "send"]) == 0


def test_settings(tmp_path: Path) -> None:
    base = {"IVR_DATABASE_URL": "sqlite:///x.sqlite3"}
    off = load_settings(None, base)
    assert off.billing_push_url == ""
    on = load_settings(None, {**base, "IVR_BILLING_PUSH_URL": "https://billing.example/ivr", "IVR_BILLING_PUSH_SECRET": SECRET})
    assert (on.billing_push_url, on.billing_push_secret) == ("https://billing.example/ivr", SECRET)
    with pytest.raises(ConfigError, match="IVR_BILLING_PUSH_SECRET"):
        load_settings(None, {**base, "IVR_BILLING_PUSH_URL": "https://billing.example/ivr"})
    with pytest.raises(ConfigError, match="IVR_BILLING_PUSH_SECRET"):
        load_settings(None, {**base, "IVR_BILLING_PUSH_URL": "https://b.example/", "IVR_BILLING_PUSH_SECRET": "secret"})
    with pytest.raises(ConfigError, match="IVR_BILLING_PUSH_URL"):
        load_settings(None, {**base, "IVR_BILLING_PUSH_URL": "billing.example/ivr", "IVR_BILLING_PUSH_SECRET": SECRET})


def test_a_killed_sender_leaves_the_event_to_be_resent_with_the_same_key(
    env: Path, db: Database, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real crash: `ivr outbox send` is killed (SIGKILL) after billing took the first event and
    before the answer came back; the event is not marked sent, and after the lease it goes again
    with the same Idempotency-Key."""
    monkeypatch.setenv("IVR_BILLING_PUSH_URL", receiver.url)
    monkeypatch.setenv("IVR_BILLING_PUSH_SECRET", SECRET)
    receiver.hold_next = True
    proc = subprocess.Popen([sys.executable, "-m", "ivr", "--env-file", str(env), "outbox", "send"],
                            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        receiver.wait_for(lambda seen: seen.held == ["cli:0"])
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    receiver.release.set()
    with db.sessions() as s:
        head = s.scalars(select(OutboxEvent).where(OutboxEvent.seq == 1)).one()
        assert head.state == "pending" and head.claimed_by is not None and head.sent_at is None
    with db.sessions.begin() as s:  # the dead sender's lease runs out
        s.execute(update(OutboxEvent).where(OutboxEvent.id == head.id).values(claimed_until=dt.datetime(2000, 1, 1)))
    assert main(["--env-file", str(env), "outbox", "send"]) == 0
    assert receiver.seen.accepted == {"cli:0": 2, "cli:1": 1, "cli:2": 1}
    assert [doc["seq"] for doc in receiver.seen.first] == [1, 2, 3]
