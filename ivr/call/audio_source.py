"""Audio for a call: rendered before the originate (the dialer's prepare hook), handed to the call
script when Asterisk connects.

In one process the prepared CallAudio is kept in memory by call id. When the FastAGI server runs
in another process than the dialer, the script prepares again at call start: every file is
already in the audio cache by then, so that pass only renders text and finds files."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from ivr.call.dates import promise_horizon
from ivr.call.media_urls import audio_by_url
from ivr.call.recorder import CallInfo
from ivr.clock import Clock
from ivr.config import Settings
from ivr.db.models import Account, CallAttempt, DebtCase
from ivr.db.options import get_options
from ivr.voice.prepare import AudioPreparer, CallAudio

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedCall:
    audio: CallAudio
    options: dict[str, Any]
    today: dt.date
    horizon: dt.date


class CallAudioSource:
    def __init__(self, sessions: sessionmaker[Session], preparer: AudioPreparer, clock: Clock,
                 settings: Settings, *, keep: int = 5000) -> None:
        self._sessions = sessions
        self._preparer = preparer
        self._clock = clock
        self._settings = settings
        self._keep = keep
        self._ready: OrderedDict[str, PreparedCall] = OrderedDict()
        # one synthesis at a time: espeak-ng is CPU-bound and the machine has few cores
        self._lock = asyncio.Lock()

    @property
    def preparer(self) -> AudioPreparer:
        """The prompt store and audio cache it renders with (the web UI previews with the same)."""
        return self._preparer

    def _prepare_sync(self, session: Session, attempt: CallAttempt) -> PreparedCall:
        account = session.get(Account, attempt.account_id)
        case = session.get(DebtCase, attempt.debt_case_id) if attempt.debt_case_id else None
        if account is None or case is None:
            raise LookupError(f"attempt {attempt.id}: account or debt case missing")
        options = get_options(session)
        tz = account.timezone or self._settings.default_timezone
        try:
            today = self._clock.now().astimezone(ZoneInfo(tz)).date()
        except Exception:  # noqa: BLE001 - a bad zone in data must not stop the call
            today = self._clock.now().astimezone(ZoneInfo(self._settings.default_timezone)).date()
        horizon = promise_horizon(today, account.block_date,
                                  int(options["promise_horizon_days_after_block"]),
                                  int(options["promise_horizon_max_days"]))
        audio = self._preparer.prepare(session, account, case, attempt.stage_code or "", attempt.language,
                                       today, horizon=horizon, options=options)
        return PreparedCall(audio, options, today, horizon)

    def warm_up(self, languages: list[str] | None = None) -> int:
        """Render once, at start-up, the phrases every call of a language shares (menus, errors,
        closings, the read-back of every date a promise may name), so that the first call after
        an import waits only for its own few account phrases. Returns the phrases ready."""
        import time
        from decimal import Decimal
        from types import SimpleNamespace

        from sqlalchemy import select

        from ivr.db.models import LadderStage

        started = time.monotonic()
        ready = 0
        with self._sessions() as session:
            options = get_options(session)
            stage = session.scalars(select(LadderStage).where(LadderStage.active.is_(True))
                                    .order_by(LadderStage.position)).first()
            if stage is None:
                return 0
            langs = languages or list(dict.fromkeys([self._settings.default_language, *session.scalars(
                select(Account.language).distinct().limit(10))]))
            today = self._clock.now().astimezone(ZoneInfo(self._settings.default_timezone)).date()
            max_days = int(options["promise_horizon_max_days"])
            horizon = promise_horizon(today, None, int(options["promise_horizon_days_after_block"]), max_days)
            for language in dict.fromkeys(self._preparer.call_language(lang) for lang in langs if lang):
                # a stand-in subscriber: its own phrases are wasted, the shared ones are the point
                account = SimpleNamespace(holder_name="", balance=Decimal(0), currency=None, due_date=None,
                                          block_date=None, service_name="", tariff="", language=language)
                case = SimpleNamespace(amount_owed=Decimal(0), currency=None, opened_on=today,
                                       stage_code=stage.code, promise_broken=False, id=None)
                audio = self._preparer.prepare(session, account, case, stage.code, language, today,
                                               horizon=horizon, options=options)
                ready += len(audio.texts)
        log.info("audio warm-up: %d shared phrases ready in %.1fs", ready, time.monotonic() - started)
        return ready

    def _remember(self, call_id: str, prepared: PreparedCall) -> None:
        self._ready[call_id] = prepared
        self._ready.move_to_end(call_id)
        while len(self._ready) > self._keep:
            self._ready.popitem(last=False)

    async def prepare_attempt(self, attempt_id: int) -> None:
        """Dialer hook: render every phrase of this attempt's call before the originate."""

        def work() -> tuple[str, PreparedCall]:
            with self._sessions() as session:
                attempt = session.get(CallAttempt, attempt_id)
                if attempt is None:
                    raise LookupError(f"attempt {attempt_id} not found")
                return attempt.action_id, self._prepare_sync(session, attempt)

        async with self._lock:
            call_id, prepared = await asyncio.to_thread(work)
        self._remember(call_id, prepared)

    async def for_call(self, call_id: str, info: CallInfo) -> PreparedCall:
        return self._by_url(call_id, await self._for_call(call_id, info))

    def _by_url(self, call_id: str, prepared: PreparedCall) -> PreparedCall:
        """With IVR_AUDIO_BASE_URL, name every file by its URL (ivr.call.media_urls)."""
        base, secret = self._settings.audio_base_url, self._settings.web_secret
        if not base:
            return prepared
        if not secret:
            log.error("IVR_AUDIO_BASE_URL is set but IVR_WEB_SECRET is not: playing local file names")
            return prepared
        audio = audio_by_url(prepared.audio, base=base, secret=secret, call_id=call_id,
                             cache_root=self._settings.audio_cache_dir)
        return dataclasses.replace(prepared, audio=audio)

    async def _for_call(self, call_id: str, info: CallInfo) -> PreparedCall:
        prepared = self._ready.pop(call_id, None)
        if prepared is not None:
            return prepared
        log.info("attempt %s: audio not prepared in this process, preparing from the cache", info.attempt_id)

        def work() -> PreparedCall:
            with self._sessions() as session:
                attempt = session.get(CallAttempt, info.attempt_id)
                assert attempt is not None
                return self._prepare_sync(session, attempt)

        return await asyncio.to_thread(work)
