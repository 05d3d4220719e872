"""`ivr voice-pack`: the recorded fragments amounts and dates are said with (ivr.voice.pack).

    ivr voice-pack check DIR                 # what DIR lacks or cannot use; exit 1 if anything
    ivr voice-pack list [--lang ru]          # every fragment: id, file name, what to say
    ivr voice-pack make DIR                  # a pack spoken by espeak-ng (a stand-in, or a template)
    ivr voice-pack plan 1800.50 [--currency RUB] [--lang ru] [--pack DIR]
    ivr voice-pack plan 2025-11-25 [--case gen] [--lang uk] [--pack DIR]

`plan` shows the fragments an amount or a date is said with and, with a pack (--pack, or
IVR_VOICE_PACK), which of them the pack has (recorded) and which the synthetic voice says.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ivr.config import load_settings
from ivr.prompts.fragments import PACK_LANGUAGES, catalogue, date_fragments, money_fragments


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("voice-pack", help="check, list, make and try voice packs (recorded amounts and dates)")
    actions = parser.add_subparsers(dest="voice_pack_action", metavar="ACTION", required=True)

    check = actions.add_parser("check", help="report the fragments a pack lacks or cannot use (exit 1 if any)")
    check.add_argument("dir", type=Path)
    check.add_argument("--lang", choices=PACK_LANGUAGES, action="append", help="only this language (repeatable)")
    check.set_defaults(func=run_check)

    listing = actions.add_parser("list", help="every fragment a pack needs: id, file, words to record")
    listing.add_argument("--lang", choices=PACK_LANGUAGES, action="append")
    listing.set_defaults(func=run_list)

    make = actions.add_parser("make", help="write a pack spoken by the speech engine (espeak-ng)")
    make.add_argument("dir", type=Path)
    make.add_argument("--lang", choices=PACK_LANGUAGES, action="append")
    make.set_defaults(func=run_make)

    plan = actions.add_parser("plan", help="the fragments an amount or a date (YYYY-MM-DD) is said with")
    plan.add_argument("value")
    plan.add_argument("--lang", choices=PACK_LANGUAGES, default="ru")
    plan.add_argument("--currency", default=None, help="RUB, UAH, USD, EUR (default: IVR_DEFAULT_CURRENCY)")
    plan.add_argument("--case", choices=("nom", "gen"), default="nom", help="for a date: nominative or genitive")
    plan.add_argument("--pack", type=Path, default=None, help="a pack directory (default: IVR_VOICE_PACK)")
    plan.set_defaults(func=run_plan)


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def run_check(args: argparse.Namespace) -> int:
    from ivr.voice.pack import VoicePackError, check_pack

    languages = args.lang or list(PACK_LANGUAGES)
    try:
        report = check_pack(args.dir, languages)
    except VoicePackError as exc:
        return _fail(str(exc))
    for language in languages:
        total = len(catalogue(language))
        missing = report.missing.get(language, [])
        print(f"{language}: {report.present.get(language, 0)} of {total} fragments usable, {len(missing)} missing")
        for fragment in missing:
            print(f"  missing {language}.{fragment}: \"{catalogue(language)[fragment]}\"")
    for problem in report.problems:
        print(f"  unusable {problem}")
    for warning in report.warnings:
        print(f"  note {warning}")
    for unknown in report.unknown:
        print(f"  unknown {unknown} (not a fragment any amount or date uses; ignored)")
    if report.complete:
        print("complete: every amount and date is said from the recordings")
        return 0
    print("incomplete: what is missing or unusable is said by the synthetic voice")
    return 1


def run_list(args: argparse.Namespace) -> int:
    for language in args.lang or PACK_LANGUAGES:
        for fragment, text in catalogue(language).items():
            print(f"{language}\t{fragment}\t{language}/{fragment}.wav\t{text}")
    return 0


def run_make(args: argparse.Namespace) -> int:
    from ivr.voice.audio import AudioError
    from ivr.voice.pack import make_synthetic_pack
    from ivr.voice.tts import TTSError, get_engine

    settings = load_settings(args.env_file)
    try:
        pack = make_synthetic_pack(args.dir, get_engine(settings), args.lang or PACK_LANGUAGES)
    except (TTSError, AudioError, OSError) as exc:
        return _fail(str(exc), 1)
    for language, entries in pack.declared.items():
        print(f"{language}: {len(entries)} fragments in {args.dir / language}")
    return 0


def run_plan(args: argparse.Namespace) -> int:
    from ivr.prompts.fragments import fragment_words
    from ivr.voice.compose import plan_with_pack
    from ivr.voice.pack import VoicePackError, load_pack, pack_from_settings

    settings = load_settings(args.env_file)
    try:
        pack = load_pack(args.pack) if args.pack else pack_from_settings(settings)
    except VoicePackError as exc:
        return _fail(str(exc))
    try:
        day = dt.date.fromisoformat(args.value)
        ids = date_fragments(day, args.lang, args.case)
    except ValueError:
        try:
            amount = Decimal(args.value)
        except InvalidOperation:
            return _fail(f"{args.value!r} is neither an amount (1800.50) nor a date (YYYY-MM-DD)")
        currency = (args.currency or settings.default_currency).upper()
        try:
            ids = money_fragments(amount, currency, args.lang, conjunction=bool(pack and pack.conjunction))
        except ValueError as exc:
            return _fail(str(exc))
    text = fragment_words(ids, args.lang)
    print(text)
    if pack is None:
        print("  (no voice pack: IVR_VOICE_PACK is empty and --pack not given; all synthetic)")
        for fragment in ids:
            print(f"  {fragment}")
        return 0
    for part in plan_with_pack(pack, text, args.lang, {text: ids}):
        label = "recorded " if part.recorded else "synthetic"
        print(f"  {label} {part.fragment or '':<16} {part.text}")
    return 0
