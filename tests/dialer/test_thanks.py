"""Issue 16, pure rules: before-due stages picked by the offset from the due date, thank-you
eligibility, planning and settling. Time is always an argument."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from ivr.dialer.ladder import CaseView, decide, stage_for
from ivr.dialer.policy import Stage
from ivr.dialer.thanks import (
    DONE,
    EXPIRED,
    OFF,
    PENDING,
    PaidCaseFacts,
    ThanksSettings,
    days_to_due,
    is_before_due,
    plan_thanks,
    settle_thanks,
    stage_offset,
    thanks_trigger,
)
from tests.dialer.conftest import make_rules

MSK = ZoneInfo("Europe/Moscow")
DUE = dt.date(2026, 3, 25)
BEFORE = Stage("before_due", 0, anchor="due", start_day=-3, prompt="before_due", max_attempts=2, on_end="next")
REMINDER = Stage("reminder", 1, anchor="due", start_day=1, prompt="debt_soft", max_attempts=3, on_end="next")
FIRM = Stage("firm", 2, anchor="due", start_day=7, prompt="debt_firm", max_attempts=3, on_end="next")
WITH_BEFORE = (BEFORE, REMINDER, FIRM)
WITHOUT = (REMINDER, FIRM)  # the shipped ladder: before_due is inactive, so not in the rules


def midnight_utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=MSK).astimezone(dt.UTC).replace(tzinfo=None)


@pytest.mark.parametrize(("today", "with_before", "without"), [
    (DUE - dt.timedelta(days=4), None, None),
    (DUE - dt.timedelta(days=3), "before_due", None),
    (DUE - dt.timedelta(days=1), "before_due", None),
    (DUE, "before_due", None),
    (DUE + dt.timedelta(days=1), "reminder", "reminder"),
    (DUE + dt.timedelta(days=7), "firm", "firm"),
])
def test_stage_by_offset_from_the_due_date(today: dt.date, with_before: str | None, without: str | None) -> None:
    got = stage_for(DUE, None, today, WITH_BEFORE)
    assert (got.code if got else None) == with_before
    got = stage_for(DUE, None, today, WITHOUT)
    assert (got.code if got else None) == without


def test_offset_helpers() -> None:
    assert is_before_due(BEFORE) and not is_before_due(REMINDER)
    assert not is_before_due(Stage("final", 3, anchor="block", start_day=-2))  # before the BLOCK date
    assert stage_offset(DUE, DUE - dt.timedelta(days=3)) == -3
    assert stage_offset(DUE, DUE + dt.timedelta(days=2)) == 2
    assert days_to_due(DUE, DUE - dt.timedelta(days=3)) == 3 and days_to_due(None, DUE) is None


def view(**kw: object) -> CaseView:
    base: dict[str, object] = {"state": "active", "opened_on": DUE, "amount_owed": Decimal("1800"),
                               "stage_code": None}
    base.update(kw)
    return CaseView(**base)  # type: ignore[arg-type]


def test_a_case_opened_before_its_due_date_waits_for_the_before_due_stage() -> None:
    rules = make_rules(stages=WITH_BEFORE)
    early = decide(view(), rules, DUE - dt.timedelta(days=5), MSK)
    assert early.stage_code is None and early.next_attempt_at == midnight_utc(DUE - dt.timedelta(days=3))
    entered = decide(view(), rules, DUE - dt.timedelta(days=3), MSK)
    assert entered.stage_code == "before_due" and entered.entered_stage and not entered.add_to_block_list
    # the two before-due tries used up: nothing until the first debt stage, the day after the due date
    spent = decide(view(stage_code="before_due", attempts_in_stage=2), rules, DUE - dt.timedelta(days=2), MSK)
    assert spent.next_attempt_at == midnight_utc(DUE + dt.timedelta(days=1))
    moved = decide(view(stage_code="before_due", attempts_in_stage=1), rules, DUE + dt.timedelta(days=1), MSK)
    assert moved.stage_code == "reminder" and moved.attempts_in_stage == 0


def test_without_the_before_due_stage_nothing_calls_before_the_due_date() -> None:
    d = decide(view(), make_rules(stages=WITHOUT), DUE - dt.timedelta(days=3), MSK)
    assert d.stage_code is None and d.next_attempt_at == midnight_utc(DUE + dt.timedelta(days=1))


# -- thank-you eligibility -----------------------------------------------------------------------

PAID_ON = dt.date(2026, 3, 28)


def facts(**kw: object) -> PaidCaseFacts:
    base: dict[str, object] = {"paid_off": True, "paid_on": PAID_ON}
    base.update(kw)
    return PaidCaseFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kw", "trigger"), [
    ({}, None),  # no robot contact: the payment owes nothing to the robot
    ({"confirmed_calls": (dt.date(2026, 3, 26),)}, "call"),
    ({"promises_made": (dt.date(2026, 3, 26),)}, "promise"),
    ({"confirmed_calls": (dt.date(2026, 3, 20),), "promises_made": (dt.date(2026, 3, 26),)}, "promise"),
    ({"confirmed_calls": (dt.date(2026, 2, 25),)}, None),  # 31 days before: outside the 30 looked back
    ({"confirmed_calls": (dt.date(2026, 2, 26),)}, "call"),  # exactly 30
    ({"confirmed_calls": (dt.date(2026, 3, 29),)}, "call"),  # a day after (time zones)
    ({"confirmed_calls": (dt.date(2026, 3, 31),)}, None),  # a call after the payment did not cause it
    ({"confirmed_calls": (dt.date(2026, 3, 26),), "paid_off": False}, None),  # partial payment
    ({"confirmed_calls": (dt.date(2026, 3, 26),), "already_recorded": True}, None),  # one per case
])
def test_thanks_trigger(kw: dict[str, object], trigger: str | None) -> None:
    assert thanks_trigger(facts(**kw), lookback_days=30) == trigger


NOW = dt.datetime(2026, 3, 28, 12, 0)  # naive UTC
ON = ThanksSettings(enabled=True, delay_minutes=60, valid_days=3, max_attempts=2, retry_minutes=240)


def test_plan_thanks() -> None:
    plan = plan_thanks(ON, PAID_ON, NOW)
    assert (plan.state, plan.due_at, plan.expires_at) == (PENDING, NOW + dt.timedelta(hours=1), NOW + dt.timedelta(days=3))
    assert plan_thanks(ThanksSettings(), PAID_ON, NOW).state == OFF  # the shipped default
    assert plan_thanks(ON, PAID_ON - dt.timedelta(days=4), NOW).state == EXPIRED  # an old payment imported late


def test_settings_from_options_fail_to_defaults() -> None:
    s = ThanksSettings.from_options({"thank_you_calls": "true", "thank_you_max_attempts": "x",
                                     "thank_you_retry_minutes": -5, "thank_you_window_profile": ""})
    assert s.enabled and s.max_attempts == 2 and s.retry_minutes == 240 and s.window_profile == "default"
    assert not ThanksSettings.from_options({"thank_you_calls": "no"}).enabled
    assert s.stage().code == "thanks" and s.stage().prompt == "thank_you"


@pytest.mark.parametrize(("result", "attempts", "state", "used", "due_after"), [
    ("answered", 1, DONE, 1, None),
    ("machine", 1, DONE, 1, None),  # no message, and no second try: it was not urgent
    ("wrong_party", 1, DONE, 1, None),
    ("no_answer", 1, PENDING, 1, dt.timedelta(minutes=240)),
    ("busy", 2, EXPIRED, 2, None),  # the second and last try
    ("refused", 1, PENDING, 0, dt.timedelta(minutes=5)),  # our side: the try is given back
    ("interrupted", 2, PENDING, 1, dt.timedelta(minutes=5)),
])
def test_settle_thanks(result: str, attempts: int, state: str, used: int, due_after: dt.timedelta | None) -> None:
    due = NOW - dt.timedelta(hours=1)
    plan = settle_thanks(result, attempts, ON, NOW, NOW + dt.timedelta(days=3), due)
    assert (plan.state, plan.attempts) == (state, used)
    assert plan.due_at == (NOW + due_after if due_after else due)


def test_settle_thanks_expires_when_the_retry_is_past_the_last_day() -> None:
    plan = settle_thanks("no_answer", 1, ON, NOW, NOW + dt.timedelta(hours=2), NOW)
    assert plan.state == EXPIRED
