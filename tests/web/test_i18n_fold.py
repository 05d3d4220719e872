"""scripts/i18n_fold.py moves a strings module into the catalogues and unregisters it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.web import i18n

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "i18n_fold.py"

MODULE = '''"""Texts of a helper's pages."""

STRINGS: dict[str, dict[str, str]] = {
    "ru": {"demo_title": "Мастер импорта", "demo_rows": "Строк: {n}", "login": "Вход в систему"},
    "uk": {"demo_title": "Майстер імпорту", "demo_rows": "Рядків: {n}", "login": "Вхід до системи"},
    "en": {"demo_title": "Import wizard", "demo_rows": "Rows: {n}", "login": "Sign in to the system"},
}
'''

TAIL = '''

from ivr.web.strings_other import STRINGS as _S_other  # noqa: E402

RU.update(_S_other["ru"])
EN.update(_S_other["en"])
from ivr.web.strings_demo import STRINGS as _S_demo  # noqa: E402

RU.update(_S_demo["ru"])
EN.update(_S_demo["en"])
'''


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(i18n.LOCALE_DIR, tmp_path / "locale")
    (tmp_path / "i18n.py").write_text(Path(i18n.__file__).read_text(encoding="utf-8") + TAIL, encoding="utf-8")
    (tmp_path / "strings_demo.py").write_text(MODULE, encoding="utf-8")
    return tmp_path


def fold(tree: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(tree / "strings_demo.py"), "--locale-dir", str(tree / "locale"),
         "--i18n", str(tree / "i18n.py"), *extra], capture_output=True, text=True, timeout=120)


def test_fold_moves_the_texts_and_unregisters_the_module(tree: Path) -> None:
    done = fold(tree)
    assert done.returncode == 0, done.stderr
    assert "2 texts added, 1 changed, 3 registration lines removed" in done.stdout
    loaded = {lang: i18n.load_catalogue(lang, tree / "locale") for lang in i18n.LANGUAGES}
    assert loaded["uk"]["demo_rows"] == "Рядків: {n}"
    assert loaded["ru"]["demo_title"] == "Мастер импорта"
    assert loaded["en"]["demo_title"] == "Import wizard"
    assert loaded["uk"]["login"] == "Вхід до системи"  # the module's text wins, as RU.update did
    assert len(loaded["uk"]) == len(i18n.UK) + 2
    template = (tree / "locale" / "ivr.pot").read_text(encoding="utf-8")
    assert '#. Rows: {n}\nmsgid "demo_rows"\nmsgstr ""' in template
    assert not (tree / "strings_demo.py").exists()
    rest = (tree / "i18n.py").read_text(encoding="utf-8")
    assert "_S_demo" not in rest
    assert 'from ivr.web.strings_other import STRINGS as _S_other  # noqa: E402\n\nRU.update(_S_other["ru"])\n' \
           'EN.update(_S_other["en"])\n' in rest
    # the folded catalogues still pass the completeness check
    from tests.web.test_i18n import untranslated
    assert untranslated(tree / "locale") == []


def test_an_unsound_module_is_refused_and_nothing_changes(tree: Path) -> None:
    (tree / "strings_demo.py").write_text(
        MODULE.replace('"Рядків: {n}"', '"Рядків: {count}"').replace(', "login": "Вхід до системи"', ""),
        encoding="utf-8")
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    done = fold(tree)
    assert done.returncode == 1
    assert "uk: keys differ from en" in done.stderr and "uk: demo_rows has other {placeholders}" in done.stderr
    assert {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()} == before


def test_check_only_reports(tree: Path) -> None:
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    done = fold(tree, "--check")
    assert done.returncode == 0 and "3 texts can be folded" in done.stdout
    assert {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()} == before
