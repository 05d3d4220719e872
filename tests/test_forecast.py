"""The forecast model (pure) and its database side on a small seeded history."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from ivr.cli import main
from ivr.config import load_settings
from ivr.db.models import CallAttempt, CallbackTask
from ivr.dialer.policy import load_rules
from ivr.forecast import PRIOR, PlanCase, Rates, Retry, forecast
from ivr.forecast_db import make_forecast, measure, plan_today
from ivr.wiring import Database, open_database
from tests.dialer.conftest import add_case

UTC = dt.UTC
OPEN = dt.datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
CLOSE = OPEN + dt.timedelta(hours=11)
RETRY = Retry({"busy": 20, "no_answer": 120, "congestion": 30, "failed": 5})
ALL_ANSWER = Rates(shares={"answered": 1.0}, line_seconds={"answered": 60.0}, callbacks_per_answered={"billing": 0.1})


def test_work_over_lines_sets_the_finish_when_everyone_answers() -> None:
    plan = [PlanCase(OPEN, CLOSE, 3)] * 600
    fc = forecast(plan, ALL_ANSWER, RETRY, 10, OPEN, what_if=[5, 20])
    # 600 calls x 60 s over 10 lines = 3600 s
    assert fc.hours_from_open == pytest.approx(1.0)
    assert [r.lines for r in fc.by_lines] == [5, 10, 20]
    assert [r.hours_from_open for r in fc.by_lines] == pytest.approx([2.0, 1.0, 0.5])
    assert fc.answered == 600 and fc.left_over == 0
    assert fc.callbacks_today == {"billing": 60.0}


def test_retries_follow_the_retry_rules_and_stop_at_the_attempts_left() -> None:
    rates = Rates(shares={"answered": 0.5, "no_answer": 0.5}, line_seconds={"answered": 60.0, "no_answer": 30.0},
                  callbacks_per_answered={})
    fc = forecast([PlanCase(OPEN, CLOSE, 2)] * 100, rates, RETRY, 1000, OPEN)
    # two waves: the second one two hours after the first; half of the second wave is left unreached
    assert fc.attempts == pytest.approx(150)
    assert fc.answered == pytest.approx(75)
    assert 2.0 < fc.hours_from_open < 2.1


def test_work_that_does_not_fit_the_window_is_left_over() -> None:
    fc = forecast([PlanCase(OPEN, OPEN + dt.timedelta(hours=1), 1)] * 200, ALL_ANSWER, RETRY, 1, OPEN)
    assert fc.answered == pytest.approx(60)  # one line, 60 s a call, one hour
    assert fc.left_over == pytest.approx(140)


def test_no_history_uses_the_prior_and_says_so(any_db: Database) -> None:
    now = OPEN - dt.timedelta(minutes=30)
    with any_db.sessions.begin() as session:
        add_case(session, opened_on=dt.date(2026, 3, 1), stage_code=None)
    with any_db.sessions() as session:
        assert measure(session, now) is PRIOR
        fc = make_forecast(session, load_rules(session), now, 10)
    assert fc.prior and fc.cases_today == 1 and fc.opens == OPEN
    assert fc.to_dict()["prior"] is True


def test_measure_reads_shares_line_time_and_callbacks(any_db: Database) -> None:
    now = OPEN + dt.timedelta(days=1)
    with any_db.sessions.begin() as session:
        cases = [add_case(session, phones=[f"+7916000{i:04d}"]) for i in range(20)]
        for i in range(40):
            case = cases[i % 20]
            result = "answered" if i < 10 or 20 <= i < 25 else "busy"
            start = OPEN.replace(tzinfo=None) + dt.timedelta(minutes=i)
            row = CallAttempt(debt_case_id=case.id, account_id=case.account_id, phone="+79160000000",
                              action_id=f"a{i}", state="done", result=result, created_at=start,
                              ended_at=start + dt.timedelta(seconds=90 if result == "answered" else 10))
            session.add(row)
            session.flush()
            # first answered calls (i < 10): every other one raises a billing task; second answered
            # calls (20 <= i < 25): one in five raises a quality task
            if (i < 10 and i % 2 == 0) or i == 20:
                session.add(CallbackTask(account_id=case.account_id, debt_case_id=case.id, attempt_id=row.id,
                                         queue="billing" if i < 10 else "quality",
                                         created_at=start + dt.timedelta(seconds=30)))
    with any_db.sessions() as session:
        rates = measure(session, now)
        plan = plan_today(session, load_rules(session), now)
    assert not rates.prior and rates.attempts == 40
    assert rates.shares == {"answered": 15 / 40, "busy": 25 / 40}
    assert rates.line_seconds["answered"] == pytest.approx(90) and rates.line_seconds["busy"] == pytest.approx(10)
    # cases 0-9 answer at i (first), 0-4 again at i + 20 (repeat); cases 10-19 are busy
    assert rates.callbacks_per_answered == {"billing": 0.5}
    assert rates.callbacks_per_repeat == {"quality": 0.2}
    # in today's plan (cases answered twice this week are held by the contact limits), cases 5-9
    # are marked as answered before
    assert sum(p.answered_before for p in plan) == 5 and len(plan) - 5 == 10


def test_callbacks_weigh_first_and_repeat_answers_by_the_plan() -> None:
    rates = Rates(shares={"answered": 1.0}, line_seconds={"answered": 60.0},
                  callbacks_per_answered={"billing": 0.4}, callbacks_per_repeat={"quality": 0.1})
    plan = [PlanCase(OPEN, CLOSE, 1)] * 30 + [PlanCase(OPEN, CLOSE, 1, answered_before=True)] * 10
    fc = forecast(plan, rates, RETRY, 100, OPEN, cases_tomorrow=40, attempts_tomorrow=1, repeat_tomorrow=0.5)
    assert fc.answered == pytest.approx(40)
    assert fc.callbacks_today == {"billing": 12.0, "quality": 1.0}  # 30 x 0.4, 10 x 0.1
    assert fc.callbacks_tomorrow == {"billing": 8.0, "quality": 2.0}
    # no repeat answer measured yet: the first-answer figures stand for both
    once = Rates(rates.shares, rates.line_seconds, {"billing": 0.4})
    assert forecast(plan, once, RETRY, 100, OPEN).callbacks_today == {"billing": 16.0}


def test_lines_must_be_positive() -> None:
    with pytest.raises(ValueError):
        forecast([], PRIOR, RETRY, 0, OPEN)


@pytest.fixture
def cli_args(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`ivr forecast` on a fresh database file named by IVR_DATABASE_URL (no Asterisk servers)."""
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{tmp_path / 'fc.sqlite3'}")
    env_file = tmp_path / "none.env"
    database = open_database(load_settings(env_file))
    with database.sessions.begin() as session:
        add_case(session, opened_on=dt.date.today() - dt.timedelta(days=2), stage_code=None,
                 block_date=dt.date.today() + dt.timedelta(days=20))
    database.engine.dispose()
    return ["--env-file", str(env_file), "forecast"]


def test_cli_says_the_figures_are_a_prior_and_tabulates_the_lines(
        cli_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*cli_args, "--lines", "3"]) == 0
    out = capsys.readouterr().out
    assert "PRIOR figures" in out
    assert "<- current" in out and "callbacks expected tomorrow" in out
    assert main([*cli_args, "--lines", "3", "--lines", "40", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["prior"] is True
    assert [row["lines"] for row in data["by_lines"]] == [3, 10, 40]  # 10: the simulator's lines


def test_cli_refuses_zero_lines(cli_args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*cli_args, "--lines", "0"]) == 2
    assert "at least 1" in capsys.readouterr().out
