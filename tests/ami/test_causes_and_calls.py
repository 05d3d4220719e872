"""Result mapping (Reason, Q.850 cause) and the call tracker (pure logic)."""

from __future__ import annotations

import random

import pytest

from ivr.ami import causes
from ivr.ami.calls import CallTracker
from ivr.ami.client import backoff_delay
from ivr.db.models import AttemptResult


def test_result_values_are_attempt_results() -> None:
    for value in (causes.ANSWERED, causes.BUSY, causes.NO_ANSWER, causes.CONGESTION, causes.FAILED):
        assert AttemptResult(value).value == value


@pytest.mark.parametrize(("reason", "result"), [
    (4, "answered"), (5, "busy"), (3, "no_answer"), (8, "congestion"), (0, "failed"), (99, "failed"),
])
def test_recorded_originate_reasons(reason: int, result: str) -> None:
    assert causes.result_for_reason(reason) == result


@pytest.mark.parametrize(("cause", "result"), [
    (17, "busy"), (21, "busy"), (18, "no_answer"), (19, "no_answer"), (20, "no_answer"),
    (34, "congestion"), (38, "congestion"), (41, "congestion"), (42, "congestion"), (44, "congestion"),
    (1, "failed"), (3, "failed"), (22, "failed"), (27, "failed"), (28, "failed"), (127, "failed"),
    (0, "failed"), (16, "failed"),  # normal clearing of a call that was never answered
])
def test_unanswered_causes(cause: int, result: str) -> None:
    assert causes.result_for_cause(cause, answered=False) == result


@pytest.mark.parametrize("cause", [0, 16, 17, 34])
def test_answered_call_is_answered_whatever_the_cause(cause: int) -> None:
    assert causes.result_for_cause(cause, answered=True) == "answered"


def test_cause_weight_prefers_the_informative_half() -> None:
    assert causes.cause_weight(17) > causes.cause_weight(16) > causes.cause_weight(0)


def _local_pair(t: CallTracker, call_id: str, base: str = "1.1") -> None:
    t.carries(base, "Local/busy@debtor-sim-00000018;1", call_id)
    t.carries(base + "1", "Local/busy@debtor-sim-00000018;2", call_id)


def test_busy_local_call_ends_once_with_the_busy_cause() -> None:
    t = CallTracker()
    _local_pair(t, "a1")
    assert t.hangup("1.1", "Local/busy@debtor-sim-00000018;1", 0, "Unknown", 0) is None
    ended = t.hangup("1.11", "Local/busy@debtor-sim-00000018;2", 17, "User busy", 7)
    assert ended is not None
    assert (ended.call_id, ended.cause, ended.result, ended.uniqueid) == ("a1", 17, "busy", "1.11")
    # a repeated or late event never gives a second CallEnded
    assert t.hangup("1.11", "x", 17, "User busy", 7) is None
    t.carries("1.12", "Local/x;1", "a1")
    assert not t.is_tracked("1.12")


def test_answered_when_a_channel_was_up_or_the_originate_succeeded() -> None:
    t = CallTracker()
    _local_pair(t, "a2")
    t.variable("1.1", "AGISTATUS", "FAILURE")
    t.hangup("1.1", "c;1", 16, "Normal Clearing", 6)
    ended = t.hangup("1.11", "c;2", 16, "Normal Clearing", 6)
    assert ended is not None and ended.result == "answered" and ended.agi_status == "FAILURE"

    t.carries("2.1", "PJSIP/x-1", "a3")
    t.answered("a3")
    ended = t.hangup("2.1", "PJSIP/x-1", 0, "Unknown", 5)
    assert ended is not None and ended.result == "answered"


def test_originate_response_after_the_hangup_does_not_revive_the_channel() -> None:
    t = CallTracker()
    _local_pair(t, "a4")
    t.hangup("1.1", "c;1", 0, "Unknown", 0)
    t.carries("1.1", "c;1", "a4")  # OriginateResponse Success arriving late
    ended = t.hangup("1.11", "c;2", 19, "User alerting, no answer", 4)
    assert ended is not None and ended.result == "no_answer"


def test_forget_and_bounded_memory() -> None:
    t = CallTracker(remember_ended=2)
    t.carries("9.1", "c", "f1")
    t.forget("f1")
    assert t.hangup("9.1", "c", 16, "Normal Clearing", 6) is None
    assert t.call_ids() == []
    for i in range(5):
        t.carries(f"8.{i}", "c", f"g{i}")
        t.hangup(f"8.{i}", "c", 16, "x", 6)
    assert len(t._ended) == 2


def test_backoff_grows_is_capped_and_jittered() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(n, 0.5, 30.0, rng) for n in range(12)]
    assert all(0.5 <= d <= 30.0 for d in delays)
    assert delays[0] <= 0.6 and delays[3] >= 0.8 * 4.0 and delays[11] >= 0.8 * 30.0
    assert len({round(backoff_delay(2, 0.5, 30.0, rng), 6) for _ in range(20)}) > 1
