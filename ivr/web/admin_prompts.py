"""Admin pages for what the robot says: prompt templates per name (call step), language and
ladder stage; edit with validation (a refused template is never saved), preview with a sample or
a real account as text and as audio, and a recorded WAV per phrase."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import tempfile
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from ivr.db.models import Account, DebtCase, LadderStage, PromptTemplate, Reason
from ivr.db.options import get_options
from ivr.web import i18n
from ivr.web.card import account_zone
from ivr.web.common import (
    WebContext,
    checked_form,
    ctx,
    flash,
    form_str,
    in_db,
    redirect,
    render,
    require,
    t,
)

log = logging.getLogger(__name__)

MAX_RECORDING_BYTES = 20 * 1024 * 1024
_PREVIEW_SLOTS = 256
_OPEN_STATES = ("active", "promised", "blocked")


# --- collaborators (built on first use from Settings unless the app was given them) ----------

def prompt_store(web: WebContext) -> Any:
    if web.prompt_store is None:
        from ivr.prompts.render import PromptStore

        web.prompt_store = PromptStore(web.settings.prompts_dir, web.sessions)
    return web.prompt_store


def audio_cache(web: WebContext) -> Any:
    if web.audio_cache is None:
        from ivr.voice.cache import AudioCache
        from ivr.voice.tts import get_engine

        web.audio_cache = AudioCache(web.settings.audio_cache_dir, get_engine(web.settings))
    return web.audio_cache


def phrase_voice(web: WebContext) -> Any:
    """The cache's PhraseVoice with the pack IVR_VOICE_PACK names (ivr.voice.compose)."""
    if web.phrase_voice is None:
        from ivr.voice.compose import PhraseVoice
        from ivr.voice.pack import pack_from_settings

        cache = audio_cache(web)
        web.phrase_voice = PhraseVoice(cache, pack_from_settings(web.settings, cache.engine))
    return web.phrase_voice


def _previews(web: WebContext) -> OrderedDict[str, tuple[str, str]]:
    """digest -> (text, language) of recent previews: the page links the audio by digest and the
    audio is synthesised when the browser asks for it, so the page itself never waits for TTS."""
    return web.previews


def register_preview(web: WebContext, text: str, language: str, spans: dict[str, list[str]] | None = None) -> str:
    """spans: the voice-pack spans of the text (amount and dates -> fragment ids), if any."""
    key = f"{language}\0{text}\0{sorted((spans or {}).items())}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    store = _previews(web)
    store[digest] = (text, language)
    store.move_to_end(digest)
    if spans:
        web.preview_spans[digest] = spans
    while len(store) > _PREVIEW_SLOTS:
        old, _entry = store.popitem(last=False)
        web.preview_spans.pop(old, None)
    return digest


# --- listing ------------------------------------------------------------------------------------

def _names_and_languages(web: WebContext, session: Session) -> tuple[list[str], list[str], dict[str, str]]:
    from ivr.prompts import TEMPLATE_DOC, TEMPLATE_NAMES

    store = prompt_store(web)
    languages = store.languages() or ["ru", "uk", "en"]
    names = list(TEMPLATE_NAMES)
    extra = set(session.scalars(select(PromptTemplate.name).distinct()))
    for lang in languages:
        extra.update(store.file_names(lang))
    names += sorted(extra - set(names))
    return names, languages, dict(TEMPLATE_DOC)


def _stages(session: Session) -> list[str]:
    return list(session.scalars(select(LadderStage.code).order_by(LadderStage.position)))


async def prompts_page(request: Request) -> Response:
    await require(request, "admin")
    web = ctx(request)

    def load(session: Session) -> dict[str, Any]:
        names, languages, docs = _names_and_languages(web, session)
        overrides: dict[tuple[str, str], list[PromptTemplate]] = {}
        for row in session.scalars(select(PromptTemplate).order_by(PromptTemplate.stage_code)):
            overrides.setdefault((row.name, row.language), []).append(row)
        files = {lang: set(prompt_store(web).file_names(lang)) for lang in languages}
        return {"names": names, "voice_languages": languages, "docs": docs, "overrides": overrides, "files": files,
                "stages": _stages(session)}

    return render(request, "admin/prompts.html", await in_db(request, load))


# --- editor -------------------------------------------------------------------------------------

def _target(params: Any) -> tuple[str, str, str | None]:
    name = str(params.get("name", "")).strip()
    lang = str(params.get("lang", "")).strip()
    stage = str(params.get("stage", "")).strip() or None
    return name, lang, stage


def _exact_override(session: Session, name: str, lang: str, stage: str | None) -> PromptTemplate | None:
    stage_filter = PromptTemplate.stage_code.is_(None) if stage is None else PromptTemplate.stage_code == stage
    return session.scalar(select(PromptTemplate).where(PromptTemplate.name == name, PromptTemplate.language == lang,
                                                       stage_filter))


def _sample_account(settings: Any, today: dt.date) -> SimpleNamespace:
    return SimpleNamespace(
        holder_name="Иванов Иван Иванович", service_name="охрана квартиры", tariff="Базовый",
        balance=1800.50, currency=settings.default_currency, due_date=today - dt.timedelta(days=8),
        block_date=today + dt.timedelta(days=7), external_id="",
    )


def preview_context(web: WebContext, session: Session, lang: str, stage: str | None, external_id: str) -> tuple[dict[str, Any], str]:
    """A render context for a real account (by external id) or the built-in sample; returns the
    context and a label of what was used. Raises LookupError for an unknown account."""
    from ivr.prompts.context import build_context, promise_horizon

    options = get_options(session)
    reasons = list(session.scalars(select(Reason).where(Reason.active.is_(True)).order_by(Reason.position, Reason.key)))
    case = None
    if external_id:
        account: Any = session.scalar(select(Account).where(Account.external_id == external_id))
        if account is None:
            raise LookupError(external_id)
        today = web.now().astimezone(account_zone(account, web.settings.default_timezone)).date()
        case = session.scalar(select(DebtCase).where(DebtCase.account_id == account.id, DebtCase.state.in_(_OPEN_STATES))
                              .order_by(DebtCase.id.desc()).limit(1))
        label = f"{account.external_id} — {account.holder_name}"
    else:
        today = web.today()
        account = _sample_account(web.settings, today)
        label = ""
    context = build_context(
        settings=web.settings, account=account, case=case, language=lang, today=today, stage_code=stage,
        reasons=reasons, options=options, promise_date=today + dt.timedelta(days=3),
        deadline=promise_horizon(today, account.block_date, options),
    )
    return context, label


async def _editor(request: Request, name: str, lang: str, stage: str | None, *, body: str | None = None,
                  error: str = "", preview: dict[str, Any] | None = None, account: str = "",
                  status_code: int = 200) -> Response:
    from ivr.prompts.context import CONTEXT_DOC
    from ivr.prompts.render import FILTERS, MissingTemplate

    web = ctx(request)
    store = prompt_store(web)

    def load(session: Session) -> dict[str, Any]:
        try:
            resolved = store.resolve(name, lang, stage, session)
        except MissingTemplate:
            resolved = None  # a missing file is fine: the admin is about to write the template
        row = _exact_override(session, name, lang, stage)
        _names, languages, docs = _names_and_languages(web, session)
        return {
            "body": body if body is not None else (resolved.body if resolved else ""),
            "origin": resolved.origin if resolved else "",
            "has_override": row is not None, "recording": bool(row and row.recording_path),
            "updated_by": row.updated_by if row else "", "updated_at": row.updated_at if row else None,
            "stages": _stages(session), "voice_languages": languages, "doc": docs.get(name, ""),
            "accounts": list(session.scalars(select(Account.external_id).order_by(Account.id).limit(50))),
        }

    data = await in_db(request, load)
    query = urlencode({"name": name, "lang": lang, "stage": stage or ""})
    return render(request, "admin/prompt_edit.html", {
        **data, "name": name, "tlang": lang, "stage": stage or "", "error": error, "preview": preview,
        "account": account, "variables": CONTEXT_DOC, "filters": sorted(FILTERS), "query": query,
    }, status_code=status_code)


async def prompt_edit(request: Request) -> Response:
    await require(request, "admin")
    name, lang, stage = _target(request.query_params)
    _check_target(request, name, lang)
    return await _editor(request, name, lang, stage)


def _check_target(request: Request, name: str, lang: str) -> None:
    from ivr.prompts.render import TemplateProblem

    try:
        prompt_store(ctx(request)).file_path(name, lang)
    except TemplateProblem as exc:
        raise HTTPException(400, problem_text(request, exc)) from None


def problem_text(request: Request, exc: Any) -> str:
    """A TemplateProblem in the page's language: where (template, language, line) and what, from
    the catalogue (tpl_err_*); Jinja's own message, which is English and cannot be translated, is
    quoted as its detail."""
    where = f"{exc.name} ({exc.language})" if exc.language else exc.name
    if exc.line is not None:
        where += t(request, "tpl_err_line", line=exc.line)
    if not exc.key or not i18n.has_key(f"tpl_err_{exc.key}"):
        return f"{where}: {exc.message}"
    text = t(request, f"tpl_err_{exc.key}", **exc.params)
    if exc.detail:
        text += f" ({t(request, 'tpl_err_detail', detail=exc.detail)})"
    return f"{where}: {text}"


async def prompt_save(request: Request) -> Response:
    """Save, or preview without saving (action=preview). Either way the body is validated first;
    a template with a problem is shown again with the problem and is NOT saved."""
    from ivr.prompts.render import TemplateProblem

    user = await require(request, "admin")
    form = await checked_form(request)
    web = ctx(request)
    name, lang, stage = _target(form)
    _check_target(request, name, lang)
    body = str(form.get("body", "")).replace("\r\n", "\n")
    action = form_str(form, "action") or "save"
    account = form_str(form, "account")
    store = prompt_store(web)
    try:
        await run_in_threadpool(store.validate, body, name, lang)
    except TemplateProblem as exc:
        log.info("template %s/%s/%s refused: %s", name, lang, stage, exc)
        return await _editor(request, name, lang, stage, body=body, error=problem_text(request, exc), account=account, status_code=400)

    if action == "preview":
        return await _preview_response(request, name, lang, stage, body, account)

    def save(session: Session) -> None:
        row = _exact_override(session, name, lang, stage)
        if row is None:
            session.add(PromptTemplate(name=name, language=lang, stage_code=stage, body=body, updated_by=user.username))
        else:
            row.body = body
            row.updated_by = user.username

    await in_db(request, save)
    log.info("template %s/%s/%s saved by %s", name, lang, stage or "*", user.username)
    flash(request, t(request, "msg_template_saved"), "ok")
    return redirect("/admin/prompts/edit?" + urlencode({"name": name, "lang": lang, "stage": stage or ""}))


async def _preview_response(request: Request, name: str, lang: str, stage: str | None, body: str,
                            account: str) -> Response:
    from ivr.prompts.render import TemplateProblem

    web = ctx(request)
    store = prompt_store(web)

    def build(session: Session) -> tuple[dict[str, Any], str]:
        return preview_context(web, session, lang, stage, account)

    try:
        context, label = await in_db(request, build)
        text = await run_in_threadpool(store.render_string, body, lang, context, name)
    except LookupError:
        return await _editor(request, name, lang, stage, body=body, account=account,
                             error=t(request, "err_account_unknown", value=account), status_code=400)
    except TemplateProblem as exc:
        return await _editor(request, name, lang, stage, body=body, account=account, error=problem_text(request, exc), status_code=400)
    try:
        parts, spans, pack_name = await run_in_threadpool(_voice_parts, web, text, lang, context)
    except Exception as exc:  # a broken pack or missing engine must not cost the text preview
        log.error("voice-pack preview failed: %s", exc)
        parts, spans, pack_name = [], {}, ""
    digest = register_preview(web, text, lang, spans)
    preview = {"text": text, "audio_url": f"/admin/audio/{digest}", "account_label": label, "parts": parts,
               "pack": pack_name}
    return await _editor(request, name, lang, stage, body=body, preview=preview, account=account)


def _voice_parts(web: WebContext, text: str, lang: str, context: dict[str, Any]) -> tuple[list[dict[str, str]], dict[str, list[str]], str]:
    """Which parts of the preview the voice pack says (recorded) and which espeak-ng does."""
    from ivr.prompts.fragments import spans_from_context
    from ivr.voice.compose import describe

    voice = phrase_voice(web)
    if voice.pack is None:
        return [], {}, ""
    spans = spans_from_context(context, conjunction=voice.conjunction)
    return describe(voice.plan(text, lang, spans)), spans, str(voice.pack.name)


async def prompt_preview(request: Request) -> Response:
    """Preview of the template in effect (GET, no change)."""
    await require(request, "admin")
    name, lang, stage = _target(request.query_params)
    _check_target(request, name, lang)
    account = request.query_params.get("account", "").strip()
    source = await run_in_threadpool(prompt_store(ctx(request)).source, name, lang, stage)
    return await _preview_response(request, name, lang, stage, source, account)


async def prompt_reset(request: Request) -> Response:
    user = await require(request, "admin")
    form = await checked_form(request)
    name, lang, stage = _target(form)

    def remove(session: Session) -> None:
        row = _exact_override(session, name, lang, stage)
        if row is not None:
            session.delete(row)

    await in_db(request, remove)
    log.info("template override %s/%s/%s removed by %s", name, lang, stage or "*", user.username)
    flash(request, t(request, "msg_template_reset"), "ok")
    return redirect("/admin/prompts/edit?" + urlencode({"name": name, "lang": lang, "stage": stage or ""}))


# --- audio --------------------------------------------------------------------------------------

async def preview_audio(request: Request) -> Response:
    await require(request, "admin")
    web = ctx(request)
    entry = _previews(web).get(str(request.path_params["digest"]))
    if entry is None:
        raise HTTPException(404, t(request, "err_preview_expired"))
    text, lang = entry
    spans = web.preview_spans.get(str(request.path_params["digest"]))
    try:
        if spans:
            path = await run_in_threadpool(phrase_voice(web).path_for, text, lang, spans)
        else:
            path = await run_in_threadpool(audio_cache(web).path_for, text, lang)
    except Exception as exc:  # a missing TTS engine must not look like a broken page
        log.error("audio preview failed: %s", exc)
        raise HTTPException(503, t(request, "err_tts", reason=str(exc))) from None
    return FileResponse(path, media_type="audio/wav")


def _is_wav(data: bytes) -> bool:
    return len(data) > 44 and data[:4] == b"RIFF" and data[8:12] == b"WAVE"


async def recording_upload(request: Request) -> Response:
    from ivr.voice.audio import (  # lazy: pydub only when audio is handled
        AudioError,
        check_recording,
    )

    user = await require(request, "admin")
    form = await checked_form(request)
    web = ctx(request)
    name, lang, stage = _target(form)
    _check_target(request, name, lang)
    upload = form.get("file")
    data = await upload.read(MAX_RECORDING_BYTES + 1) if isinstance(upload, UploadFile) else b""
    if not _is_wav(data) or len(data) > MAX_RECORDING_BYTES:
        return await _editor(request, name, lang, stage, error=t(request, "err_not_wav"), status_code=400)
    filename = getattr(upload, "filename", "") or "upload.wav"
    try:  # header only: an absurd rate or length is refused before anything is decoded
        check_recording(data, filename)
    except AudioError as exc:
        return await _editor(request, name, lang, stage, error=t(request, "err_recording", reason=str(exc)),
                             status_code=400)
    stored = await run_in_threadpool(_store_recording, web, data, filename)
    if isinstance(stored, str):
        return await _editor(request, name, lang, stage, error=t(request, "err_recording", reason=stored), status_code=400)
    source = await run_in_threadpool(prompt_store(web).source, name, lang, stage)

    def save(session: Session) -> None:
        row = _exact_override(session, name, lang, stage)
        if row is None:
            row = PromptTemplate(name=name, language=lang, stage_code=stage, body=source)
            session.add(row)
        row.recording_path = str(stored)
        row.updated_by = user.username

    await in_db(request, save)
    log.info("recording for %s/%s/%s uploaded by %s", name, lang, stage or "*", user.username)
    flash(request, t(request, "msg_recording_saved"), "ok")
    return redirect("/admin/prompts/edit?" + urlencode({"name": name, "lang": lang, "stage": stage or ""}))


def _store_recording(web: WebContext, data: bytes, filename: str) -> Path | str:
    """Hand the upload to the audio cache (which converts it to telephony format); returns the
    stored path, or the reason it was refused."""
    web.upload_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=web.upload_dir, suffix=".wav", delete=False) as fh:
        fh.write(data)
        tmp = Path(fh.name)
    try:
        return Path(audio_cache(web).use_recording(tmp))
    except Exception as exc:  # a corrupt WAV: say why instead of failing the page
        log.warning("recording refused: %s", exc)
        # name the admin's file, not our temporary copy
        return (str(exc) or type(exc).__name__).replace(str(tmp), filename)
    finally:
        tmp.unlink(missing_ok=True)


async def recording_audio(request: Request) -> Response:
    await require(request, "admin")
    name, lang, stage = _target(request.query_params)
    row = await in_db(request, lambda s: _exact_override(s, name, lang, stage))
    if row is None or not row.recording_path or not Path(row.recording_path).is_file():
        raise HTTPException(404, t(request, "err_not_found"))
    return FileResponse(row.recording_path, media_type="audio/wav")


async def recording_delete(request: Request) -> Response:
    user = await require(request, "admin")
    form: FormData = await checked_form(request)
    name, lang, stage = _target(form)

    def clear(session: Session) -> None:
        row = _exact_override(session, name, lang, stage)
        if row is not None:
            row.recording_path = None
            row.updated_by = user.username

    await in_db(request, clear)
    flash(request, t(request, "msg_recording_removed"), "ok")
    return redirect("/admin/prompts/edit?" + urlencode({"name": name, "lang": lang, "stage": stage or ""}))


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/prompts", prompts_page, methods=["GET"]),
        Route("/admin/prompts/edit", prompt_edit, methods=["GET"]),
        Route("/admin/prompts/edit", prompt_save, methods=["POST"]),
        Route("/admin/prompts/preview", prompt_preview, methods=["GET"]),
        Route("/admin/prompts/reset", prompt_reset, methods=["POST"]),
        Route("/admin/prompts/recording", recording_audio, methods=["GET"]),
        Route("/admin/prompts/recording", recording_upload, methods=["POST"]),
        Route("/admin/prompts/recording/delete", recording_delete, methods=["POST"]),
        Route("/admin/audio/{digest:str}", preview_audio, methods=["GET"]),
    ]
