"""When and on which number to try again after an attempt (pure).

| last result  | next try after                | number                         |
|--------------|-------------------------------|--------------------------------|
| busy         | retry_busy_minutes            | same                           |
| no_answer    | retry_no_answer_minutes       | same                           |
| congestion   | retry_congestion_minutes      | same                           |
| failed       | retry_failed_minutes          | next usable number (wraps)     |
| machine      | retry_machine_minutes         | same                           |
| answered     | the stage's retry_minutes     | same (limits stop same-day)    |
| wrong_party  | retry_failed_minutes          | next usable number             |
| lost         | retry_no_answer_minutes       | same (never an immediate redial)|
| refused      | retry_failed_minutes          | same (our side/server failed)  |
| interrupted  | retry_failed_minutes          | same (Asterisk/robot cut it)   |
| robot_failed | retry_failed_minutes          | same (the script never ran)    |

Counting towards a stage's max_attempts: every attempt that Asterisk accepted counts,
answered or not (busy, no answer, congestion, failed, machine, wrong party, and "lost" ones that
may have rung). An originate refused before Asterisk queued it, or a claim never sent, does not
count: the subscriber's phone never rang, and a broken trunk must not burn the ladder. Faults on
our side (interrupted, robot_failed: issue 15) do not count either: the person was not served,
and the ladder must not move on because Asterisk restarted or the FastAGI server was down.

Numbers are tried in priority order; `invalid` and `wrong_party` numbers and numbers on the
opt-out list are skipped. After the last usable number the order wraps to the first. A case with
no usable number is not callable and is reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ivr.db.models import AttemptResult
from ivr.dialer.policy import Options, Stage

LOST = "lost"  # reconciled: the call's fate is unknown
REFUSED = "refused"  # originate refused before Asterisk queued it
NOT_SENT = "not_sent"  # claimed, never originated (crash between claim and send)
INTERRUPTED = AttemptResult.INTERRUPTED.value  # Asterisk restarted, the robot or dialer died mid-call
ROBOT_FAILED = AttemptResult.ROBOT_FAILED.value  # answered, the call script never ran
# Not an attempt on the subscriber, or one our side spoiled: no stage attempt, no contact.
FAULT_RESULTS = frozenset({REFUSED, NOT_SENT, INTERRUPTED, ROBOT_FAILED})

USABLE_STATUS = "ok"
NO_PHONE_RECHECK = dt.timedelta(days=1)

NEXT_NUMBER_RESULTS = frozenset({AttemptResult.FAILED.value, AttemptResult.WRONG_PARTY.value})
NOT_COUNTED = FAULT_RESULTS


@dataclass(frozen=True)
class PhoneOption:
    id: int
    number: str  # E.164
    priority: int
    status: str = USABLE_STATUS


@dataclass(frozen=True)
class RetryDecision:
    next_attempt_at: dt.datetime
    next_phone_priority: int
    no_usable_phone: bool
    counts_in_stage: bool


def usable_phones(phones: Sequence[PhoneOption], excluded_numbers: Collection[str] = ()) -> list[PhoneOption]:
    return sorted(
        (p for p in phones if p.status == USABLE_STATUS and p.number not in excluded_numbers),
        key=lambda p: (p.priority, p.id),
    )


def pick_phone(
    phones: Sequence[PhoneOption], from_priority: int, excluded_numbers: Collection[str] = ()
) -> PhoneOption | None:
    """The first usable number with priority >= from_priority, wrapping to the first one."""
    usable = usable_phones(phones, excluded_numbers)
    for phone in usable:
        if phone.priority >= from_priority:
            return phone
    return usable[0] if usable else None


def next_phone_after(
    phones: Sequence[PhoneOption], priority: int, excluded_numbers: Collection[str] = ()
) -> PhoneOption | None:
    """The next usable number after `priority` (wrapping; may return the same number)."""
    return pick_phone(phones, priority + 1, excluded_numbers)


def retry_minutes(result: str, stage: Stage | None, options: Options) -> int:
    table = {
        AttemptResult.BUSY.value: options.retry_busy_minutes,
        AttemptResult.NO_ANSWER.value: options.retry_no_answer_minutes,
        AttemptResult.CONGESTION.value: options.retry_congestion_minutes,
        AttemptResult.FAILED.value: options.retry_failed_minutes,
        AttemptResult.MACHINE.value: options.retry_machine_minutes,
        AttemptResult.WRONG_PARTY.value: options.retry_failed_minutes,
        LOST: options.retry_no_answer_minutes,
        # soon, on the same number: the fault was ours (the health gate stops the dialer while
        # the robot is down, so this does not spin)
        REFUSED: options.retry_failed_minutes,
        INTERRUPTED: options.retry_failed_minutes,
        ROBOT_FAILED: options.retry_failed_minutes,
        NOT_SENT: 0,
    }
    if result in table:
        return table[result]
    # answered, or anything the call script wrote that we do not know: the stage's interval
    return stage.retry_minutes if stage is not None else options.retry_hangup_minutes


def plan_retry(
    result: str,
    *,
    now: dt.datetime,
    stage: Stage | None,
    options: Options,
    phones: Sequence[PhoneOption],
    attempt_phone: str | None,
    attempt_priority: int,
    excluded_numbers: Collection[str] = (),
) -> RetryDecision:
    """Next attempt time and number after an attempt ended with `result`."""
    excluded = set(excluded_numbers)
    if result == AttemptResult.WRONG_PARTY.value and attempt_phone:
        excluded.add(attempt_phone)  # even if the call script has not marked it yet
    when = now + dt.timedelta(minutes=retry_minutes(result, stage, options))
    if result in NEXT_NUMBER_RESULTS:
        phone = next_phone_after(phones, attempt_priority, excluded)
    else:
        phone = pick_phone(phones, attempt_priority, excluded)
    counts = result not in NOT_COUNTED
    if phone is None:
        return RetryDecision(max(when, now + NO_PHONE_RECHECK), attempt_priority, True, counts)
    return RetryDecision(when, phone.priority, False, counts)
