"""A test rig for whole calls: the simulated Asterisk places a call (AMI Originate through our
AMI client), connects to our FastAGI server exactly as Asterisk does, and the real call script
runs against a real database with real prompt audio (espeak-ng, cached per test session)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

from ivr.agi.server import FastAGIServer
from ivr.ami.client import AMIClient
from ivr.ami.types import CallEnded, OriginateRequest
from ivr.call.routes import build_call_parts, build_routes
from ivr.clock import FixedClock
from ivr.config import Settings, load_settings
from ivr.db.models import Account, CallAttempt, DebtCase, PhoneNumber
from ivr.dialplan_vars import (
    AGI_URL,
    AMD_ENABLED,
    CALL_ID,
    CONTEXT_ROBOT,
    LANGUAGE,
    ROUTE_DEBT_CALL,
    SCRIPT,
)
from ivr.sim.asterisk import SimulatedAsterisk
from ivr.sim.scenario import Callee
from ivr.wiring import Database

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)  # 11:00 in Moscow, a Sunday


def rig_settings(audio_dir: Path, db_url: str) -> Settings:
    base = load_settings(None, environ={})
    return dataclasses.replace(base, database_url=db_url, audio_cache_dir=audio_dir,
                               prompts_dir=REPO / "prompts", company_name="ООО «Охрана-Сервис»")


class CallRig:
    def __init__(self, db: Database, settings: Settings, *, speed: float = 60.0, now: dt.datetime = NOW) -> None:
        self.db = db
        self.settings = settings
        self.clock = FixedClock(now)
        self.speed = speed
        self.callees: dict[str, Callee] = {}
        self.ended: dict[str, CallEnded] = {}
        self._ended_events: dict[str, asyncio.Event] = {}

    async def __aenter__(self) -> CallRig:
        self.recorder, self.audio = build_call_parts(self.settings, self.db, self.clock)
        routes = build_routes(self.settings, self.db, clock=self.clock, audio=self.audio, recorder=self.recorder)
        self.agi = FastAGIServer(routes, "127.0.0.1", 0)
        await self.agi.start()
        self.sim = SimulatedAsterisk(lambda number: self.callees[number], speed=self.speed)
        await self.sim.start()
        self.ami = AMIClient("127.0.0.1", self.sim.ami_port, "ivr", "secret", ping_interval=30)
        self.ami.on_call_ended = self._on_ended
        await self.ami.start()
        assert await self.ami.wait_connected(30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ami.stop()
        await self.sim.stop()
        await self.agi.stop(grace=2)

    def audio_files(self) -> dict[str, str]:
        """Phrase name (or reply:<reason code>) → audio file of the last call placed."""
        return self.last_files

    def _on_ended(self, ended: CallEnded) -> None:
        self.ended[ended.call_id] = ended
        self._ended_events.setdefault(ended.call_id, asyncio.Event()).set()

    def make_account(self, *, number: str = "+79161234567", balance: str = "1800.50",
                     language: str = "ru", stage: str = "reminder") -> tuple[int, int, int]:
        with self.db.sessions.begin() as s:
            acc = Account(external_id=f"A-{uuid.uuid4().hex[:8]}", holder_name="Иванов Иван Иванович",
                          service_name="охранная сигнализация", tariff="Базовый", balance=Decimal(balance),
                          currency="RUB", due_date=dt.date(2026, 11, 10), block_date=dt.date(2026, 11, 25),
                          timezone="Europe/Moscow", language=language)
            acc.phones.append(PhoneNumber(number=number, priority=1))
            s.add(acc)
            s.flush()
            case = DebtCase(account_id=acc.id, opened_on=acc.due_date, amount_initial=acc.balance,
                            amount_owed=acc.balance, stage_code=stage)
            s.add(case)
            s.flush()
            return acc.id, case.id, acc.phones[0].id

    async def call(self, callee: Callee, *, amd: bool = True, language: str = "ru",
                   account: tuple[int, int, int] | None = None, timeout: float = 60) -> int:
        account_id, case_id, phone_id = account or self.make_account(language=language)
        action_id = f"test-{uuid.uuid4().hex[:10]}"
        with self.db.sessions.begin() as s:
            phone = s.get(PhoneNumber, phone_id)
            assert phone is not None
            attempt = CallAttempt(debt_case_id=case_id, account_id=account_id, phone_number_id=phone_id,
                                  phone=phone.number, stage_code=s.get(DebtCase, case_id).stage_code,
                                  language=language, action_id=action_id, server="sim", state="dialing")
            s.add(attempt)
            s.flush()
            attempt_id = attempt.id
        return await self.place(attempt_id, callee, amd=amd, timeout=timeout)

    async def place(self, attempt_id: int, callee: Callee, *, amd: bool = True, timeout: float = 60) -> int:
        """Prepare the audio of an attempt already written (by `call`, or by the dialer's claim)
        and have the simulated Asterisk place it; returns when the call is over."""
        with self.db.sessions() as s:
            attempt = s.get(CallAttempt, attempt_id)
            assert attempt is not None
            action_id, number, language = attempt.action_id, attempt.phone, attempt.language
        self.callees[number.lstrip("+")] = callee
        await self.audio.prepare_attempt(attempt_id)
        prepared = self.audio._ready[action_id].audio
        self.last_texts = dict(prepared.texts)  # what each phrase says
        self.last_files = dict(prepared.phrases)
        self.last_files.update({f"reply:{code}": f for code, f in prepared.reason_replies.items()})
        self._ended_events[action_id] = asyncio.Event()
        await self.ami.originate(OriginateRequest(
            action_id=action_id, channel=f"PJSIP/{number.lstrip('+')}@debt-trunk", context=CONTEXT_ROBOT,
            exten="s", timeout_ms=30000, caller_id='"Billing" <74950000000>',
            variables={CALL_ID: action_id, AGI_URL: f"agi://127.0.0.1:{self.agi.port}",
                       SCRIPT: ROUTE_DEBT_CALL, LANGUAGE: language, AMD_ENABLED: "1" if amd else "0"},
        ))
        await asyncio.wait_for(self._ended_events[action_id].wait(), timeout)
        # The callee's Hangup can come before the script even connects, and the script's last
        # writes come after the hang-up. The simulated call ends only once the script has closed
        # its side of the FastAGI session, which it does after its handler (and every write) is done.
        assert await self.sim.wait_idle(timeout), "the simulated call did not end"
        return attempt_id
