"""Admin pages for the dialer's rules: call windows and holiday policy, the reason classifier, the
escalation ladder and contact limits. Every edit is validated (ivr.web.forms) before anything is
written; a refused form is shown again with the admin's input and the reasons."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ivr.db.models import CallbackTask, CallWindow, ContactLimit, LadderStage, OptOut, Reason, User
from ivr.db.options import get_option, get_options, set_option
from ivr.dialer.legal import LegalHours, format_range, legal_hours_from_options
from ivr.dialer.policy import COUNTS, HOLIDAY_POLICIES, ON_END, PERIODS, Stage
from ivr.dialer.staging import restage_waiting
from ivr.dialer.thanks import ThanksSettings, is_before_due
from ivr.web import forms, i18n, runtime_settings
from ivr.web.common import checked_form, ctx, flash, in_db, lang_of, redirect, render, require, t
from ivr.web.forms import FormProblems, Problem
from ivr.web.labels import known_queues, stage_name

log = logging.getLogger(__name__)

VOICE_LANGUAGES = ("ru", "uk", "en")  # languages the robot speaks (labels, replies, prompts)


def problem_texts(request: Request, problems: list[Problem]) -> list[str]:
    out = []
    for p in problems:
        label = t(request, "field_" + p.field) if p.field and i18n.has_key("field_" + p.field) else p.field
        text = t(request, p.key, **p.params)
        out.append(f"{label}: {text}" if label else text)
    return out


def form_dict(form: FormData) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def index(request: Request) -> Response:
    await require(request, "admin")

    def load(session: Session) -> dict[str, Any]:
        return {
            "n_reasons": session.scalar(select(func.count()).select_from(Reason).where(Reason.active.is_(True))),
            "n_stages": session.scalar(select(func.count()).select_from(LadderStage).where(LadderStage.active.is_(True))),
            "n_users": session.scalar(select(func.count()).select_from(User).where(User.active.is_(True))),
            "n_optouts": session.scalar(select(func.count()).select_from(OptOut)),
            "n_open_tasks": session.scalar(select(func.count()).select_from(CallbackTask).where(CallbackTask.state != "done")),
        }

    return render(request, "admin/index.html", await in_db(request, load))


# --- call windows -------------------------------------------------------------------------------

def _window_rows(session: Session, profile: str) -> dict[int, str]:
    by_day: dict[int, list[Any]] = {d: [] for d in forms.WEEKDAYS}
    for w in session.scalars(select(CallWindow).where(CallWindow.profile == profile).order_by(CallWindow.start_time)):
        by_day.setdefault(w.weekday, []).append((w.start_time, w.end_time))
    return {d: forms.format_day_windows(r) for d, r in by_day.items()}


def _legal_hours(session: Session) -> LegalHours:
    return legal_hours_from_options(get_options(session))


def _windows_context(session: Session, profile: str) -> dict[str, Any]:
    profiles = sorted(set(session.scalars(select(CallWindow.profile).distinct())) | {profile})
    used = {s.window_profile for s in session.scalars(select(LadderStage))}
    legal = _legal_hours(session)
    return {"profile": profile, "profiles": profiles, "used_profiles": used,
            "holiday_policy": get_option(session, "holiday_policy"), "policies": HOLIDAY_POLICIES,
            "legal": {"weekday": format_range(legal.weekday) if legal.weekday else "",
                      "weekend": format_range(legal.weekend) if legal.weekend else ""},
            # the limit each row of the editor must stay inside (rows 5, 6 and 7 take the weekend's)
            "legal_by_day": {d: format_range(r) if (r := legal.for_day(min(d, 6), d == 7)) else ""
                             for d in forms.WEEKDAYS}}


def _stored_outside_legal(session: Session, profile: str) -> list[Problem]:
    """Stored windows the legal limits cut (typed before the limits were narrowed): shown as a
    warning, because the dialer already keeps to the limits."""
    rows: dict[int, list[Any]] = {}
    for w in session.scalars(select(CallWindow).where(CallWindow.profile == profile)):
        rows.setdefault(w.weekday, []).append((w.start_time, w.end_time))
    return runtime_settings.legal_problems(rows, _legal_hours(session))


async def windows_page(request: Request) -> Response:
    await require(request, "admin")
    profile = request.query_params.get("profile", "default").strip() or "default"
    if not forms.PROFILE_RE.match(profile):
        raise HTTPException(400, t(request, "err_profile_name"))

    def load(session: Session) -> dict[str, Any]:
        return {**_windows_context(session, profile), "days": _window_rows(session, profile),
                "legal_warnings": _stored_outside_legal(session, profile)}

    data = await in_db(request, load)
    data["legal_warnings"] = problem_texts(request, data["legal_warnings"])
    return render(request, "admin/windows.html", {**data, "errors": []})


async def windows_save(request: Request) -> Response:
    user = await require(request, "admin")
    form = await checked_form(request)
    profile = str(form.get("profile", "")).strip()
    raw = {d: str(form.get(f"day{d}", "")) for d in forms.WEEKDAYS}
    parsed, problems = forms.parse_windows(raw)
    if not forms.PROFILE_RE.match(profile):
        problems.append(Problem("err_profile_name", "profile"))
    elif not any(parsed.values()):
        problems.append(Problem("err_windows_all_closed"))
    if not problems:
        # the legal-hours guard: a window outside the limits is refused, naming the limit
        legal = await in_db(request, _legal_hours)
        problems.extend(runtime_settings.legal_problems(parsed, legal))
    if problems:
        data = await in_db(request, lambda s: _windows_context(s, profile if forms.PROFILE_RE.match(profile) else "default"))
        log.info("call windows of profile %s refused for %s: %s", profile, user.username,
                 ", ".join(p.key for p in problems))
        return render(request, "admin/windows.html", {**data, "days": raw, "errors": problem_texts(request, problems),
                                                      "legal_warnings": []}, status_code=400)

    def save(session: Session) -> None:
        session.execute(delete(CallWindow).where(CallWindow.profile == profile))
        for weekday, ranges in parsed.items():
            for start, end in ranges:
                session.add(CallWindow(profile=profile, weekday=weekday, start_time=start, end_time=end))

    await in_db(request, save)
    log.info("call windows of profile %s changed by %s", profile, user.username)
    flash(request, t(request, "msg_saved"), "ok")
    return redirect(f"/admin/windows?profile={profile}")


async def holiday_save(request: Request) -> Response:
    user = await require(request, "admin")
    form = await checked_form(request)
    policy = str(form.get("holiday_policy", ""))
    if policy not in HOLIDAY_POLICIES:
        raise HTTPException(400, t(request, "err_choice"))
    await in_db(request, lambda s: set_option(s, "holiday_policy", policy))
    log.info("holiday policy set to %s by %s", policy, user.username)
    flash(request, t(request, "msg_saved"), "ok")
    return redirect(f"/admin/windows?profile={form.get('profile', 'default')}")


# --- reason classifier --------------------------------------------------------------------------

async def reasons_page(request: Request) -> Response:
    await require(request, "admin")

    def load(session: Session) -> dict[str, Any]:
        reasons = list(session.scalars(select(Reason).order_by(Reason.active.desc(), Reason.key, Reason.position)))
        norm_sum = sum((r.norm_pct for r in reasons if r.active), Decimal("0"))
        return {"reasons": reasons, "norm_sum": norm_sum}

    return render(request, "admin/reasons.html", await in_db(request, load))


def _reason_values(reason: Reason | None) -> dict[str, str]:
    if reason is None:
        return {"active": "on", "category": "controllable", "norm_pct": "0", "position": "0"}
    values = {
        "code": reason.code, "key": reason.key, "category": reason.category, "route": reason.route or "",
        "norm_pct": str(reason.norm_pct), "position": str(reason.position),
        "actionable": "on" if reason.actionable else "", "incentive_allowed": "on" if reason.incentive_allowed else "",
        "active": "on" if reason.active else "",
    }
    for lang in VOICE_LANGUAGES:
        values[f"label_{lang}"] = (reason.labels or {}).get(lang, "")
        values[f"reply_{lang}"] = (reason.replies or {}).get(lang, "")
    return values


async def reason_edit(request: Request) -> Response:
    await require(request, "admin")
    reason_id = request.path_params.get("reason_id")
    reason = await in_db(request, lambda s: s.get(Reason, reason_id)) if reason_id is not None else None
    if reason_id is not None and reason is None:
        raise HTTPException(404, t(request, "err_not_found"))
    return render(request, "admin/reason_edit.html", {"reason_id": reason_id, "values": _reason_values(reason),
                                                      "errors": [], "voice_languages": VOICE_LANGUAGES,
                                                      "queue_choices": await in_db(request, known_queues)})


async def reason_save(request: Request) -> Response:
    user = await require(request, "admin")
    form = await checked_form(request)
    reason_id = request.path_params.get("reason_id")
    settings = ctx(request).settings
    values = form_dict(form)

    def save(session: Session) -> None:
        others = list(session.scalars(select(Reason).where(Reason.id != reason_id) if reason_id else select(Reason)))
        data = forms.parse_reason(values, languages=VOICE_LANGUAGES, required_language=settings.default_language,
                                  other_codes={r.code for r in others},
                                  other_active_keys={r.key for r in others if r.active})
        if data.route is not None and data.route not in known_queues(session):
            # queues are chosen from the list; a name typed into a forged form is refused
            raise FormProblems([Problem("err_queue_unknown", "route", {"queue": data.route})])
        row = session.get(Reason, reason_id) if reason_id is not None else Reason()
        if row is None:
            raise HTTPException(404, t(request, "err_not_found"))
        row.code, row.key, row.labels, row.category = data.code, data.key, data.labels, data.category
        row.actionable, row.route, row.replies = data.actionable, data.route, data.replies
        row.incentive_allowed, row.norm_pct, row.position, row.active = (
            data.incentive_allowed, data.norm_pct, data.position, data.active)
        if reason_id is None:
            session.add(row)

    try:
        await in_db(request, save)
    except FormProblems as exc:
        return render(request, "admin/reason_edit.html", {
            "reason_id": reason_id, "values": values, "errors": problem_texts(request, exc.problems),
            "voice_languages": VOICE_LANGUAGES, "queue_choices": await in_db(request, known_queues)}, status_code=400)
    log.info("reason %s saved by %s", values.get("code"), user.username)
    flash(request, t(request, "msg_saved"), "ok")
    return redirect("/admin/reasons")


# --- ladder -------------------------------------------------------------------------------------

async def ladder_page(request: Request) -> Response:
    await require(request, "admin")
    stages = await in_db(request, lambda s: list(s.scalars(select(LadderStage).order_by(LadderStage.active.desc(), LadderStage.position))))
    warnings = []
    active = [s for s in stages if s.active]
    if active and active[-1].on_end == "next":
        warnings.append(t(request, "warn_last_stage_next",
                          code=stage_name(lang_of(request), active[-1].code, active[-1].name)))
    thanks = await in_db(request, lambda s: ThanksSettings.from_options(get_options(s)))
    # by their names in the page's language, as everywhere a stage is shown
    before_due = [stage_name(lang_of(request), s.code, s.name) for s in stages if is_before_due(_policy_stage(s))]
    return render(request, "admin/ladder.html", {"stages": stages, "warnings": warnings, "thanks": thanks,
                                                 "before_due_codes": before_due})


def _policy_stage(row: LadderStage) -> Stage:
    return Stage(code=row.code, position=row.position, anchor=row.anchor, start_day=row.start_day)


async def thanks_save(request: Request) -> Response:
    """Issue 16: switch thank-you calls after a payment on or off (ivr.dialer.thanks)."""
    user = await require(request, "admin")
    form = await checked_form(request)
    enabled = str(form.get("thank_you_calls", "")) in ("on", "1", "true")
    await in_db(request, lambda s: set_option(s, "thank_you_calls", enabled))
    log.info("thank-you calls %s by %s", "enabled" if enabled else "disabled", user.username)
    flash(request, t(request, "msg_saved"), "ok")
    return redirect("/admin/ladder")


def _stage_values(stage: LadderStage | None) -> dict[str, str]:
    if stage is None:
        return {"anchor": "due", "window_profile": "default", "max_attempts": "3", "retry_minutes": "240",
                "on_end": "next", "active": "on"}
    return {
        "code": stage.code, "position": str(stage.position), "name": stage.name, "anchor": stage.anchor,
        "start_day": str(stage.start_day), "prompt": stage.prompt, "window_profile": stage.window_profile,
        "required_hour": "" if stage.required_hour is None else str(stage.required_hour),
        "max_attempts": str(stage.max_attempts), "retry_minutes": str(stage.retry_minutes),
        "on_enter": stage.on_enter or "", "on_end": stage.on_end, "active": "on" if stage.active else "",
    }


def _stage_choices(session: Session) -> dict[str, Any]:
    return {"profiles": sorted(set(session.scalars(select(CallWindow.profile).distinct()))),
            "anchors": forms.ANCHORS, "on_end_values": ON_END, "prompt_names": prompt_names()}


def prompt_names() -> list[str]:
    """Template names a stage's prompt may name (the catalogue the call script plays)."""
    from ivr.prompts import TEMPLATE_NAMES

    return list(TEMPLATE_NAMES)


async def stage_edit(request: Request) -> Response:
    await require(request, "admin")
    stage_id = request.path_params.get("stage_id")

    def load(session: Session) -> dict[str, Any] | None:
        stage = session.get(LadderStage, stage_id) if stage_id is not None else None
        if stage_id is not None and stage is None:
            return None
        return {**_stage_choices(session), "values": _stage_values(stage)}

    data = await in_db(request, load)
    if data is None:
        raise HTTPException(404, t(request, "err_not_found"))
    return render(request, "admin/stage_edit.html", {**data, "stage_id": stage_id, "errors": []})


async def stage_save(request: Request) -> Response:
    user = await require(request, "admin")
    form = await checked_form(request)
    stage_id = request.path_params.get("stage_id")
    values = form_dict(form)

    def save(session: Session) -> None:
        others = list(session.scalars(select(LadderStage).where(LadderStage.id != stage_id) if stage_id else select(LadderStage)))
        # a stage may keep a prompt name that was valid when it was seeded
        names = prompt_names() + [s.prompt for s in session.scalars(select(LadderStage))]
        data = forms.parse_stage(values, other_codes={s.code for s in others},
                                 other_active_positions={s.position for s in others if s.active},
                                 profiles=set(session.scalars(select(CallWindow.profile).distinct())),
                                 prompt_names=names, on_end_values=ON_END)
        legal_problem = runtime_settings.required_hour_problem(data.required_hour, _legal_hours(session))
        if legal_problem is not None:
            # a stage that may only call at an hour the law never allows would silently never call
            raise FormProblems([legal_problem])
        row = session.get(LadderStage, stage_id) if stage_id is not None else LadderStage()
        if row is None:
            raise HTTPException(404, t(request, "err_not_found"))
        for name in ("code", "position", "name", "anchor", "start_day", "prompt", "window_profile", "required_hour",
                     "max_attempts", "retry_minutes", "on_enter", "on_end", "active"):
            setattr(row, name, getattr(data, name))
        if stage_id is None:
            session.add(row)
        # issue 16: cases waiting for a stage date were dated by the old ladder (a before-due
        # stage just enabled starts earlier than the date they wait for): the next pass re-dates them
        restage_waiting(session)

    try:
        await in_db(request, save)
    except FormProblems as exc:
        choices = await in_db(request, _stage_choices)
        return render(request, "admin/stage_edit.html", {**choices, "values": values, "stage_id": stage_id,
                                                         "errors": problem_texts(request, exc.problems)}, status_code=400)
    log.info("ladder stage %s saved by %s", values.get("code"), user.username)
    flash(request, t(request, "msg_saved"), "ok")
    return redirect("/admin/ladder")


# --- contact limits -----------------------------------------------------------------------------

async def limits_page(request: Request, errors: list[str] | None = None, status_code: int = 200) -> Response:
    await require(request, "admin")
    limits = await in_db(request, lambda s: list(s.scalars(select(ContactLimit).order_by(ContactLimit.counts, ContactLimit.id))))
    return render(request, "admin/limits.html", {"limits": limits, "periods": PERIODS, "counts": COUNTS,
                                                 "errors": errors or []}, status_code=status_code)


async def limits_save(request: Request) -> Response:
    user = await require(request, "admin")
    form = await checked_form(request)
    try:
        period, counts, max_calls = forms.parse_limit(form_dict(form), periods=PERIODS, counts=COUNTS)
    except FormProblems as exc:
        return await limits_page(request, problem_texts(request, exc.problems), 400)

    def save(session: Session) -> None:
        row = session.scalar(select(ContactLimit).where(ContactLimit.period == period, ContactLimit.counts == counts))
        if row is None:
            session.add(ContactLimit(period=period, counts=counts, max_calls=max_calls))
        else:
            row.max_calls = max_calls

    await in_db(request, save)
    log.info("contact limit %s/%s = %s set by %s", period, counts, max_calls, user.username)
    flash(request, t(request, "msg_saved"), "ok")
    return redirect("/admin/limits")


async def limit_delete(request: Request) -> Response:
    await require(request, "admin")
    await checked_form(request)
    limit_id = int(request.path_params["limit_id"])
    await in_db(request, lambda s: s.execute(delete(ContactLimit).where(ContactLimit.id == limit_id)))
    flash(request, t(request, "msg_deleted"), "ok")
    return redirect("/admin/limits")


def routes() -> list[BaseRoute]:
    return [
        Route("/admin", index, methods=["GET"]),
        Route("/admin/windows", windows_page, methods=["GET"]),
        Route("/admin/windows", windows_save, methods=["POST"]),
        Route("/admin/windows/holiday", holiday_save, methods=["POST"]),
        Route("/admin/reasons", reasons_page, methods=["GET"]),
        Route("/admin/reasons/new", reason_edit, methods=["GET"]),
        Route("/admin/reasons/new", reason_save, methods=["POST"]),
        Route("/admin/reasons/{reason_id:int}", reason_edit, methods=["GET"]),
        Route("/admin/reasons/{reason_id:int}", reason_save, methods=["POST"]),
        Route("/admin/ladder", ladder_page, methods=["GET"]),
        Route("/admin/ladder/thanks", thanks_save, methods=["POST"]),
        Route("/admin/ladder/new", stage_edit, methods=["GET"]),
        Route("/admin/ladder/new", stage_save, methods=["POST"]),
        Route("/admin/ladder/{stage_id:int}", stage_edit, methods=["GET"]),
        Route("/admin/ladder/{stage_id:int}", stage_save, methods=["POST"]),
        Route("/admin/limits", limits_page, methods=["GET"]),
        Route("/admin/limits", limits_save, methods=["POST"]),
        Route("/admin/limits/{limit_id:int}/delete", limit_delete, methods=["POST"]),
    ]
