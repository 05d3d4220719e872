"""`ivr prompts render|check`: preview what the robot says to one account, check the templates.

    ivr prompts render --account A-1001 --stage reminder [--lang ru] [--today 2025-11-18] [--out DIR]
    ivr prompts check [--db]

`render` prints each phrase's text and the WAV that will be played (with --out, copies of the
files under readable names: DIR/menu.wav, DIR/readback-2025-11-20.wav, DIR/reply-forgot.wav).
`check` validates every template file in every language (and with --db the admins' overrides
and reason replies); it exits 1 naming the file and line of each problem.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr.config import Settings, load_settings
from ivr.db.models import Account, CaseState, DebtCase, LadderStage, PromptTemplate, Reason
from ivr.db.options import get_options
from ivr.prompts import OPTIONAL_TEMPLATES, TEMPLATE_NAMES
from ivr.prompts.context import promise_horizon
from ivr.prompts.render import PromptStore, TemplateProblem
from ivr.voice.audio import AudioError
from ivr.voice.cache import AudioCache
from ivr.voice.prepare import DEBT_MESSAGE, AudioPreparer, CallAudio
from ivr.voice.tts import TTSError, get_engine
from ivr.wiring import open_database


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("prompts", help="preview and check what the robot says")
    actions = parser.add_subparsers(dest="prompts_action", metavar="ACTION", required=True)

    p = actions.add_parser("render", help="print and synthesise every phrase of a call to one account")
    p.add_argument("--account", required=True, metavar="EXTERNAL_ID", help="account external id")
    p.add_argument("--stage", help="ladder stage code (default: the open case's stage, else the first stage)")
    p.add_argument("--lang", help="language (default: the account's)")
    p.add_argument("--today", metavar="YYYY-MM-DD", help="pretend it is this day (default: today in the account's time zone)")
    p.add_argument("--out", metavar="DIR", help="also copy the WAV files here under readable names")
    p.set_defaults(func=run_render)

    p = actions.add_parser("check", help="validate every template file (exit 1 on problems)")
    p.add_argument("--db", action="store_true", help="also validate the database overrides and reason replies")
    p.set_defaults(func=run_check)


def _fail(message: str, code: int = 2) -> int:
    print(f"ivr prompts: {message}", file=sys.stderr)
    return code


def _open_case(session: Session, account: Account) -> DebtCase | None:
    closed = (CaseState.PAID.value, CaseState.CLOSED.value)
    return session.scalars(
        select(DebtCase).where(DebtCase.account_id == account.id, DebtCase.state.not_in(closed)).order_by(DebtCase.id.desc())
    ).first()


def _local_today(account: Account, settings: Settings) -> dt.date:
    return dt.datetime.now(ZoneInfo(account.timezone or settings.default_timezone)).date()


def stage_today(session: Session, settings: Settings, account: Account, case: DebtCase | None,
                today: dt.date) -> tuple[str | None, str]:
    """The stage the ladder gives the case on `today` (what a call placed today would say), with
    a note saying why; before the first stage starts, the first stage and its start date."""
    from ivr.db.models import PhoneNumber, Promise
    from ivr.dialer.ladder import CaseView, decide, next_stage_start, stage_for
    from ivr.dialer.policy import load_rules
    from ivr.dialer.windows import resolve_timezone, zone

    rules = load_rules(session, settings.default_timezone)
    first = rules.stages[0].code if rules.stages else None
    if case is None:
        return first, "no open debt case: the ladder's first stage"
    phone = session.scalars(select(PhoneNumber.number).where(PhoneNumber.account_id == account.id)
                            .order_by(PhoneNumber.priority, PhoneNumber.id)).first()
    tz = zone(resolve_timezone(account.timezone, phone, rules.default_timezone) or rules.default_timezone)
    promised = session.scalars(select(Promise.promised_date).where(
        Promise.debt_case_id == case.id, Promise.status == "pending").order_by(Promise.id.desc())).first()
    view = CaseView(state=case.state, opened_on=case.opened_on, amount_owed=case.amount_owed,
                    block_date=account.block_date, stage_code=case.stage_code,
                    attempts_in_stage=case.attempts_in_stage, next_attempt_at=case.next_attempt_at,
                    pending_promise_date=promised, promise_broken=case.promise_broken)
    decision = decide(view, rules, today, tz or ZoneInfo(settings.default_timezone))
    if decision.stage_code is not None:
        return decision.stage_code, f"the ladder's stage for this case on {today.isoformat()}"
    start = next_stage_start(None, case.opened_on, account.block_date, today, rules.stages)
    if start is not None:
        stage = stage_for(case.opened_on, account.block_date, start, rules.stages)
        return (stage.code if stage else first), f"no stage yet on {today.isoformat()}; the first starts on {start.isoformat()}"
    return first, f"no stage on {today.isoformat()} (state {decision.state}); showing the first stage"


def run_render(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    try:
        today_arg = dt.date.fromisoformat(args.today) if args.today else None
    except ValueError:
        return _fail(f"--today: expected YYYY-MM-DD, got {args.today!r}")
    try:
        engine = get_engine(settings)
    except TTSError as exc:
        return _fail(str(exc))
    db = open_database(settings)
    store = PromptStore(settings.prompts_dir, db.sessions)
    cache = AudioCache(settings.audio_cache_dir, engine)
    with db.sessions() as session:
        account = session.scalars(select(Account).where(Account.external_id == args.account)).first()
        if account is None:
            return _fail(f"no account with external id {args.account!r}")
        case = _open_case(session, account)
        today = today_arg or _local_today(account, settings)
        stage, why = (args.stage, "given with --stage") if args.stage else stage_today(session, settings, account, case, today)
        if stage is None or session.scalars(select(LadderStage).where(LadderStage.code == stage)).first() is None:
            codes = ", ".join(session.scalars(select(LadderStage.code).order_by(LadderStage.position)))
            return _fail(f"unknown stage {stage!r} (stages: {codes})")
        print(f"stage: {stage} ({why})")
        options = get_options(session)
        horizon = promise_horizon(today, account.block_date, options)
        preparer = AudioPreparer(store, cache, settings)
        try:
            audio = preparer.prepare(session, account, case, stage, args.lang or account.language, today,
                                     horizon=horizon, options=options)
        except (TemplateProblem, TTSError, AudioError) as exc:
            return _fail(str(exc), 1)
    _print_call(audio, Path(args.out) if args.out else None)
    return 0


def _print_call(audio: CallAudio, out: Path | None) -> None:
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    def show(label: str, text: str, name: str, copy_as: str) -> None:
        source = Path(name + ".wav")
        if out is not None:
            target = out / f"{copy_as}.wav"
            shutil.copyfile(source, target)
            source = target
        print(f"{label}: {text}\n    {source}")

    print(f"language: {audio.language}; debt message: {audio.message_name}")
    for phrase, name in audio.phrases.items():
        if phrase != DEBT_MESSAGE:  # an alias of the stage's message, printed under its own name
            show(phrase, audio.texts[phrase], name, phrase)
    for day, name in audio.readbacks.items():
        key = f"readback:{day.isoformat()}"
        show(key, audio.texts[key], name, f"readback-{day.isoformat()}")
    for code, name in audio.reason_replies.items():
        show(f"reply:{code}", audio.texts[f"reply:{code}"], name, f"reply-{code}")


def run_check(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    store = PromptStore(settings.prompts_dir)
    languages = store.languages()
    if not languages:
        return _fail(f"no template directories (ru, uk, en) under {settings.prompts_dir}", 1)
    required = tuple(n for n in TEMPLATE_NAMES if n not in OPTIONAL_TEMPLATES)
    lines = [_where(store, p) for p in store.check_files(languages, required)]
    checked = sum(len(store.file_names(lang)) for lang in languages)
    if args.db:
        db = open_database(settings)
        with db.sessions() as session:
            lines += _check_database(store, session)
            checked += session.scalar(select(func.count()).select_from(PromptTemplate)) or 0
    for line in lines:
        print(line)
    if lines:
        print(f"{len(lines)} problem(s) in {checked} templates", file=sys.stderr)
        return 1
    print(f"{checked} templates OK ({', '.join(languages)})")
    return 0


def _where(store: PromptStore, problem: TemplateProblem) -> str:
    try:
        path = str(store.file_path(problem.name, problem.language or ""))
    except TemplateProblem:
        path = problem.name
    line = f":{problem.line}" if problem.line is not None else ""
    return f"{path}{line}: {problem.message}"


def _check_database(store: PromptStore, session: Session) -> list[str]:
    lines = []
    for row in session.scalars(select(PromptTemplate).order_by(PromptTemplate.language, PromptTemplate.name)):
        label = f"override {row.language}/{row.name}" + (f" (stage {row.stage_code})" if row.stage_code else "")
        try:
            store.validate(row.body, row.name, row.language)
        except TemplateProblem as problem:
            line = f", line {problem.line}" if problem.line is not None else ""
            lines.append(f"{label}{line}: {problem.message}")
    for reason in session.scalars(select(Reason).order_by(Reason.position)):
        for language, body in sorted((reason.replies or {}).items()):
            try:
                store.validate(body, f"reason {reason.code} reply", language)
            except TemplateProblem as problem:
                lines.append(str(problem))
    return lines
