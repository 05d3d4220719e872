"""Retry timing and number order per result."""

from __future__ import annotations

import datetime as dt

import pytest

from ivr.dialer.policy import Options, Stage
from ivr.dialer.retry import (
    INTERRUPTED,
    LOST,
    NOT_SENT,
    REFUSED,
    ROBOT_FAILED,
    PhoneOption,
    pick_phone,
    plan_retry,
)

NOW = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)
OPTS = Options(retry_busy_minutes=20, retry_no_answer_minutes=120, retry_congestion_minutes=30,
               retry_failed_minutes=5, retry_machine_minutes=240, retry_hangup_minutes=60)
STAGE = Stage(code="s", position=1, retry_minutes=360)
PHONES = [PhoneOption(1, "+79160000001", 1), PhoneOption(2, "+79160000002", 2), PhoneOption(3, "+79160000003", 3)]


def plan(result: str, phones=PHONES, priority: int = 1, excluded=(), stage: Stage | None = STAGE):
    phone = next((p.number for p in phones if p.priority == priority), None)
    return plan_retry(result, now=NOW, stage=stage, options=OPTS, phones=phones, attempt_phone=phone,
                      attempt_priority=priority, excluded_numbers=excluded)


@pytest.mark.parametrize(("result", "minutes"), [
    ("busy", 20), ("no_answer", 120), ("congestion", 30), ("machine", 240), ("answered", 360),
    (LOST, 120), (REFUSED, 5), (INTERRUPTED, 5), (ROBOT_FAILED, 5),
])
def test_same_number_after_the_result_interval(result: str, minutes: int) -> None:
    decision = plan(result, priority=2)
    assert decision.next_attempt_at == NOW + dt.timedelta(minutes=minutes)
    assert decision.next_phone_priority == 2
    assert not decision.no_usable_phone


def test_answered_without_a_stage_uses_the_hangup_interval() -> None:
    assert plan("answered", stage=None).next_attempt_at == NOW + dt.timedelta(minutes=60)


def test_failed_moves_to_the_next_number_and_wraps() -> None:
    assert plan("failed", priority=1).next_phone_priority == 2
    assert plan("failed", priority=1).next_attempt_at == NOW + dt.timedelta(minutes=5)
    assert plan("failed", priority=3).next_phone_priority == 1


def test_wrong_party_skips_that_number_even_before_it_is_marked() -> None:
    decision = plan("wrong_party", priority=2)
    assert decision.next_phone_priority == 3
    only = [PhoneOption(1, "+79160000001", 1)]
    decision = plan("wrong_party", phones=only, priority=1)
    assert decision.no_usable_phone
    assert decision.next_attempt_at >= NOW + dt.timedelta(days=1)


def test_invalid_marked_and_opted_out_numbers_are_skipped() -> None:
    phones = [PhoneOption(1, "+79160000001", 1), PhoneOption(2, "+79160000002", 2, "invalid"),
              PhoneOption(3, "+79160000003", 3, "wrong_party"), PhoneOption(4, "+79160000004", 4)]
    assert plan("failed", phones=phones, priority=1).next_phone_priority == 4
    assert plan("failed", phones=phones, priority=1, excluded={"+79160000004"}).next_phone_priority == 1
    assert pick_phone(phones, 2) == phones[3]
    assert pick_phone(phones, 5) == phones[0]  # wraps
    assert pick_phone(phones, 1, {"+79160000001", "+79160000004"}) is None


def test_no_usable_phone_is_reported() -> None:
    dead = [PhoneOption(1, "+79160000001", 1, "invalid")]
    decision = plan("busy", phones=dead)
    assert decision.no_usable_phone
    assert decision.next_phone_priority == 1


def test_what_counts_towards_max_attempts() -> None:
    for result in ("answered", "busy", "no_answer", "congestion", "failed", "machine", "wrong_party", LOST):
        assert plan(result).counts_in_stage, result
    assert not plan(REFUSED).counts_in_stage
    assert not plan(NOT_SENT).counts_in_stage
