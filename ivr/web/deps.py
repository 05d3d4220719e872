"""Collaborators the web app needs from the rest of the system, as small interfaces.

`ClickToCall` rings the operator's own phone and, once answered, the subscriber (Asterisk does the
bridging in the `ivr-operator` dialplan context). `AmiClickToCall` is the implementation over the
AMI client; the app gets None when no Asterisk is connected and says so on the page.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ivr import dialplan_vars
from ivr.clock import Clock, SystemClock
from ivr.config import Settings
from ivr.db.models import Account, AttemptState, CallAttempt, CallbackTask
from ivr.logsetup import mask_phone

log = logging.getLogger(__name__)


class ClickToCallError(RuntimeError):
    """The call could not be placed; the message is safe to show to the operator."""


class ClickToCall(Protocol):
    async def call(self, *, operator_phone: str, subscriber_phone: str, task_id: int, account_id: int,
                   operator_id: int | None = None, override_reason: str | None = None) -> str:
        """Originate the operator leg; returns the ActionID (also IVR_CALL_ID). `override_reason`
        is set when the operator called outside the subscriber's hours (kept on the attempt)."""
        ...


class AmiClickToCall:
    """Click-to-call over AMI Originate.

    Channel = the operator's phone (User.phone, e.g. PJSIP/101); when the operator answers, the
    `ivr-operator` context dials IVR_TARGET. A CallAttempt(purpose="operator") is written before
    the Originate is sent, like the dialer does, so the AMI event handlers can match its events.
    """

    def __init__(self, ami_client: Any, settings: Settings, *, sessions: sessionmaker[Session],
                 clock: Clock | None = None) -> None:
        self._ami = ami_client
        self._settings = settings
        self._sessions = sessions
        self._clock = clock or SystemClock()

    def _record(self, action_id: str, subscriber_phone: str, task_id: int, account_id: int,
                operator_id: int | None, override_reason: str | None) -> None:
        now = self._clock.now().astimezone(dt.UTC).replace(tzinfo=None)
        with self._sessions.begin() as session:
            task = session.get(CallbackTask, task_id)
            account = session.get(Account, account_id)
            phone_id = None
            if account is not None:
                phone_id = next((p.id for p in account.phones if p.number == subscriber_phone), None)
            session.add(CallAttempt(
                debt_case_id=task.debt_case_id if task else None, account_id=account_id,
                phone_number_id=phone_id, phone=subscriber_phone, purpose="operator",
                language=account.language if account else self._settings.default_language,
                action_id=action_id, state=AttemptState.CLAIMED.value, created_at=now,
                operator_id=operator_id, override_reason=override_reason,
            ))

    def _mark(self, action_id: str, state: str, result: str | None = None) -> None:
        now = self._clock.now().astimezone(dt.UTC).replace(tzinfo=None)
        with self._sessions.begin() as session:
            attempt = session.scalar(select(CallAttempt).where(CallAttempt.action_id == action_id))
            if attempt is None:
                return
            attempt.state = state
            if state == AttemptState.DIALING.value:
                attempt.originated_at = now
            if result is not None:
                attempt.result = result
                attempt.ended_at = now

    async def call(self, *, operator_phone: str, subscriber_phone: str, task_id: int, account_id: int,
                   operator_id: int | None = None, override_reason: str | None = None) -> str:
        from ivr.ami.client import AMIError, OriginateUnknown
        from ivr.ami.types import OriginateRequest

        if self._ami is None:
            raise ClickToCallError("no Asterisk connected")
        action_id = f"op-{uuid.uuid4().hex}"
        number = subscriber_phone.lstrip("+")
        request = OriginateRequest(
            action_id=action_id, channel=operator_phone, context=dialplan_vars.CONTEXT_OPERATOR,
            exten=number, priority=1, timeout_ms=self._settings.originate_timeout_ms,
            caller_id=self._settings.caller_id,
            variables={dialplan_vars.OPERATOR_TARGET: number, dialplan_vars.CALL_ID: action_id},
        )
        await asyncio.to_thread(self._record, action_id, subscriber_phone, task_id, account_id, operator_id,
                                override_reason)
        try:
            await self._ami.originate(request)
        except OriginateUnknown as exc:
            # the request reached Asterisk but its reply was lost: the phone may ring; do not
            # let the operator click again blindly
            await asyncio.to_thread(self._mark, action_id, AttemptState.UNKNOWN.value)
            raise ClickToCallError("the connection to Asterisk dropped while calling: your phone may still "
                                   "ring; wait a minute before trying again") from exc
        except AMIError as exc:
            log.warning("click-to-call for task %s failed: %s", task_id, exc)
            await asyncio.to_thread(self._mark, action_id, AttemptState.DONE.value, "failed")
            raise ClickToCallError(str(exc)) from exc
        await asyncio.to_thread(self._mark, action_id, AttemptState.DIALING.value)
        log.info("click-to-call %s: %s -> %s (task %s)", action_id, operator_phone,
                 mask_phone(subscriber_phone), task_id)
        return action_id
