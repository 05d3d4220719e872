"""Issue 16, "a reaction to every payment": the pure rules (time is always an argument).

Before-due stages are ordinary ladder stages anchored on the due date with a negative
`start_day` ("3 days before the 25th"); `is_before_due` and `stage_offset` name that, and the
ladder (`ivr.dialer.ladder.stage_for`) already picks the stage by the case's offset from its due
date. The shipped `before_due` stage is inactive until an admin enables it.

A thank-you call follows a payment that paid a case off after the robot reached the person on
it (an answered call on which the identity was confirmed) or after a promise was made on it,
within `lookback_days` before the payment. It is off by default (option `thank_you_calls`):
a call that asks nothing of the subscriber still rings their phone, counts against the same
contact limits as the debt calls (many collection rules count every automated call) and costs a
line; a company should turn it on knowingly. Whether it is on or off, the qualifying payment is
recorded (state `off` when disabled), so the report can compare the cases that got a thank-you
call with comparable ones that did not.

A thank-you call runs under the debt call's rules: the same greeting and identity check before a
word about the account, the subscriber's call window (profile `thank_you_window_profile`), the
same contact limits, opt-outs and number statuses, one call in flight per person.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ivr.db.models import AttemptResult
from ivr.dialer.policy import Stage
from ivr.dialer.retry import FAULT_RESULTS

THANKS_PURPOSE = "thanks"  # CallAttempt.purpose of a thank-you call
THANKS_STAGE = "thanks"  # CallAttempt.stage_code of a thank-you call (no ladder stage may use it)
THANK_YOU_TEMPLATE = "thank_you"  # the message played after the identity is confirmed
BEFORE_DUE_TEMPLATE = "before_due"

PENDING = "pending"
DONE = "done"
EXPIRED = "expired"
OFF = "off"
STATES = (PENDING, DONE, EXPIRED, OFF)

# results after which a thank-you is not tried again: the person (or their machine) picked up,
# or the number is not theirs
_FINAL_RESULTS = frozenset({AttemptResult.ANSWERED.value, AttemptResult.MACHINE.value, AttemptResult.WRONG_PARTY.value})


def _int(options: Mapping[str, Any], key: str, default: int, low: int = 0) -> int:
    try:
        value = int(options.get(key, default))
    except (TypeError, ValueError):
        return default
    return value if value >= low else default


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@dataclass(frozen=True)
class ThanksSettings:
    enabled: bool = False
    delay_minutes: int = 60  # after the import: billing's file may come in before the bank's day ends
    valid_days: int = 3  # a thank-you later than this after the import is not placed at all
    max_attempts: int = 2
    retry_minutes: int = 240
    lookback_days: int = 30  # the call or promise at most this many days before the payment
    window_profile: str = "default"

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ThanksSettings:
        d = cls()
        return cls(
            enabled=_bool(options.get("thank_you_calls", d.enabled)),
            delay_minutes=_int(options, "thank_you_delay_minutes", d.delay_minutes),
            valid_days=_int(options, "thank_you_valid_days", d.valid_days, 1),
            max_attempts=_int(options, "thank_you_max_attempts", d.max_attempts, 1),
            retry_minutes=_int(options, "thank_you_retry_minutes", d.retry_minutes, 1),
            lookback_days=_int(options, "thank_you_lookback_days", d.lookback_days, 1),
            window_profile=str(options.get("thank_you_window_profile") or d.window_profile),
        )

    def stage(self) -> Stage:
        """The pseudo-stage whose window and tries a thank-you call uses (never in the ladder)."""
        return Stage(code=THANKS_STAGE, position=-1, name="thank you", prompt=THANK_YOU_TEMPLATE,
                     window_profile=self.window_profile, max_attempts=self.max_attempts,
                     retry_minutes=self.retry_minutes, on_end="stop")


# -- before-due stages ---------------------------------------------------------------------------

def is_before_due(stage: Stage) -> bool:
    """A stage that calls before the due date: anchored on it, starting a negative day offset."""
    return stage.anchor == "due" and stage.start_day < 0


def stage_offset(due_date: dt.date, today_local: dt.date) -> int:
    """Days from the due date to today: -3 three days before it, 0 on it, 1 the day after."""
    return (today_local - due_date).days


def days_to_due(due_date: dt.date | None, today_local: dt.date) -> int | None:
    """Days left until the due date (0 on it, negative once passed; None if unknown)."""
    return None if due_date is None else (due_date - today_local).days


# -- thank-you eligibility -----------------------------------------------------------------------

@dataclass(frozen=True)
class PaidCaseFacts:
    """What is known about a case when a payment is applied to it."""

    paid_off: bool  # this payment closed the case
    paid_on: dt.date
    confirmed_calls: tuple[dt.date, ...] = ()  # UTC dates of answered robot calls, identity confirmed
    promises_made: tuple[dt.date, ...] = ()  # UTC dates the case's promises were made
    already_recorded: bool = False  # a thank-you row exists for the case


def thanks_trigger(facts: PaidCaseFacts, lookback_days: int) -> str | None:
    """"promise" or "call" when the payment follows a promise or an answered robot call on the
    case within `lookback_days` before it (a day of slack after: time zones), else None.
    A partial payment does not qualify: the ladder goes on for the rest, and a thank-you
    followed by another reminder would contradict itself."""
    if not facts.paid_off or facts.already_recorded:
        return None
    earliest = facts.paid_on - dt.timedelta(days=lookback_days)
    latest = facts.paid_on + dt.timedelta(days=1)

    def within(days: Iterable[dt.date]) -> bool:
        return any(earliest <= d <= latest for d in days)

    if within(facts.promises_made):
        return "promise"
    if within(facts.confirmed_calls):
        return "call"
    return None


@dataclass(frozen=True)
class ThanksPlan:
    state: str
    due_at: dt.datetime  # naive UTC
    expires_at: dt.datetime  # naive UTC


def plan_thanks(settings: ThanksSettings, paid_on: dt.date, now: dt.datetime) -> ThanksPlan:
    """When to call (naive UTC `now`). An old payment imported late gets no call: thanking
    someone for a payment weeks ago is noise, and it is recorded as expired."""
    due = now + dt.timedelta(minutes=settings.delay_minutes)
    expires = now + dt.timedelta(days=settings.valid_days)
    if not settings.enabled:
        return ThanksPlan(OFF, due, expires)
    if paid_on < now.date() - dt.timedelta(days=settings.valid_days):
        return ThanksPlan(EXPIRED, due, expires)
    return ThanksPlan(PENDING, due, expires)


@dataclass(frozen=True)
class ThanksSettle:
    state: str
    due_at: dt.datetime  # naive UTC
    attempts: int  # tries used (a fault on our side gives its try back)


def settle_thanks(result: str, attempts: int, settings: ThanksSettings, now: dt.datetime,
                  expires_at: dt.datetime, due_at: dt.datetime) -> ThanksSettle:
    """After a thank-you attempt left flight (naive UTC `now`; `attempts` counts this one):
    done when someone picked up (or the number is not theirs), else another try after
    retry_minutes within the tries and days allowed. A fault on our side (never sent, refused,
    robot down) gives its try back and is retried soon."""
    if result in _FINAL_RESULTS:
        return ThanksSettle(DONE, due_at, attempts)
    fault = result in FAULT_RESULTS
    used = max(0, attempts - 1) if fault else attempts
    retry = now + dt.timedelta(minutes=5 if fault else settings.retry_minutes)
    if used >= settings.max_attempts or retry >= expires_at:
        return ThanksSettle(EXPIRED, due_at, used)
    return ThanksSettle(PENDING, retry, used)
