"""`ivr run` killed with SIGKILL while calls are up, then started again on the same database: a
separate process on the real clock (tests/service harness), the built-in simulator as the
network (it dies with the process, as the calls would with a real robot's FastAGI). The dead
process's attempts are settled once its line leases lapse (`interrupted`: not contacts, retried
soon), nobody stays locked, and the new process dials everyone the first did not reach."""

from __future__ import annotations

import signal
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from ivr.db.models import Account, CallAttempt
from ivr.dialer.retry import FAULT_RESULTS
from tests.faults.harness import SERVED
from tests.service.harness import Service, accounts_csv
from tests.service.test_run_process import wait_until

N = 8
LINES = 3
SIM = ["--sim-speed", "4", "--sim-lines", str(LINES), "--sim-rates", "answer=1",
       "--sim-personas", "promise=1,paid=1,reason=1"]
IN_FLIGHT = ("claimed", "dialing", "answered")


def rows(db_path: Path) -> list[CallAttempt]:
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with Session(engine) as s:
            return list(s.scalars(select(CallAttempt).order_by(CallAttempt.id)))
    finally:
        engine.dispose()


def locked(db_path: Path) -> list[int]:
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with Session(engine) as s:
            return list(s.scalars(select(Account.id).where(Account.dial_lock_owner.is_not(None))))
    finally:
        engine.dispose()


def test_sigkill_with_calls_up_then_restart_settles_everything(tmp_path: Path) -> None:
    folder = tmp_path / "robot"
    first = Service(folder, SIM).start()
    try:
        first.wait_for(r"audio warm-up: \d+ shared phrases ready", timeout=300)
        billing = tmp_path / "accounts.csv"
        numbers = accounts_csv(billing, N)
        imported = first.ivr("import", "accounts", str(billing), "--no-progress")
        assert imported.returncode == 0, imported.stderr
        first.wait_for(r"originated ", count=LINES, timeout=180)
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    finally:
        first.kill()

    left = {a.action_id for a in rows(first.db_path) if a.state in IN_FLIGHT}
    assert left, "the kill left no call in flight: nothing was tested"

    second = Service(folder, SIM).start()  # the same database and settings, a new process
    try:
        def settled() -> bool:
            attempts = rows(second.db_path)
            if any(a.state in IN_FLIGHT for a in attempts):
                return False
            finished = {a.phone for a in attempts if a.result is not None}
            return finished >= set(numbers) and not locked(second.db_path)

        wait_until(settled, 300, "every account called and nothing in flight", second)
        assert second.stop(signal.SIGTERM) == 0, second.log_tail()
        assert "Traceback" not in second.log()
    finally:
        second.kill()

    attempts = rows(second.db_path)
    by_id = {a.action_id: a for a in attempts}
    for action_id in left:  # settled with a definite result: the robot died with these calls
        assert by_id[action_id].result in {"interrupted", "not_sent"}, (action_id, by_id[action_id].result)
    assert {a.result for a in attempts} <= SERVED | FAULT_RESULTS
    # nobody was called while an earlier attempt of theirs was still in flight
    for number in numbers:
        mine = [a for a in attempts if a.phone == number]
        for before, after in zip(mine, mine[1:], strict=False):
            assert before.ended_at is not None and after.created_at >= before.ended_at, number
    assert any(a.dialer_id != by_id[next(iter(left))].dialer_id for a in attempts)  # the new process dialled
