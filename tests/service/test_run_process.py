"""`ivr run` as a user runs it: a separate process on the real clock, the built-in simulator as the
telephone network, a billing file imported through the CLI while it runs. No hand-driven ladder
or dial ticks anywhere: whatever the service does, it does by itself."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from ivr.db.models import Account, CallAttempt, Outcome
from tests.service.harness import Service, accounts_csv

N = 10
LINES = 3
SIM = ["--sim-speed", "4", "--sim-lines", str(LINES), "--sim-rates", "answer=1",
       "--sim-personas", "promise=1,paid=1,reason=1"]
FIRST_CALL_WITHIN = 15.0  # seconds from the end of the import to the first Originate (the bound)
IN_FLIGHT = ("claimed", "dialing", "answered")


def counts(db_path: Path) -> tuple[dict[str, int], dict[str, int], dict[str, int], int]:
    """Per account: Originates placed, outcomes stored; attempts still in flight (all accounts)."""
    engine = create_engine(f"sqlite:///{db_path}")
    try:
        with Session(engine) as s:
            placed = dict(s.execute(
                select(Account.external_id, func.count(CallAttempt.id)).join(CallAttempt, CallAttempt.account_id == Account.id)
                .where(CallAttempt.originated_at.is_not(None)).group_by(Account.external_id)).all())
            outcomes = dict(s.execute(
                select(Account.external_id, func.count(Outcome.id)).join(CallAttempt, CallAttempt.account_id == Account.id)
                .join(Outcome, Outcome.attempt_id == CallAttempt.id).where(Outcome.kind.is_not(None))
                .group_by(Account.external_id)).all())
            results = dict(s.execute(select(CallAttempt.result, func.count()).group_by(CallAttempt.result)).all())
            flying = int(s.scalar(select(func.count()).select_from(CallAttempt).where(CallAttempt.state.in_(IN_FLIGHT))) or 0)
    finally:
        engine.dispose()
    return placed, outcomes, {str(k): v for k, v in results.items()}, flying


def wait_until(check, timeout: float, what: str, service: Service) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f}s:\n{service.log_tail()}")
        if service.proc is not None and service.proc.poll() is not None:
            raise AssertionError(f"ivr run exited ({service.proc.returncode}) before {what}:\n{service.log_tail()}")
        time.sleep(0.5)


def test_ivr_run_calls_at_once_says_what_it_does_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    folder = tmp_path / "robot"
    first = Service(folder, SIM).start()
    try:
        first.wait_for(r"dials the BUILT-IN SIMULATOR")  # said loudly, on the terminal
        first.wait_for(r"audio warm-up: \d+ shared phrases ready", timeout=300)
        first.wait_for(r"nothing to call: no open debt case")  # it says why it is idle
        billing = tmp_path / "accounts.csv"
        accounts_csv(billing, N)

        imported = first.ivr("import", "accounts", str(billing), "--no-progress")
        done_at = time.monotonic()
        assert imported.returncode == 0, imported.stderr
        assert f"{N} good" in imported.stdout

        originated = first.wait_for(r"originated \S+ to \+7916\*+\d+ via sim", timeout=120)[0]
        assert originated.at - done_at <= FIRST_CALL_WITHIN, (
            f"first Originate {originated.at - done_at:.1f}s after the import:\n{first.log_tail()}")

        status = first.ivr("status", "--json")
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        running = [s for s in report["services"] if s["alive"]]
        assert len(running) == 1 and running[0]["role"] == "run" and running[0]["simulator"]
        assert running[0]["loop"]["threshold_ms"] == 250  # the event-loop watchdog runs in the service
        assert [a["connected"] for a in report["ami"]] == [True]
        assert [f["answers"] for f in report["fastagi"]] == [True]
        assert [d["ok"] for d in report["dialing"]] == [True]  # the FastAGI health gate lets it dial
        assert report["cases"]["open_cases"] == N
        assert report["lines"]["sim"]["limit"] == LINES and report["lines"]["sim"]["in_use"] <= LINES
        table = first.ivr("status")
        assert "callable now" in table.stdout and "FastAGI" in table.stdout and "answers" in table.stdout

        # stop while calls are up: the fourth Originate means a line was freed and refilled
        first.wait_for(r"originated ", count=LINES + 1, timeout=180)
        assert first.stop(signal.SIGTERM) == 0, first.log_tail()
        log = first.log()
        assert "Traceback" not in log
        assert "stopping: no new calls" in log and "ivr run stopped" in log
    finally:
        first.kill()

    placed, outcomes, results, flying = counts(first.db_path)
    assert flying == 0, "SIGTERM left a call in flight"  # the calls in progress were let finish
    assert 0 < len(placed) < N, f"expected some accounts still to call after the stop: {placed}"
    assert all(n == 1 for n in placed.values()), placed
    assert set(outcomes) == set(placed)  # every finished call's outcome is stored

    second = Service(folder, SIM).start()  # the same database, a new process
    try:
        second.wait_for(r"audio warm-up")

        def everyone_has_an_outcome() -> bool:
            _placed, got, _results, in_flight = counts(second.db_path)
            return len(got) == N and in_flight == 0

        wait_until(everyone_has_an_outcome, 300, "an outcome for every account", second)
        assert second.stop(signal.SIGTERM) == 0, second.log_tail()
        assert "Traceback" not in second.log()
    finally:
        second.kill()

    placed, outcomes, results, flying = counts(second.db_path)
    assert flying == 0
    assert len(placed) == N and all(n == 1 for n in placed.values()), f"someone was called twice: {placed}"
    assert all(n == 1 for n in outcomes.values())
    assert results == {"answered": N}
