#!/usr/bin/env python3
"""Fold a UI strings module into the gettext catalogues.

    python scripts/i18n_fold.py ivr/web/strings_<name>.py [more modules...]

A strings module is `STRINGS = {"ru": {...}, "uk": {...}, "en": {...}}` (same keys in every
language). Its texts are added to `ivr/locale/ivr.pot` (the English text as the translator's
comment) and to `ivr/locale/<lang>/LC_MESSAGES/ivr.po` for every UI language; a key that is
already in the catalogues takes the module's text, as `RU.update(...)` did before the fold. Then
the module is deleted and its registration lines at the end of `ivr/web/i18n.py` are removed.

Nothing is written unless the whole module is sound: every language present, the same keys
everywhere, no empty text, the same `{placeholders}` in every language. With --check the tool
only says what it would do.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE_DIR = ROOT / "ivr" / "locale"
I18N_PY = ROOT / "ivr" / "web" / "i18n.py"
DOMAIN = "ivr"
LANGUAGES = ("ru", "uk", "en")
SOURCE_LANGUAGE = "en"  # its text is the translator's comment in the template and every catalogue
PROJECT = "ivr-debt-reminder"
HEADER = (
    "# UI texts of {project}{what}.\n"
    "# This file is distributed under the same license as the {project} project.\n"
    "# msgid is the key the code asks for; the English text is in the '#.' comment.\n"
    "#"
)
_PARAM = re.compile(r"{(\w+)}")
_MODULE = re.compile(r"^strings_(\w+)\.py$")


class FoldError(Exception):
    pass


def load_strings(path: Path) -> dict[str, dict[str, str]]:
    """The STRINGS dict of a module file, imported from its path (not from the package, so a
    module can be checked before it is registered)."""
    spec = importlib.util.spec_from_file_location(f"_fold_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise FoldError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    # no __pycache__ next to the module: it is about to be deleted, and a refused fold must leave
    # the folder exactly as it was
    writing, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writing
    strings = getattr(module, "STRINGS", None)
    if not isinstance(strings, dict):
        raise FoldError(f"{path}: no STRINGS dict")
    return strings


def problems_of(strings: dict[str, Any], languages: tuple[str, ...] = LANGUAGES) -> list[str]:
    """Everything that keeps a strings dict from being folded, one sentence each."""
    found: list[str] = []
    missing = [lang for lang in languages if lang not in strings]
    if missing:
        return [f"no texts for {', '.join(missing)}"]
    extra = sorted(set(strings) - set(languages))
    if extra:
        found.append(f"languages that are not UI languages: {', '.join(extra)}")
    keys = set(strings[SOURCE_LANGUAGE])
    for lang in languages:
        texts = strings[lang]
        if not isinstance(texts, dict):
            found.append(f"{lang}: not a dict")
            continue
        if set(texts) != keys:
            only_here, only_en = sorted(set(texts) - keys), sorted(keys - set(texts))
            found.append(f"{lang}: keys differ from {SOURCE_LANGUAGE}: extra {only_here}, missing {only_en}")
        for key, text in texts.items():
            if not re.fullmatch(r"[a-z0-9_]+", str(key)):
                found.append(f"{lang}: key {key!r} is not a-z, 0-9, _")
            if not isinstance(text, str) or not text.strip():
                found.append(f"{lang}: {key} has no text")
            elif key in strings[SOURCE_LANGUAGE] and set(_PARAM.findall(text)) != set(
                    _PARAM.findall(strings[SOURCE_LANGUAGE][key])):
                found.append(f"{lang}: {key} has other {{placeholders}} than {SOURCE_LANGUAGE}")
    return found


def catalogue_path(locale_dir: Path, lang: str | None) -> Path:
    if lang is None:
        return locale_dir / f"{DOMAIN}.pot"
    return locale_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalogue(path: Path, lang: str | None) -> Catalog:
    if path.exists():
        with path.open("rb") as f:
            return read_po(f, locale=lang, domain=DOMAIN)
    what = " (template)" if lang is None else f", language {lang}"
    return Catalog(locale=lang, domain=DOMAIN, project=PROJECT, version="0.1.0",
                   header_comment=HEADER.format(project=PROJECT, what=what),
                   creation_date=dt.datetime(2026, 12, 2, tzinfo=dt.UTC), fuzzy=False)


def write_catalogue(path: Path, catalogue: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # the width and layout of `pybabel update`, so a translator's run of it changes nothing else
    with path.open("wb") as f:
        write_po(f, catalogue, width=76, sort_output=False)


def fold_strings(strings: dict[str, dict[str, str]], locale_dir: Path = LOCALE_DIR,
                 languages: tuple[str, ...] = LANGUAGES) -> tuple[list[str], list[str]]:
    """Add (or replace) every text of `strings` in the template and the catalogues; returns the
    keys added and the keys whose text changed."""
    problems = problems_of(strings, languages)
    if problems:
        raise FoldError("; ".join(problems))
    english = strings[SOURCE_LANGUAGE]
    added: list[str] = []
    changed: list[str] = []
    for lang in (None, *languages):
        path = catalogue_path(locale_dir, lang)
        catalogue = read_catalogue(path, lang)
        # no python-brace-format flag: Babel derives it from the msgid, which here is the key; the
        # placeholders are checked against the English text instead (problems_of, the tests)
        for key, source in english.items():
            text = "" if lang is None else strings[lang][key]
            old = catalogue.get(key)
            if old is None:
                if lang is None:
                    added.append(key)
            elif lang is not None and old.string != text and key not in changed:
                changed.append(key)
            if old is None:
                catalogue.add(key, text, auto_comments=[source])
            else:  # in place, so the catalogue keeps its order
                old.string, old.auto_comments = text, [source]
        write_catalogue(path, catalogue)
    return added, changed


def unregister(i18n_py: Path, name: str) -> int:
    """Remove the registration lines of strings_<name> from i18n.py; returns how many."""
    lines = i18n_py.read_text(encoding="utf-8").splitlines()
    pattern = re.compile(
        rf"^(from ivr\.web\.strings_{name} import STRINGS as _S_{name}\b.*"
        rf"|(RU|EN|UK)\.update\(_S_{name}\[\"(ru|en|uk)\"\]\)\s*)$")
    kept = [line for line in lines if not pattern.match(line)]
    removed = len(lines) - len(kept)
    text = "\n".join(kept).rstrip("\n") + "\n"
    text = re.sub(r"\n{4,}", "\n\n\n", text)  # no growing gap where the lines were
    i18n_py.write_text(text, encoding="utf-8")
    return removed


def fold_module(path: Path, locale_dir: Path = LOCALE_DIR, i18n_py: Path = I18N_PY,
                check: bool = False) -> str:
    match = _MODULE.match(path.name)
    if not match:
        raise FoldError(f"{path}: expected a file named strings_<name>.py")
    name = match.group(1)
    strings = load_strings(path)
    if check:
        problems = problems_of(strings)
        if problems:
            raise FoldError(f"{path}: " + "; ".join(problems))
        return f"{path}: {len(strings[SOURCE_LANGUAGE])} texts can be folded"
    added, changed = fold_strings(strings, locale_dir)
    removed = unregister(i18n_py, name)
    path.unlink()
    report = f"{path}: {len(added)} texts added, {len(changed)} changed, {removed} registration lines removed"
    if changed:
        report += "\n  changed: " + ", ".join(changed)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="+", type=Path, help="ivr/web/strings_<name>.py files")
    parser.add_argument("--locale-dir", type=Path, default=LOCALE_DIR)
    parser.add_argument("--i18n", type=Path, default=I18N_PY, help="the module that registers them")
    parser.add_argument("--check", action="store_true", help="only check the modules")
    args = parser.parse_args(argv)
    status = 0
    for module in args.modules:
        try:
            print(fold_module(module, args.locale_dir, args.i18n, check=args.check))
        except FoldError as exc:
            print(f"not folded: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
