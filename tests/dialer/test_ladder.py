"""The escalation ladder, promises and lifecycle: pure decisions."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from ivr.dialer.ladder import CaseView, decide, next_stage_start, stage_for
from ivr.dialer.policy import Stage
from tests.dialer.conftest import make_rules

MSK = ZoneInfo("Europe/Moscow")
OPENED = dt.date(2026, 3, 1)
BLOCK = dt.date(2026, 3, 20)
STAGES = (
    Stage("reminder", 1, anchor="due", start_day=1, max_attempts=3, on_end="next"),
    Stage("firm", 2, anchor="due", start_day=7, max_attempts=4, on_end="next"),
    Stage("final_warning", 3, anchor="block", start_day=-2, max_attempts=4, on_end="next"),
    Stage("blocked", 4, anchor="block", start_day=0, max_attempts=3, on_enter="block", on_end="retention"),
)
RULES = make_rules(stages=STAGES, retention_after_days=90, overdue_after_days=180)


def view(**kw) -> CaseView:
    base = CaseView(state="active", opened_on=OPENED, amount_owed=Decimal("1500"), block_date=BLOCK,
                    stage_code="reminder", attempts_in_stage=0)
    return replace(base, **kw)


def midnight_utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=MSK).astimezone(dt.UTC).replace(tzinfo=None)


@pytest.mark.parametrize(("today", "code"), [
    (dt.date(2026, 3, 1), None), (dt.date(2026, 3, 2), "reminder"), (dt.date(2026, 3, 7), "reminder"),
    (dt.date(2026, 3, 8), "firm"), (dt.date(2026, 3, 18), "final_warning"), (dt.date(2026, 3, 20), "blocked"),
])
def test_stage_for_due_and_block_anchors(today: dt.date, code: str | None) -> None:
    stage = stage_for(OPENED, BLOCK, today, STAGES)
    assert (stage.code if stage else None) == code


def test_stage_for_without_a_block_date_skips_block_anchored_stages() -> None:
    assert stage_for(OPENED, None, dt.date(2026, 4, 1), STAGES).code == "firm"  # type: ignore[union-attr]


def test_stage_for_takes_the_last_started_stage_by_position() -> None:
    early_block = dt.date(2026, 3, 5)
    assert stage_for(OPENED, early_block, dt.date(2026, 3, 3), STAGES).code == "final_warning"  # type: ignore[union-attr]
    assert stage_for(OPENED, early_block, dt.date(2026, 3, 6), STAGES).code == "blocked"  # type: ignore[union-attr]
    assert next_stage_start(STAGES[0], OPENED, BLOCK, dt.date(2026, 3, 3), STAGES) == dt.date(2026, 3, 8)


def test_before_the_first_stage_the_case_waits_for_its_start() -> None:
    d = decide(view(stage_code=None, opened_on=dt.date(2026, 3, 1)), RULES, dt.date(2026, 3, 1), MSK)
    assert d.stage_code is None
    assert d.next_attempt_at == midnight_utc(dt.date(2026, 3, 2))


def test_entering_a_stage_resets_counters() -> None:
    d = decide(view(stage_code="reminder", attempts_in_stage=2), RULES, dt.date(2026, 3, 8), MSK)
    assert (d.stage_code, d.attempts_in_stage, d.next_phone_priority, d.entered_stage) == ("firm", 0, 1, True)
    assert not d.add_to_block_list
    assert d.state == "active"


def test_on_enter_block_and_jumping_over_a_block_stage() -> None:
    d = decide(view(stage_code="final_warning"), RULES, BLOCK, MSK)
    assert d.stage_code == "blocked" and d.add_to_block_list and d.state == "active"
    # a blocking stage jumped over on the way forward still blocks
    rules = make_rules(stages=(
        *STAGES[:2], replace(STAGES[2], on_enter="block"), replace(STAGES[3], on_enter=None),
        Stage("late", 5, anchor="block", start_day=3),
    ))
    d = decide(view(stage_code="reminder"), rules, dt.date(2026, 3, 25), MSK)
    assert d.stage_code == "late" and d.add_to_block_list
    # staying in the blocking stage does not block again
    assert not decide(view(stage_code="blocked"), RULES, BLOCK, MSK).add_to_block_list


def test_exhausted_next_waits_for_the_next_stage() -> None:
    d = decide(view(stage_code="reminder", attempts_in_stage=3), RULES, dt.date(2026, 3, 4), MSK)
    assert d.state == "active" and d.stage_code == "reminder"
    assert d.next_attempt_at == midnight_utc(dt.date(2026, 3, 8))
    # a retry already planned later than that is kept
    later = midnight_utc(dt.date(2026, 3, 9))
    assert decide(view(attempts_in_stage=3, next_attempt_at=later), RULES, dt.date(2026, 3, 4), MSK).next_attempt_at == later


def test_exhausted_next_without_a_later_stage_waits_for_retention() -> None:
    rules = make_rules(stages=STAGES[:1], retention_after_days=90)
    d = decide(view(attempts_in_stage=3), rules, dt.date(2026, 3, 4), MSK)
    assert d.next_attempt_at == midnight_utc(OPENED + dt.timedelta(days=90))


@pytest.mark.parametrize(("on_end", "state", "block", "task", "closed"), [
    ("block", "blocked", True, False, False),
    ("retention", "retention", False, True, False),
    ("stop", "closed", False, False, True),
])
def test_exhausted_end_actions(on_end: str, state: str, block: bool, task: bool, closed: bool) -> None:
    rules = make_rules(stages=(replace(STAGES[0], on_end=on_end),))
    d = decide(view(attempts_in_stage=3), rules, dt.date(2026, 3, 4), MSK)
    assert (d.state, d.add_to_block_list, d.retention_task, d.closed) == (state, block, task, closed)
    assert not decide(view(attempts_in_stage=2), rules, dt.date(2026, 3, 4), MSK).changed


@pytest.mark.parametrize(("age", "state"), [(89, "active"), (90, "retention"), (179, "retention"), (180, "overdue")])
def test_lifecycle_boundaries(age: int, state: str) -> None:
    today = OPENED + dt.timedelta(days=age)
    d = decide(view(stage_code="blocked"), RULES, today, MSK)
    assert d.state == state
    assert d.retention_task == (state == "retention")


def test_lifecycle_applies_to_promised_and_blocked_cases() -> None:
    day90 = OPENED + dt.timedelta(days=90)
    assert decide(view(state="promised", pending_promise_date=day90), RULES, day90, MSK).state == "retention"
    assert decide(view(state="blocked"), RULES, day90, MSK).state == "blocked"
    assert decide(view(state="blocked"), RULES, OPENED + dt.timedelta(days=180), MSK).state == "overdue"
    assert decide(view(state="retention"), RULES, OPENED + dt.timedelta(days=180), MSK).state == "overdue"


def test_promise_pauses_until_the_date_has_passed() -> None:
    promised = view(state="promised", pending_promise_date=dt.date(2026, 3, 10))
    assert not decide(promised, RULES, dt.date(2026, 3, 10), MSK).changed
    broken = decide(promised, RULES, dt.date(2026, 3, 11), MSK)
    assert (broken.state, broken.promise_status, broken.promise_broken, broken.next_attempt_at) == ("active", "broken", True, None)
    assert broken.stage_code == "firm"  # and the ladder carries on from today's stage


def test_promise_kept_when_paid() -> None:
    d = decide(view(state="promised", pending_promise_date=dt.date(2026, 3, 10), amount_owed=Decimal("0")),
               RULES, dt.date(2026, 3, 11), MSK)
    assert (d.state, d.promise_status, d.closed) == ("paid", "kept", True)


def test_paid_and_final_states() -> None:
    assert decide(view(amount_owed=Decimal("-5")), RULES, dt.date(2026, 3, 4), MSK).state == "paid"
    for state in ("paid", "closed", "overdue"):
        assert not decide(view(state=state, amount_owed=Decimal("0")), RULES, dt.date(2026, 9, 4), MSK).changed
