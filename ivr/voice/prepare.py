"""Everything a call may play, rendered to audio before the call is placed.

The call script never waits for speech synthesis: AudioPreparer.prepare() renders every phrase
of the script (the stage's debt message, menus, errors, closings), the readback of every date
the subscriber may key in (today .. horizon) and the reply of every reason, and returns the
Asterisk file names. Phrases that do not depend on the account (menus, readbacks) have the same
text for everybody and come straight from the AudioCache after the first call.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.config import Settings
from ivr.db.models import LadderStage, Promise, Reason
from ivr.dialer.thanks import THANK_YOU_TEMPLATE, THANKS_STAGE
from ivr.prompts import CALL_PHRASES, OPTIONAL_TEMPLATES
from ivr.prompts.context import build_context, with_promise_date
from ivr.prompts.fragments import spans_from_context
from ivr.prompts.render import MissingTemplate, PromptStore, ResolvedTemplate, TemplateProblem
from ivr.voice.audio import AudioError
from ivr.voice.cache import AudioCache
from ivr.voice.call_audio import BROKEN_PROMISE, DEBT_MESSAGE, READBACK, CallAudio
from ivr.voice.compose import PhraseVoice
from ivr.voice.pack import pack_from_settings

log = logging.getLogger(__name__)

__all__ = ["BROKEN_PROMISE", "DEBT_MESSAGE", "READBACK", "AudioPreparer", "CallAudio", "synthesise_all"]

_POOL: ThreadPoolExecutor | None = None


def synthesise_all(cache: AudioCache, texts: Sequence[str], language: str) -> None:
    """Make sure every text is in the cache, synthesising the missing ones concurrently."""
    global _POOL
    missing = list(dict.fromkeys(t for t in texts if not cache.has(t, language)))
    if len(missing) <= 1:
        return
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1), thread_name_prefix="tts")
    for _ in _POOL.map(lambda text: cache.path_for(text, language), missing):
        pass


class AudioPreparer:
    def __init__(self, store: PromptStore, cache: AudioCache, settings: Settings, voice: PhraseVoice | None = None) -> None:
        self.store = store
        self.cache = cache
        self.settings = settings
        # amounts and dates from the voice pack IVR_VOICE_PACK names (none: all synthetic)
        self.voice = voice or PhraseVoice(cache, pack_from_settings(settings, cache.engine))

    def call_language(self, language: str | None) -> str:
        """The account's language if there are templates for it, else the default language."""
        available = self.store.languages()
        if language in available:
            return str(language)
        if language:
            log.warning("no prompts for language %r, using %r", language, self.settings.default_language)
        return self.settings.default_language

    def message_name(self, session: Session, case: Any, stage_code: str) -> str:
        if stage_code == THANKS_STAGE:  # issue 16: a thank-you call after a payment
            return THANK_YOU_TEMPLATE
        if case is not None and getattr(case, "promise_broken", False):
            return BROKEN_PROMISE
        stage = session.scalars(select(LadderStage).where(LadderStage.code == stage_code)).first()
        if stage is None:
            raise ValueError(f"unknown ladder stage {stage_code!r}")
        return stage.prompt

    def prepare(
        self,
        session: Session,
        account: Any,
        case: Any,
        stage_code: str,
        language: str,
        today: dt.date,
        *,
        horizon: dt.date,
        options: Mapping[str, Any],
    ) -> CallAudio:
        language = self.call_language(language)
        message = self.message_name(session, case, stage_code)
        reasons = list(
            session.scalars(select(Reason).where(Reason.active.is_(True)).order_by(Reason.position, Reason.id))
        )
        context = build_context(
            settings=self.settings, account=account, case=case, language=language, today=today,
            stage_code=stage_code, reasons=reasons, options=options,
            promise_date=self._missed_promise_date(session, case) if message == BROKEN_PROMISE else None,
            deadline=horizon,
        )
        names = [*CALL_PHRASES, message, READBACK]
        templates = self.store.resolve_all(names, language, stage_code, session)
        for name in names:
            if name not in templates and name not in OPTIONAL_TEMPLATES:
                raise MissingTemplate(name, None, f"no override and no file {self.store.file_path(name, language)}", language)

        audio = CallAudio(language=language, phrases={}, readbacks={}, reason_replies={},
                          reasons=[(r.key, r.code, r.actionable, r.route) for r in reasons], message_name=message)
        # text -> fragment ids of the amount and the dates a phrase may say (the voice pack's part)
        spans: dict[str, Mapping[str, Sequence[str]]] = {}
        conjunction = self.voice.conjunction
        phrase_spans = spans_from_context(context, conjunction=conjunction)
        for name in [*CALL_PHRASES, message]:
            if name in templates:
                audio.texts[name] = self._render(templates[name], context)
                spans[name] = phrase_spans
        readback = templates[READBACK]
        day = today
        while day <= horizon:
            day_context = with_promise_date(context, day)
            key = f"readback:{day.isoformat()}"
            audio.texts[key] = self._render(readback, day_context)
            spans[key] = spans_from_context(day_context, conjunction=conjunction)
            day += dt.timedelta(days=1)
        # Synthesis is a process per phrase (espeak-ng): the phrases missing from the cache are
        # made side by side on every core, so a call's first preparation (dozens of date
        # read-backs) does not hold the first call back for long. With a voice pack only the
        # parts it does not say are synthesised.
        spoken = [part for key, text in audio.texts.items()
                  if not (key in templates and templates[key].recording_path)
                  for part in self.voice.synthetic_texts(text, language, spans.get(key))]
        synthesise_all(self.cache, spoken, language)
        for name in [*CALL_PHRASES, message]:
            if name in templates:
                audio.phrases[name] = self._audio_for(templates[name], audio.texts[name], language, spans[name])
        audio.phrases[DEBT_MESSAGE] = audio.phrases[message]
        audio.texts[DEBT_MESSAGE] = audio.texts[message]
        day = today
        while day <= horizon:
            key = f"readback:{day.isoformat()}"
            audio.readbacks[day] = self.cache.asterisk_name(self.voice.path_for(audio.texts[key], language, spans[key]))
            day += dt.timedelta(days=1)

        for reason in reasons:
            body = (reason.replies or {}).get(language, "").strip()
            if not body:
                continue
            try:
                text = self.store.render_string(body, language, context, name=f"reason {reason.code} reply")
            except TemplateProblem as problem:  # a broken reply must not cost the whole call
                log.error("reason reply skipped: %s", problem)
                continue
            audio.texts[f"reply:{reason.code}"] = text
            audio.reason_replies[reason.code] = self.cache.asterisk_name(self.voice.path_for(text, language, phrase_spans))
        return audio

    def _render(self, template: ResolvedTemplate, context: Mapping[str, Any]) -> str:
        try:
            return self.store.render_string(template.body, template.language, context, template.name)
        except TemplateProblem as problem:
            if template.origin != "db":
                raise
            # An admin's override that fails at call time (it was validated on save, but data can
            # still surprise it) falls back to the shipped file rather than silencing the call.
            log.error("override failed, using the file template: %s", problem)
            body = self.store.file_source(template.name, template.language)
            return self.store.render_string(body, template.language, context, template.name)

    def _audio_for(self, template: ResolvedTemplate, text: str, language: str,
                   spans: Mapping[str, Sequence[str]] | None = None) -> str:
        if template.recording_path:
            src = Path(template.recording_path)
            if not src.is_absolute():
                src = self.settings.recordings_dir / src
            try:
                return self.cache.asterisk_name(self.cache.use_recording(src))
            except AudioError as exc:
                log.error("recording for %s (%s) unusable, using speech: %s", template.name, language, exc)
        return self.cache.asterisk_name(self.voice.path_for(text, language, spans))

    @staticmethod
    def _missed_promise_date(session: Session, case: Any) -> dt.date | None:
        """The date of the case's most recent broken promise (what broken_promise reminds of)."""
        case_id = getattr(case, "id", None)
        if case_id is None:
            return None
        return session.scalars(
            select(Promise.promised_date)
            .where(Promise.debt_case_id == case_id, Promise.status == "broken")
            .order_by(Promise.promised_date.desc(), Promise.id.desc())
        ).first()
