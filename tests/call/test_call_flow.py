"""Every path of the call script, driven through the simulated Asterisk over real FastAGI; each
test asserts what is stored."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from ivr.db.models import (
    CallAttempt,
    CallbackTask,
    CallStep,
    DebtCase,
    OptOut,
    Outcome,
    PhoneNumber,
    Promise,
    Reason,
)
from ivr.sim.scenario import Callee, KeyPress
from tests.call.rig import NOW, CallRig


def presses(*keys: str) -> Callee:
    return Callee(answer_after=1.0, keys=[KeyPress(k, delay=0.6) for k in keys])


def stored(rig: CallRig, attempt_id: int):
    s = rig.db.sessions()
    attempt = s.get(CallAttempt, attempt_id)
    outcome = s.scalar(select(Outcome).where(Outcome.attempt_id == attempt_id))
    steps = [(st.step, st.keys, st.result) for st in s.scalars(
        select(CallStep).where(CallStep.attempt_id == attempt_id).order_by(CallStep.seq))]
    case = s.get(DebtCase, attempt.debt_case_id)
    return s, attempt, outcome, steps, case


def played(rig: CallRig, attempt_id: int) -> list[str]:
    s = rig.db.sessions()
    action_id = s.get(CallAttempt, attempt_id).action_id
    record = next(c for c in rig.sim.calls if c.call_id == action_id)
    return record.commands


async def test_promise_accepted(rig: CallRig):
    attempt_id = await rig.call(presses("1", "1", "2511", "1"))
    s, attempt, outcome, steps, case = stored(rig, attempt_id)
    assert attempt.result == "answered"
    assert attempt.amd_status == "HUMAN"
    assert outcome.identity == "confirmed" and outcome.message_delivered
    assert outcome.kind == "promise" and outcome.promise_date == dt.date(2026, 11, 25)
    promise = s.scalar(select(Promise).where(Promise.debt_case_id == case.id))
    assert promise.promised_date == dt.date(2026, 11, 25) and promise.status == "pending"
    assert promise.source == "robot" and promise.attempt_id == attempt_id
    assert case.state == "promised"
    assert ("identity", "1", "ok") in steps and ("menu", "1", "ok") in steps
    assert ("promise_date", "2511", "ok") in steps and ("promise_confirm", "1", "ok") in steps
    assert played(rig, attempt_id)[-1].startswith("HANGUP")


@pytest.mark.parametrize(
    ("bad", "problem"),
    [("3102", "not_a_date"), ("2011", "past"), ("1512", "beyond_horizon"), ("12", "not_a_date")],
)
async def test_bad_date_explained_then_valid_date(rig: CallRig, bad: str, problem: str):
    attempt_id = await rig.call(presses("1", "1", bad, "2611", "1"))
    s, attempt, outcome, steps, case = stored(rig, attempt_id)
    assert ("promise_date", bad, problem) in steps
    assert ("promise_date", "2611", "ok") in steps
    assert outcome.kind == "promise" and outcome.promise_date == dt.date(2026, 11, 26)
    # the reason was spoken: the matching explanation file was played after the bad entry
    commands = played(rig, attempt_id)
    texts = rig.audio_files()
    phrase = {"not_a_date": "date_invalid", "past": "date_past", "beyond_horizon": "date_beyond_horizon"}[problem]
    assert any(texts[phrase] in c for c in commands)


async def test_shortcut_tomorrow_and_reenter(rig: CallRig):
    attempt_id = await rig.call(presses("1", "1", "*2", "2", "*1", "1"))
    s, attempt, outcome, steps, case = stored(rig, attempt_id)
    assert ("promise_confirm", "2", "ok") in steps
    assert outcome.promise_date == NOW.date()
    assert [p.promised_date for p in s.scalars(select(Promise))] == [NOW.date()]


async def test_paid_claim_pauses_case(rig: CallRig):
    attempt_id = await rig.call(presses("1", "2"))
    s, attempt, outcome, steps, case = stored(rig, attempt_id)
    assert outcome.kind == "paid_claim" and outcome.paid_claim
    assert case.next_attempt_at == NOW.replace(tzinfo=None) + dt.timedelta(days=3)
    assert s.scalar(select(Promise)) is None


@pytest.mark.parametrize("code", ["forgot", "money_trouble", "no_invoice", "service_quality", "moving_away",
                                  "competitor", "not_decision_maker", "disputes_amount"])
async def test_each_reason(rig: CallRig, code: str):
    with rig.db.sessions() as s:
        reason = s.scalar(select(Reason).where(Reason.code == code))
        key, actionable, route = reason.key, reason.actionable, reason.route
    attempt_id = await rig.call(presses("1", "3", key))
    s, attempt, outcome, steps, case = stored(rig, attempt_id)
    assert outcome.kind == "reason" and outcome.reason_id == reason.id
    tasks = list(s.scalars(select(CallbackTask)))
    if actionable:
        assert [(t.queue, t.reason_id, t.attempt_id, t.state) for t in tasks] == [(route, reason.id, attempt_id, "open")]
        assert any(rig.audio_files()["callback_promise"] in c for c in played(rig, attempt_id))
    else:
        assert tasks == []
        assert any(rig.audio_files()[f"reply:{code}"] in c for c in played(rig, attempt_id))


async def test_reason_menu_without_valid_key_is_unknown_reason(rig: CallRig):
    attempt_id = await rig.call(presses("1", "3", "", "", ""))
    s, attempt, outcome, steps, case = stored(rig, attempt_id)
    assert outcome.kind == "reason" and outcome.reason_id is None
    assert [r for st, _k, r in steps if st == "reason"] == ["no_input"] * 3
    assert s.scalar(select(CallbackTask)) is None


async def test_wrong_party_hears_nothing_about_the_debt(rig: CallRig):
    attempt_id = await rig.call(presses("2"))
    s, attempt, outcome, steps, case = stored(rig, attempt_id)
    assert attempt.result == "wrong_party"
    assert outcome.identity == "denied" and outcome.kind == "wrong_party" and not outcome.message_delivered
    assert s.get(PhoneNumber, attempt.phone_number_id).status == "wrong_party"
    assert not any(rig.audio_files()["debt_message"] in c for c in played(rig, attempt_id))


async def test_answering_machine_gets_neutral_message(rig: CallRig):
    attempt_id = await rig.call(Callee(outcome="machine", answer_after=1.0))
    s, attempt, outcome, steps, case = stored(rig, attempt_id)
    assert attempt.result == "machine" and attempt.amd_status == "MACHINE"
    assert outcome.kind == "machine" and outcome.identity == "unknown"
    commands = played(rig, attempt_id)
    texts = rig.audio_files()
    assert any(texts["machine"] in c for c in commands)
    assert not any(texts["debt_message"] in c for c in commands)


async def test_no_input_at_identity_closes_politely(rig: CallRig):
    attempt_id = await rig.call(presses())
    s, attempt, outcome, steps, case = stored(rig, attempt_id)
    assert steps == [("greet", "", "ok")] + [("identity", "", "no_input")] * 3
    assert outcome.kind == "no_input" and outcome.identity == "unknown"
    commands = played(rig, attempt_id)
    assert any(rig.audio_files()["goodbye_no_input"] in c for c in commands)
    assert not any(rig.audio_files()["debt_message"] in c for c in commands)


async def test_invalid_key_explained_and_repeat(rig: CallRig):
    attempt_id = await rig.call(presses("1", "5", "0", "2"))
    s, attempt, outcome, steps, case = stored(rig, attempt_id)
    assert ("menu", "5", "invalid") in steps
    assert [st for st, _k, _r in steps].count("debt_message") == 2  # 0 repeated the message
    assert outcome.kind == "paid_claim"
    assert any(rig.audio_files()["invalid_key"] in c for c in played(rig, attempt_id))


async def test_opt_out_recorded_at_once(rig: CallRig):
    attempt_id = await rig.call(presses("1", "7"))
    s, attempt, outcome, steps, case = stored(rig, attempt_id)
    opt = s.scalar(select(OptOut))
    assert opt.account_id == attempt.account_id and opt.phone == attempt.phone and opt.source == "keypad"
    assert outcome.kind == "opt_out" and outcome.opted_out
    assert case.next_attempt_at is None and case.state == "active"  # off the schedule, debt still open


async def test_human_request_raises_task(rig: CallRig):
    attempt_id = await rig.call(presses("1", "9"))
    s, attempt, outcome, steps, case = stored(rig, attempt_id)
    task = s.scalar(select(CallbackTask))
    assert task.queue == "billing" and task.priority == 3 and task.attempt_id == attempt_id
    assert outcome.kind == "human_request" and outcome.human_requested


@pytest.mark.parametrize(
    ("hangup_at", "identity", "delivered", "kind", "last_step"),
    [
        (1, "unknown", False, "no_input", "greet"),  # while asked who they are
        (2, "confirmed", True, "message_only", "debt_message"),  # in the menu
        (3, "confirmed", True, "message_only", "menu"),  # while keying the date
        (4, "confirmed", True, "message_only", "promise_date"),  # during the read-back
    ],
)
async def test_hangup_at_each_step_keeps_what_was_captured(rig: CallRig, hangup_at, identity, delivered, kind, last_step):
    callee = presses("1", "1", "2511", "1")
    callee.hangup_at_input = hangup_at
    attempt_id = await rig.call(callee)
    s, attempt, outcome, steps, case = stored(rig, attempt_id)
    assert attempt.result == "answered"
    assert outcome.identity == identity and outcome.message_delivered is delivered
    assert outcome.kind == kind
    assert steps[-1] == ("hangup", "", "hangup")
    assert steps[-2][0] == last_step
    assert s.scalar(select(Promise)) is None
    # after the hang-up nothing more was sent to the dead channel: the last command is the one the
    # hang-up interrupted, or the CHANNEL STATUS probe that confirmed it
    commands = played(rig, attempt_id)
    assert commands[-1].startswith(("STREAM FILE", "GET DATA", "WAIT FOR DIGIT", "CHANNEL STATUS"))


async def test_hangup_during_greeting(rig: CallRig):
    # the hang-up is tied to the script's progress (0.5 s into its first playback, the greeting),
    # not to a time after answer: how long the script takes to get there is real time and varies
    callee = Callee(answer_after=1.0, hangup_at_media=1)
    attempt_id = await rig.call(callee, amd=False)
    s, attempt, outcome, steps, case = stored(rig, attempt_id)
    assert attempt.result == "answered"
    assert outcome is not None and outcome.identity == "unknown" and outcome.kind == "hangup"
    assert steps == [("hangup", "", "hangup")]  # the greeting never finished
    assert played(rig, attempt_id)[-1].startswith(("STREAM FILE", "CHANNEL STATUS"))
    assert any(rig.audio_files()["greeting"] in c for c in played(rig, attempt_id))


async def test_hangup_before_the_script_speaks_still_stores_the_answered_call(rig: CallRig):
    # gone at the moment of answer: the script's first command already meets a dead channel
    # (no AMD here: with AMD the dialplan would stop before the script starts)
    callee = Callee(answer_after=1.0, hangup_after=0.0)
    attempt_id = await rig.call(callee, amd=False)
    s, attempt, outcome, steps, case = stored(rig, attempt_id)
    assert attempt.result == "answered" and attempt.answered_at is not None
    assert outcome is not None and outcome.identity == "unknown" and outcome.kind == "hangup"
    assert steps[-1] == ("hangup", "", "hangup")
