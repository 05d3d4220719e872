"""A FastAGI connection naming a call id that may not run now (a finished call replayed, a claim
never sent, another channel, another Asterisk, a second connection for a running call) is refused
before anything is written: the stored outcome stays as the real call left it."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pytest
from sqlalchemy import func, select, update

from ivr.agi import ratelog
from ivr.call.recorder import refusal
from ivr.call.routes import agi_sources
from ivr.config import ConfigError, load_settings
from ivr.db.models import CallAttempt, CallStep, Outcome, Promise
from tests.agi.test_server import Asterisk
from tests.call.rig import CallRig
from tests.call.test_call_flow import presses


def snapshot(rig: CallRig, attempt_id: int) -> tuple[object, ...]:
    with rig.db.sessions() as s:
        a = s.get(CallAttempt, attempt_id)
        o = s.scalar(select(Outcome).where(Outcome.attempt_id == attempt_id))
        steps = s.scalar(select(func.count()).select_from(CallStep).where(CallStep.attempt_id == attempt_id))
        promises = [(p.promised_date, p.status) for p in s.scalars(select(Promise).where(Promise.attempt_id == attempt_id))]
        return (a.state, a.result, a.answered_at, a.amd_status, o.kind, o.identity, o.promise_date,
                o.message_delivered, steps, promises)


async def expect_refused(port: int, call_id: str, uniqueid: str = "1795370949.7") -> None:
    a = await Asterisk.call(port, "debt-call", args=(call_id,), uniqueid=uniqueid)
    assert await a.command() == 'VERBOSE "ivr: call refused" 1'  # not GET VARIABLE AMDSTATUS: no script
    await a.reply("200 result=1")
    assert await a.command() == "HANGUP"
    await a.reply("200 result=1")
    assert await a.expect_end() == b""


async def test_replaying_a_finished_call_changes_nothing(rig: CallRig, caplog: pytest.LogCaptureFixture) -> None:
    attempt_id = await rig.call(presses("1", "1", "2511", "1"))
    with rig.db.sessions.begin() as s:  # what the dialer does on the AMI Hangup event
        s.execute(update(CallAttempt).where(CallAttempt.id == attempt_id).values(state="done"))
        call_id = s.get(CallAttempt, attempt_id).action_id
    before = snapshot(rig, attempt_id)
    assert before[4] == "promise"
    ratelog.reset_all()  # the refusal log is rate-limited process-wide
    with caplog.at_level(logging.WARNING, logger="ivr.call.routes"):
        for _ in range(5):
            await expect_refused(rig.agi.port, call_id)
    assert snapshot(rig, attempt_id) == before
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert 1 <= len(refused) <= 2 and "already done (answered)" in refused[0].getMessage()


async def test_claim_never_sent_and_other_channel_are_refused(rig: CallRig) -> None:
    acc, case, phone = rig.make_account()
    with rig.db.sessions.begin() as s:
        for action_id, state, uniqueid in (("never-sent", "claimed", None), ("elsewhere", "dialing", "1795370949.1"),
                                           ("lost", "unknown", None)):
            s.add(CallAttempt(debt_case_id=case, account_id=acc, phone_number_id=phone, phone="+79161234567",
                              stage_code="reminder", action_id=action_id, server="sim", state=state, uniqueid=uniqueid))
    for call_id in ("never-sent", "elsewhere", "lost"):
        await expect_refused(rig.agi.port, call_id, uniqueid="1795370949.2")
    with rig.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Outcome)) == 0
        assert s.scalar(select(func.count()).select_from(CallStep)) == 0


async def test_second_connection_for_a_running_call_is_refused(rig: CallRig) -> None:
    acc, case, phone = rig.make_account()
    with rig.db.sessions.begin() as s:
        attempt = CallAttempt(debt_case_id=case, account_id=acc, phone_number_id=phone, phone="+79161234567",
                              stage_code="reminder", action_id="live-1", server="sim", state="dialing")
        s.add(attempt)
        s.flush()
        attempt_id = attempt.id
    await rig.audio.prepare_attempt(attempt_id)
    first = await Asterisk.call(rig.agi.port, "debt-call", args=("live-1",))
    assert await first.command() == "GET VARIABLE AMDSTATUS"  # the real call is running
    await expect_refused(rig.agi.port, "live-1")
    first.writer.write(b"HANGUP\n200 result=0\n")
    first.writer.close()
    async with asyncio.timeout(30):
        while rig.agi.active_calls:
            await asyncio.sleep(0.02)


def test_refusal_rules() -> None:
    def attempt(**kw: object) -> CallAttempt:
        values: dict[str, object] = {"state": "dialing", "server": "pbx1", "uniqueid": None,
                                     "originated_at": dt.datetime(2026, 11, 22, 8, 0), "result": None}
        values.update(kw)
        return CallAttempt(**values)

    settings = load_settings(None, environ={
        "IVR_ASTERISK_SERVERS": "pbx1,pbx2", "IVR_AST_PBX1_HOST": "10.0.0.5", "IVR_AST_PBX1_USER": "u",
        "IVR_AST_PBX1_SECRET": "Qw7-pbx1-Lk2m9Zx4Vb8n", "IVR_AST_PBX1_AGI_FROM": "10.0.0.5,10.0.1.0/24",
        "IVR_AST_PBX2_HOST": "10.0.0.6", "IVR_AST_PBX2_USER": "u", "IVR_AST_PBX2_SECRET": "Er5-pbx2-Tp3j8Hc6Ns1d"})
    sources = agi_sources(settings)
    assert set(sources) == {"pbx1"}
    assert refusal(attempt(), "1.1", "10.0.0.5", sources) is None
    assert refusal(attempt(state="answered", uniqueid="1.1"), "1.1", "10.0.1.7", sources) is None
    assert refusal(attempt(state="claimed"), None, "10.0.0.5", sources) is None  # sent, not yet acknowledged
    assert refusal(attempt(server="pbx2"), None, "192.0.2.1", sources) is None  # no sources configured
    assert "already done" in str(refusal(attempt(state="done", result="busy"), None, "10.0.0.5", sources))
    assert "not in flight" in str(refusal(attempt(state="unknown"), None, "10.0.0.5", sources))
    assert "never sent" in str(refusal(attempt(state="claimed", originated_at=None), None, "10.0.0.5", sources))
    assert "another channel" in str(refusal(attempt(uniqueid="1.1"), "1.2", "10.0.0.5", sources))
    assert "server pbx1" in str(refusal(attempt(), None, "10.0.0.6", sources))
    assert settings.asterisk_servers[0].agi_from == ("10.0.0.5", "10.0.1.0/24")
    with pytest.raises(ConfigError, match="IVR_AST_PBX1_AGI_FROM"):
        load_settings(None, environ={"IVR_ASTERISK_SERVERS": "pbx1", "IVR_AST_PBX1_HOST": "h", "IVR_AST_PBX1_USER": "u",
                                     "IVR_AST_PBX1_SECRET": "Qw7-pbx1-Lk2m9Zx4Vb8n", "IVR_AST_PBX1_AGI_FROM": "not-an-ip"})
