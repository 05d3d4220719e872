"""The FastAGI route table: the path of `agi://host:port/<route>` → the handler that runs it.
The dialplan (dialplan/ivr-robot.conf) calls `${IVR_AGI_URL}/debt-call` with the call id as
AGI argument 1."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ivr.agi import protocol as agi_protocol
from ivr.agi.channel import AGIChannel, AGICommandError, AGIHangup
from ivr.agi.ratelog import RateLimitedLog
from ivr.agi.server import Handler, host_allowed, parse_allow
from ivr.call.audio_source import CallAudioSource
from ivr.call.recorder import CallRecorder, CallRefused
from ivr.call.script import CallOptions, DebtCall
from ivr.call.writer import FactSink
from ivr.clock import Clock, SystemClock
from ivr.config import Settings
from ivr.dialplan_vars import ROUTE_DEBT_CALL
from ivr.wiring import Database

if TYPE_CHECKING:
    from ivr.voice.prepare import AudioPreparer

log = logging.getLogger(__name__)
_limited = RateLimitedLog(log)


class DebtCallRoute:
    def __init__(self, recorder: CallRecorder, audio: CallAudioSource) -> None:
        self.recorder = recorder
        self.audio = audio
        # call ids running in this process: a second connection for one of them is a replay
        # (before the dialer has stored the channel's uniqueid, `refusal` cannot tell)
        self._running: set[str] = set()

    async def __call__(self, channel: AGIChannel) -> None:
        call_id = (channel.args[0] if channel.args else "") or channel.query.get("call_id", "")
        if call_id in self._running:
            _limited.warning("refused", "debt-call from %s refused: call id %.64r is running already",
                             channel.peer or "?", call_id)
            await _end(channel, "ivr: call refused")
            return
        if call_id:
            self._running.add(call_id)
        try:
            await self._run(channel, call_id)
        finally:
            self._running.discard(call_id)

    async def _run(self, channel: AGIChannel, call_id: str) -> None:
        try:
            info = await self.recorder.load(call_id, uniqueid=channel.env.get(agi_protocol.ENV_UNIQUEID),
                                            peer=channel.peer) if call_id else None
        except CallRefused as exc:
            # a replayed or misrouted call id: nothing is written, the stored outcome stays
            _limited.warning("refused", "debt-call from %s refused: %s", channel.peer or "?", exc)
            await _end(channel, "ivr: call refused")
            return
        if info is None:
            _limited.warning("unknown", "debt-call from %s for unknown call id %.64r: hanging up", channel.peer or "?", call_id)
            await _end(channel, f"ivr: unknown call id {call_id}")
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

    def close(self) -> None:
        """At shutdown, after the last call: commit the facts still queued (see `close_routes`)."""
        self.recorder.close()


async def _end(channel: AGIChannel, message: str) -> None:
    try:
        await channel.verbose(message)
        await channel.hangup()
    except (AGIHangup, AGICommandError):
        pass


def agi_sources(settings: Settings) -> dict[str, Callable[[str], bool]]:
    """Asterisk server name -> test of a FastAGI peer address, for servers with IVR_AST_<NAME>_AGI_FROM."""
    out: dict[str, Callable[[str], bool]] = {}
    for server in settings.asterisk_servers:
        if server.agi_from:
            networks = parse_allow(server.agi_from)
            out[server.name] = lambda host, networks=networks: host_allowed(host, networks)  # type: ignore[misc]
    return out


def build_call_parts(settings: Settings, db: Database, clock: Clock | None = None, *,
                     writer: FactSink | None = None, own_writer: bool = False) -> tuple[CallRecorder, CallAudioSource]:
    """The recorder and audio source of the call script. `writer` is the process's call facts
    writer, started and closed by the caller (`ivr run`), or by the recorder with `own_writer`;
    without one the recorder starts a writer thread and closes it with `DebtCallRoute.close` or
    at process exit (classic AGI)."""
    clock = clock or SystemClock()

    def preparer() -> AudioPreparer:
        # built on first use: a call start that reads the dialer's manifest never renders, and a
        # classic AGI process then never imports Jinja2, pydub or the TTS engine
        from ivr.prompts.render import PromptStore
        from ivr.voice.cache import AudioCache
        from ivr.voice.prepare import AudioPreparer
        from ivr.voice.tts import get_engine

        store = PromptStore(settings.prompts_dir, db.sessions)
        cache = AudioCache(settings.audio_cache_dir, get_engine(settings))
        return AudioPreparer(store, cache, settings)

    recorder = CallRecorder(db.sessions, clock, settings.default_timezone, agi_sources=agi_sources(settings),
                            writer=writer, own_writer=own_writer)
    return recorder, CallAudioSource(db.sessions, preparer, clock, settings)


def build_routes(settings: Settings, db: Database, *, clock: Clock | None = None,
                 audio: CallAudioSource | None = None, recorder: CallRecorder | None = None,
                 facts_writer: str = "thread") -> Mapping[str, Handler]:
    """The call script's routes. `facts_writer="process"` (`ivr agi-server`) stores the call facts
    from a writer process of its own (ivr.call.writer_process), as `ivr run` does: as a thread,
    the writer's SQLAlchemy and driver work held most of the GIL the event loop needs (on
    PostgreSQL 71 % of it in a py-spy profile at 70 calls/s). Classic AGI, one process per call,
    keeps the thread."""
    if audio is None or recorder is None:
        writer = None
        if facts_writer == "process":
            from ivr.runtime import start_facts_writer

            writer = start_facts_writer(db.engine, in_process=False)
        recorder, audio = build_call_parts(settings, db, clock, writer=writer, own_writer=writer is not None)
    routes: dict[str, Any] = {ROUTE_DEBT_CALL: DebtCallRoute(recorder, audio)}
    return routes
