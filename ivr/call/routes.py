"""The FastAGI route table: the path of `agi://host:port/<route>` → the handler that runs it.
The dialplan (dialplan/ivr-robot.conf) calls `${IVR_AGI_URL}/debt-call` with the call id as
AGI argument 1."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ivr.agi.channel import AGIChannel, AGIHangup
from ivr.agi.server import Handler
from ivr.call.audio_source import CallAudioSource
from ivr.call.recorder import CallRecorder
from ivr.call.script import CallOptions, DebtCall
from ivr.clock import Clock, SystemClock
from ivr.config import Settings
from ivr.dialplan_vars import ROUTE_DEBT_CALL
from ivr.wiring import Database

log = logging.getLogger(__name__)


class DebtCallRoute:
    def __init__(self, recorder: CallRecorder, audio: CallAudioSource) -> None:
        self.recorder = recorder
        self.audio = audio

    async def __call__(self, channel: AGIChannel) -> None:
        call_id = (channel.args[0] if channel.args else "") or channel.query.get("call_id", "")
        info = await self.recorder.load(call_id) if call_id else None
        if info is None:
            log.warning("debt-call for unknown call id %r: hanging up", call_id)
            try:
                await channel.verbose(f"ivr: unknown call id {call_id}")
                await channel.hangup()
            except AGIHangup:
                pass
            return
        try:
            prepared = await self.audio.for_call(call_id, info)
        except Exception:
            # Without audio the robot cannot speak; store the attempt as answered and end it
            # rather than leaving the subscriber in silence.
            log.exception("attempt %s: audio could not be prepared", info.attempt_id)
            await self.recorder.answered(info, None)
            await self.recorder.finish(info, "hangup")
            try:
                await channel.hangup()
            except AGIHangup:
                pass
            return
        call = DebtCall(channel, self.recorder, info, prepared.audio, CallOptions.from_options(prepared.options),
                        today=prepared.today, horizon=prepared.horizon)
        await call.run()


def build_call_parts(settings: Settings, db: Database, clock: Clock | None = None) -> tuple[CallRecorder, CallAudioSource]:
    from ivr.prompts.render import PromptStore
    from ivr.voice.cache import AudioCache
    from ivr.voice.prepare import AudioPreparer
    from ivr.voice.tts import get_engine

    clock = clock or SystemClock()
    store = PromptStore(settings.prompts_dir, db.sessions)
    cache = AudioCache(settings.audio_cache_dir, get_engine(settings))
    preparer = AudioPreparer(store, cache, settings)
    recorder = CallRecorder(db.sessions, clock, settings.default_timezone)
    return recorder, CallAudioSource(db.sessions, preparer, clock, settings)


def build_routes(settings: Settings, db: Database, *, clock: Clock | None = None,
                 audio: CallAudioSource | None = None, recorder: CallRecorder | None = None) -> Mapping[str, Handler]:
    if audio is None or recorder is None:
        recorder, audio = build_call_parts(settings, db, clock)
    routes: dict[str, Any] = {ROUTE_DEBT_CALL: DebtCallRoute(recorder, audio)}
    return routes
