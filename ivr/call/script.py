"""The debt call, as the subscriber hears it (shared/DESIGN.md, "The call").

Read `DebtCall.run` top to bottom: it is the list of named steps. Every step stores its result
through the CallRecorder the moment it is known; a hang-up (AGIHangup) at any point ends the
script, and `finish` still writes the final state.

Nothing about the debt is played before the identity key: greeting, identity question, wrong-party
and answering-machine phrases disclose nothing (the prompt tests check the templates for that).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ivr.agi.channel import AGIChannel, AGIHangup
from ivr.call import keys as K
from ivr.call.dates import DateProblem, parse_promise
from ivr.call.recorder import CallInfo, CallRecorder
from ivr.dialer.thanks import THANKS_PURPOSE
from ivr.dialplan_vars import AMD_STATUS
from ivr.logsetup import mask_phone

log = logging.getLogger(__name__)


class Audio(Protocol):
    """What the script plays: ivr.voice.prepare.CallAudio has exactly this shape."""

    phrases: dict[str, str]
    readbacks: dict[dt.date, str]
    reason_replies: dict[str, str]
    reasons: list[tuple[str, str, bool, str | None]]

    def get(self, name: str) -> str: ...


@dataclass(frozen=True)
class CallOptions:
    max_tries: int = 3
    timeout_ms: int = 6000
    human_key: str = ""
    human_queue: str = "billing"
    opt_out_key: str = ""
    machine_action: str = "message"
    paid_claim_grace_days: int = 3

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> CallOptions:
        return cls(
            max_tries=max(1, int(options.get("max_menu_tries", 3))),
            timeout_ms=int(float(options.get("menu_timeout_seconds", 6)) * 1000),
            human_key=str(options.get("human_request_key") or ""),
            human_queue=str(options.get("human_request_queue") or "billing"),
            opt_out_key=str(options.get("opt_out_key") or ""),
            machine_action=str(options.get("machine_action", "message")),
            paid_claim_grace_days=int(options.get("paid_claim_grace_days", 3)),
        )


class DebtCall:
    def __init__(
        self,
        channel: AGIChannel,
        recorder: CallRecorder,
        info: CallInfo,
        audio: Audio,
        options: CallOptions,
        *,
        today: dt.date,
        horizon: dt.date,
    ) -> None:
        self.ch = channel
        self.rec = recorder
        self.info = info
        self.audio = audio
        self.opt = options
        self.today = today
        self.horizon = horizon
        self.default_kind = "hangup"

    # -- the call ----------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            amd: str | None = None
            try:
                amd = await self.ch.get_variable(AMD_STATUS)
            finally:
                # the script only runs on an answered call: store that (and the outcome row the
                # steps fill) also when the subscriber is gone before the first command returns
                await self.rec.answered(self.info, amd)
            if await self.answering_machine(amd):
                return
            await self.greet()
            if not await self.verify_identity():
                return
            if self.info.purpose == THANKS_PURPOSE:
                await self.say_thanks()
                return
            await self.say_debt()
            await self.main_menu()
        except AGIHangup:
            log.info("attempt %s: subscriber hung up", self.info.attempt_id)
            await self.rec.step(self.info, "hangup", result="hangup")
        finally:
            await self.rec.finish(self.info, self.default_kind)

    # -- steps -------------------------------------------------------------------------------
    async def answering_machine(self, amd_status: str | None) -> bool:
        if (amd_status or "").upper() != "MACHINE":
            return False
        # a thank-you is for the person: a machine gets no message (a "please call us back"
        # about nothing would only worry them)
        leave_message = self.opt.machine_action == "message" and self.info.purpose != THANKS_PURPOSE
        await self.rec.machine(self.info, message_left=leave_message)
        self.default_kind = "machine"
        if leave_message:
            await self.play("machine")
        await self.rec.step(self.info, "machine", result="message" if leave_message else "hangup")
        await self.ch.hangup()
        return True

    async def greet(self) -> None:
        await self.play("greeting")
        await self.rec.step(self.info, "greet")

    async def verify_identity(self) -> bool:
        self.default_kind = "no_input"
        key = await self.choose("identity", "identity", K.IDENTITY_YES + K.IDENTITY_NO)
        if key == K.IDENTITY_YES:
            await self.rec.identity(self.info, confirmed=True)
            return True
        if key == K.IDENTITY_NO:
            await self.rec.wrong_party(self.info)
            self.default_kind = "wrong_party"
            await self.play("wrong_party")
            await self.ch.hangup()
            return False
        await self.goodbye_no_input()
        return False

    async def say_debt(self) -> None:
        await self.play("debt_message")
        await self.rec.message_delivered(self.info)
        self.default_kind = "message_only"
        await self.rec.step(self.info, "debt_message")

    async def say_thanks(self) -> None:
        """Issue 16: the thank-you (this call's message, template thank_you), then goodbye. No
        menu: the call asks nothing of the subscriber."""
        await self.play("debt_message")
        await self.rec.message_delivered(self.info)
        self.default_kind = "thanked"
        await self.rec.step(self.info, "thank_you")
        await self.ch.hangup()

    async def main_menu(self) -> None:
        valid = K.MENU_PROMISE + K.MENU_PAID + K.MENU_REASON + K.MENU_REPEAT + self.opt.human_key + self.opt.opt_out_key
        repeats = 0
        while True:
            key = await self.choose("menu", "menu", valid)
            if key is None:
                await self.goodbye_no_input()
                return
            if key == K.MENU_REPEAT and repeats < self.opt.max_tries:
                repeats += 1
                await self.say_debt()
                continue
            if key == K.MENU_REPEAT:
                await self.goodbye_no_input()
                return
            break
        if key == K.MENU_PROMISE:
            await self.promise()
        elif key == K.MENU_PAID:
            await self.paid_claim()
        elif key == K.MENU_REASON:
            await self.reason()
        elif self.opt.human_key and key == self.opt.human_key:
            await self.human_request()
        elif self.opt.opt_out_key and key == self.opt.opt_out_key:
            await self.opt_out()
        await self.close()

    async def promise(self) -> None:
        for attempt in range(1, self.opt.max_tries + 1):
            result = await self.ch.get_data(self.audio.get("date_entry"), self.opt.timeout_ms, K.PROMISE_MAX_DIGITS)
            digits = result.digits
            if not digits:
                await self.rec.step(self.info, "promise_date", result="no_input", detail=f"try {attempt}")
                await self.play("no_input")
                continue
            parsed = parse_promise(digits, self.today, self.horizon)
            if not parsed.ok or parsed.date is None:
                problem = parsed.problem or DateProblem.NOT_A_DATE
                await self.rec.step(self.info, "promise_date", digits, problem.value,
                                    detail=parsed.date.isoformat() if parsed.date else "")
                await self.play({DateProblem.NOT_A_DATE: "date_invalid", DateProblem.PAST: "date_past",
                                 DateProblem.BEYOND_HORIZON: "date_beyond_horizon"}[problem])
                continue
            await self.rec.step(self.info, "promise_date", digits, "ok", detail=parsed.date.isoformat())
            confirm = await self.choose("promise_confirm", self.audio.readbacks[parsed.date],
                                        K.CONFIRM_YES + K.CONFIRM_REENTER, raw_file=True)
            if confirm == K.CONFIRM_YES:
                await self.rec.promise(self.info, parsed.date)
                self.default_kind = "promise"
                log.info("attempt %s: promise to pay on %s", self.info.attempt_id, parsed.date)
                return
            if confirm is None:
                break
            # CONFIRM_REENTER: ask for the date again
        await self.goodbye_no_input()

    async def paid_claim(self) -> None:
        await self.rec.paid_claim(self.info, self.opt.paid_claim_grace_days)
        self.default_kind = "paid_claim"
        await self.rec.step(self.info, "paid_claim")
        await self.play("paid_thanks")

    async def reason(self) -> None:
        by_key = {key: (code, actionable) for key, code, actionable, _route in self.audio.reasons}
        key = await self.choose("reason", "reason_menu", "".join(by_key))
        code, actionable = by_key.get(key or "", (None, False))
        task_id = await self.rec.reason(self.info, code)
        self.default_kind = "reason"
        if code is None:
            await self.goodbye_no_input()
            return
        if actionable and task_id is not None:
            await self.play("callback_promise")
        elif code in self.audio.reason_replies:
            await self.ch.stream_file(self.audio.reason_replies[code])

    async def human_request(self) -> None:
        await self.rec.human_request(self.info, self.opt.human_queue)
        self.default_kind = "human_request"
        await self.rec.step(self.info, "human_request")
        await self.play("human_request")

    async def opt_out(self) -> None:
        await self.rec.opt_out(self.info)
        self.default_kind = "opt_out"
        await self.rec.step(self.info, "opt_out")
        log.info("attempt %s: %s opted out", self.info.attempt_id, mask_phone(self.info.phone))
        await self.play("opt_out_done")

    async def close(self) -> None:
        await self.play("closing")
        await self.rec.step(self.info, "close")
        await self.ch.hangup()

    async def goodbye_no_input(self) -> None:
        await self.play("goodbye_no_input")
        await self.ch.hangup()

    # -- helpers -----------------------------------------------------------------------------
    async def play(self, phrase: str) -> None:
        await self.ch.stream_file(self.audio.get(phrase))

    async def choose(self, step: str, phrase: str, valid: str, *, raw_file: bool = False) -> str | None:
        """Play a question (any key interrupts it), wait for a key, explain an invalid key or a
        silence and ask again, up to max_tries. Returns a valid key or None."""
        filename = phrase if raw_file else self.audio.get(phrase)
        for attempt in range(1, self.opt.max_tries + 1):
            key = await self.ch.stream_file(filename, K.ALL_KEYS)
            if key is None:
                key = await self.ch.wait_for_digit(self.opt.timeout_ms)
            if key is not None and key in valid:
                await self.rec.step(self.info, step, key, "ok")
                return key
            result = "no_input" if key is None else "invalid"
            await self.rec.step(self.info, step, key or "", result, detail=f"try {attempt}")
            if attempt < self.opt.max_tries:
                await self.play("no_input" if key is None else "invalid_key")
        return None
