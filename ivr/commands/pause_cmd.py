"""`ivr pause` and `ivr resume`: stop and restart new calls globally, for one ladder stage or
for one Asterisk server (issue 13). Calls in progress finish. The pause is stored in the
database, so it holds across restarts and for every dialer; `ivr pause --list` and `ivr status`
show who paused what, when and why.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.config import load_settings
from ivr.dialer.pauses import Pause


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for name, help_text in (("pause", "stop new calls: everything, one ladder stage or one Asterisk server"),
                            ("resume", "end a pause made with `ivr pause` (or on the live page)")):
        parser = subparsers.add_parser(name, help=help_text)
        target = parser.add_mutually_exclusive_group()
        target.add_argument("--stage", metavar="CODE", help="only this ladder stage (its code, e.g. firm)")
        target.add_argument("--server", metavar="NAME", help="only this Asterisk server (e.g. pbx1)")
        if name == "pause":
            target.add_argument("--list", action="store_true", help="show the active pauses and change nothing")
            parser.add_argument("--why", default="", help="the reason, kept and shown with the pause")
        parser.add_argument("--by", default=None, help="who does it (default: the shell user)")
        parser.set_defaults(func=run_pause if name == "pause" else run_resume)


def _target(args: argparse.Namespace) -> tuple[str, str]:
    from ivr.dialer import pauses

    if args.stage:
        return pauses.STAGE, args.stage
    if args.server:
        return pauses.SERVER, args.server
    return pauses.GLOBAL, ""


def _who(args: argparse.Namespace) -> str:
    if args.by:
        return str(args.by)
    try:
        return f"shell:{getpass.getuser()}"
    except OSError:
        return "shell"


def format_pause(p: Pause) -> str:
    why = f": {p.why}" if p.why else ""
    return f"{p.label()} paused by {p.who} since {p.created_at:%Y-%m-%d %H:%M} UTC{why}"


def run_pause(args: argparse.Namespace) -> int:
    from ivr.dialer import pauses
    from ivr.wiring import open_database

    db = open_database(load_settings(args.env_file))
    try:
        if args.list:
            with db.sessions() as session:
                active = pauses.list_active(session)
            print("\n".join(format_pause(p) for p in active) if active else "nothing is paused")
            return 0
        scope, key = _target(args)
        stage_warning = ""
        with db.sessions.begin() as session:
            if scope == pauses.STAGE:
                stage_warning = _unknown_stage(session, key)
            pause = pauses.pause(session, scope, key, _who(args), args.why, dt.datetime.now(dt.UTC))
        if stage_warning:
            print(stage_warning, file=sys.stderr)
        print(format_pause(pause))
        return 0
    except pauses.PauseError as exc:
        print(f"pause: {exc}", file=sys.stderr)
        return 1
    finally:
        db.engine.dispose()


def _unknown_stage(session: Session, code: str) -> str:
    """A warning (not an error: a stage may be added later) when no ladder stage has that code."""
    from ivr.db.models import LadderStage

    codes = set(session.scalars(select(LadderStage.code)))
    if code in codes:
        return ""
    return f"warning: no ladder stage {code!r} (stages: {', '.join(sorted(codes)) or 'none'}); paused anyway"


def run_resume(args: argparse.Namespace) -> int:
    from ivr.dialer import pauses
    from ivr.wiring import open_database

    db = open_database(load_settings(args.env_file))
    try:
        scope, key = _target(args)
        with db.sessions.begin() as session:
            resumed = pauses.resume(session, scope, key, _who(args), dt.datetime.now(dt.UTC))
            still = pauses.list_active(session)
    except pauses.PauseError as exc:
        print(f"resume: {exc}", file=sys.stderr)
        return 1
    finally:
        db.engine.dispose()
    if not resumed:
        what = "everything" if scope == pauses.GLOBAL else f"{scope} {key}"
        print(f"resume: {what} was not paused", file=sys.stderr)
        for p in still:
            print(f"  still paused: {format_pause(p)}", file=sys.stderr)
        return 1
    for p in resumed:
        print(f"resumed {p.label()} (paused by {p.who} since {p.created_at:%Y-%m-%d %H:%M} UTC)")
    for p in still:
        print(f"still paused: {format_pause(p)}")
    return 0
