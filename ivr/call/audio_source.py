"""Audio for a call: rendered before the originate (the dialer's prepare hook), handed to the call
script when Asterisk connects.

The dialer prepares once (`prepare_attempt`): in one process the PreparedCall is kept in memory
by call id, and for every other process (`ivr agi-server`, classic AGI) it is written as the
call's manifest (ivr.call.manifest). The call start takes the in-memory one, else reads the
manifest (one small file, no rendering, no hashing, no stat per phrase), and only if there is
none or it is stale prepares again from the cache (logged once per kind of reason, counted in
`fallbacks`).

The renderer (Jinja2 templates, the audio cache, pydub) is built on first use only: a call start
that reads a manifest never imports it, which is most of a classic AGI process's start-up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
from collections import Counter, OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from ivr.call import manifest
from ivr.call.dates import promise_horizon
from ivr.call.manifest import PreparedCall
from ivr.call.media_urls import audio_by_url
from ivr.call.recorder import CallInfo
from ivr.clock import Clock
from ivr.config import Settings
from ivr.db.models import Account, CallAttempt, DebtCase
from ivr.db.options import get_options

if TYPE_CHECKING:
    from ivr.voice.prepare import AudioPreparer

log = logging.getLogger(__name__)

__all__ = ["CallAudioSource", "PreparedCall"]

# threads for a call start's file reads (the manifest, the message file's existence): their own,
# so a slow disk cannot hold up the recorder's database work in the loop's default executor
FILE_READ_THREADS = 4


class CallAudioSource:
    def __init__(self, sessions: sessionmaker[Session], preparer: AudioPreparer | Callable[[], AudioPreparer],
                 clock: Clock, settings: Settings, *, keep: int = 5000,
                 versions: manifest.ContentVersions | None = None) -> None:
        self._sessions = sessions
        # an AudioPreparer, or a factory for one: built on first use (see the module docstring)
        self._preparer_or_factory = preparer
        self._preparer_built: AudioPreparer | None = None
        self._clock = clock
        self._settings = settings
        self._keep = keep
        self._ready: OrderedDict[str, PreparedCall] = OrderedDict()
        # one synthesis at a time: espeak-ng is CPU-bound and the machine has few cores
        self._lock = asyncio.Lock()
        self.versions = versions or manifest.ContentVersions(sessions, settings)
        self.fallbacks: Counter[str] = Counter()  # call starts that prepared, by reason kind
        self._fallback_logged: set[str] = set()
        # threads start on the first read (a classic AGI process that uses the in-memory path never starts one)
        self._file_reads = ThreadPoolExecutor(FILE_READ_THREADS, thread_name_prefix="ivr-call-files")

    @property
    def preparer(self) -> AudioPreparer:
        """The prompt store and audio cache it renders with (the web UI previews with the same)."""
        if self._preparer_built is None:
            candidate = self._preparer_or_factory
            from ivr.voice.prepare import AudioPreparer

            self._preparer_built = candidate if isinstance(candidate, AudioPreparer) else candidate()
        return self._preparer_built

    @property
    def _preparer(self) -> AudioPreparer:
        return self.preparer

    def _prepare_sync(self, session: Session, attempt: CallAttempt, *, write_manifest: bool = False) -> PreparedCall:
        account = session.get(Account, attempt.account_id)
        case = session.get(DebtCase, attempt.debt_case_id) if attempt.debt_case_id else None
        if account is None or case is None:
            raise LookupError(f"attempt {attempt.id}: account or debt case missing")
        fingerprint = None
        if write_manifest:
            # before rendering: an edit landing while this renders makes the manifest stale
            # (the call start prepares), never a manifest that claims the new content
            fingerprint = manifest.fingerprint(session, self._settings, self._preparer.call_language(attempt.language))
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
        prepared = PreparedCall(audio, options, today, horizon)
        if fingerprint is not None:
            self._write_manifest(attempt.action_id, prepared, fingerprint)
        return prepared

    def _write_manifest(self, call_id: str, prepared: PreparedCall, fingerprint: str) -> None:
        """Best effort: without a manifest the call start prepares (slower, same audio)."""
        try:
            data = manifest.encode(prepared, call_id=call_id, fingerprint=fingerprint)
            manifest.write(self._settings.audio_cache_dir, call_id, prepared.today, data)
        except (OSError, TypeError, ValueError) as exc:
            log.warning("audio manifest of %s not written (the call start will prepare): %s", call_id, exc)

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
                return attempt.action_id, self._prepare_sync(session, attempt, write_manifest=True)

        async with self._lock:
            call_id, prepared = await asyncio.to_thread(work)
        self._remember(call_id, prepared)

    async def for_call(self, call_id: str, info: CallInfo) -> PreparedCall:
        prepared = await self._for_call(call_id, info)
        if not self._settings.audio_base_url:
            return prepared
        # Path.resolve of every file name is file-system work: off the loop, as the manifest read
        return await asyncio.get_running_loop().run_in_executor(self._file_reads, self._by_url, call_id, prepared)

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
        try:
            prepared = await self._from_manifest(call_id, info)
        except manifest.ManifestUnusable as exc:
            self._fallback(exc.kind, info, str(exc))
        else:
            if prepared is not None:
                return prepared

        def work() -> PreparedCall:
            with self._sessions() as session:
                attempt = session.get(CallAttempt, info.attempt_id)
                assert attempt is not None
                return self._prepare_sync(session, attempt)

        return await asyncio.to_thread(work)

    async def _from_manifest(self, call_id: str, info: CallInfo) -> PreparedCall | None:
        """The manifest's PreparedCall; None (logged) if there is none; ManifestUnusable if stale."""
        try:
            today = self._clock.now().astimezone(ZoneInfo(info.timezone)).date()
        except Exception:  # noqa: BLE001 - as in _prepare_sync
            today = self._clock.now().astimezone(ZoneInfo(self._settings.default_timezone)).date()
        loaded = await asyncio.get_running_loop().run_in_executor(
            self._file_reads, self._read_manifest, call_id, today)
        if loaded is None:
            self._fallback("missing", info, "no audio manifest (not staged by a dialer, or staged on another day)")
            return None
        doc, prepared = loaded
        current = await self.versions.current(prepared.audio.language)
        if current != doc.get("fingerprint"):
            raise manifest.ManifestUnusable(
                "stale", "templates, overrides, reasons or options changed since the dialer prepared the call")
        return prepared

    def _read_manifest(self, call_id: str, today: dt.date) -> tuple[dict[str, Any], PreparedCall] | None:
        """A call start's blocking file work, on the file-read threads, never on the event loop.

        A manifest is a few KB, usually in the page cache, but not always: it may have been staged
        hours earlier and evicted, and a disk busy with an import's writes makes a cold read wait.
        Read on the loop, such a read stopped every call in the process for its duration:
        scripts/bench_run_upload.py showed whole-process stalls of 0.1-1.6 s, and a kernel-stack
        sampler caught the loop thread in read() waiting for the page (folio_wait_bit_common)."""
        doc = manifest.read(self._settings.audio_cache_dir, call_id, today)
        if doc is None:
            return None
        prepared = manifest.decode(doc)
        if prepared.today != today:  # a bad time zone name at staging vs now: be safe
            raise manifest.ManifestUnusable("stale", f"manifest made for {prepared.today}, the call is on {today}")
        if not os.path.exists(prepared.audio.message + ".wav"):
            raise manifest.ManifestUnusable("purged", "the debt message's audio file is gone from the cache")
        return doc, prepared

    def _fallback(self, kind: str, info: CallInfo, why: str) -> None:
        self.fallbacks[kind] += 1
        if kind in self._fallback_logged:
            log.debug("attempt %s: %s; preparing the audio at call start", info.attempt_id, why)
            return
        self._fallback_logged.add(kind)
        log.warning("attempt %s: %s; preparing the audio at call start (logged once per process for this "
                    "reason, later ones at DEBUG)", info.attempt_id, why)
