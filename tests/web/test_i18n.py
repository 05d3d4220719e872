"""The UI catalogues (ivr/locale/*/LC_MESSAGES/ivr.po) are complete in every UI language, and
every text a template or handler asks for exists."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from ivr.web import i18n

WEB = Path(i18n.__file__).parent
PARAM = re.compile(r"{(\w+)}")

# Texts that are rightly the same in a translation as in English: names, codes, abbreviations.
SAME_AS_ENGLISH = {"source_api", "rep_csv_table"}
# Latin words a Russian or Ukrainian text may contain: product and protocol names, header
# syntax, the token scopes as the API spells them, and the command that must be running.
LATIN_ALLOWED = {
    "API", "CSV", "UTC", "UTF-8", "Windows-1251", "WAV", "Asterisk", "PJSIP", "Jinja2", "ivr", "run",
    "IVR_BILLING_PUSH_URL", "Authorization", "Bearer", "import", "export", "SIP", "url",
    # the prompt editor's help: currency and call-language codes, the fields of a reason entry
    "RUB", "UAH", "USD", "EUR", "ru", "uk", "en", "key", "label", "code",
    # the template engine and the statements the editor refuses, as a template spells them
    "Jinja", "extends", "include",
    # programs and formats an admin meets, and the ivr command a help text names
    "Excel", "UTF-16", "espeak-ng", "voice-pack", "check",
}


def read(path: Path) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, domain=i18n.DOMAIN)


def catalogues(locale_dir: Path = i18n.LOCALE_DIR) -> dict[str, Catalog]:
    return {lang: read(locale_dir / lang / "LC_MESSAGES" / "ivr.po") for lang in i18n.LANGUAGES}


def untranslated(locale_dir: Path) -> list[str]:
    """Every entry of every catalogue that a UI in that language would not show properly."""
    found: list[str] = []
    cats = catalogues(locale_dir)
    template = {m.id for m in read(locale_dir / "ivr.pot") if m.id}
    english = {m.id: m.string for m in cats["en"] if m.id}
    for lang, cat in cats.items():
        ids = {m.id for m in cat if m.id}
        if ids != template:
            found.append(f"{lang}: msgids differ from ivr.pot: extra {sorted(ids - template)}, "
                         f"missing {sorted(template - ids)}")
        for m in cat:
            if not m.id:
                continue
            where = f"{lang}: {m.id}"
            if not m.string or not str(m.string).strip():
                found.append(f"{where}: empty")
            elif m.fuzzy:
                found.append(f"{where}: fuzzy")
            elif lang != "en" and m.string == english.get(m.id) and m.id not in SAME_AS_ENGLISH:
                found.append(f"{where}: same as English ({m.string!r})")
            elif m.id in english and set(PARAM.findall(str(m.string))) != set(PARAM.findall(str(english[m.id]))):
                found.append(f"{where}: placeholders differ from English")
    return found


def test_every_catalogue_has_the_template_msgids_all_translated() -> None:
    assert untranslated(i18n.LOCALE_DIR) == []
    assert len(i18n.RU) == len(i18n.UK) == len(i18n.EN) > 700


def test_the_check_catches_an_untranslated_entry(tmp_path: Path) -> None:
    """The check above is not vacuous: an emptied, an English and a missing entry all fail it."""
    shutil.copytree(i18n.LOCALE_DIR, tmp_path / "locale")
    uk = tmp_path / "locale" / "uk" / "LC_MESSAGES" / "ivr.po"
    text = uk.read_text(encoding="utf-8")
    text = text.replace('msgid "login"\nmsgstr "Увійти"', 'msgid "login"\nmsgstr ""')
    text = text.replace('msgid "logout"\nmsgstr "Вийти"', 'msgid "logout"\nmsgstr "Sign out"')
    text = text.replace('msgid "app_name"\n', 'msgid "app_name_gone"\n')
    uk.write_text(text, encoding="utf-8")
    found = untranslated(tmp_path / "locale")
    assert "uk: login: empty" in found
    assert "uk: logout: same as English ('Sign out')" in found
    assert any(f.startswith("uk: msgids differ") and "app_name" in f for f in found)


def _latin_words(text: str) -> set[str]:
    # placeholders and time zone names (Europe/Kyiv, the same in every language) are not words
    text = re.sub(r"\b[A-Z][a-z]+/[A-Za-z_]+\b", " ", PARAM.sub("", text))
    return set(re.findall(r"[A-Za-z][A-Za-z0-9_-]*[A-Za-z0-9]|[A-Za-z]", text))


@pytest.mark.parametrize("lang", ["ru", "uk"])
def test_no_english_words_in_a_slavic_catalogue(lang: str) -> None:
    from ivr.prompts.context import CONTEXT_DOC

    allowed = LATIN_ALLOWED | set(CONTEXT_DOC)  # a template's variables are named as it spells them
    texts = i18n.MESSAGES[lang]
    english = {key: sorted(_latin_words(text) - allowed) for key, text in texts.items()}
    assert {key: words for key, words in english.items() if words} == {}


def test_russian_and_ukrainian_letters_do_not_mix() -> None:
    """A Russian text pasted into the Ukrainian catalogue (or the other way round) is caught by
    the letters one alphabet has and the other has not."""
    ru_only = re.compile("[ыэъёЫЭЪЁ]")
    uk_only = re.compile("[іїєґІЇЄҐ]")
    in_uk = {k: v for k, v in i18n.UK.items() if ru_only.search(v)}
    in_ru = {k: v for k, v in i18n.RU.items() if uk_only.search(v)}
    assert in_uk == {} and in_ru == {}


def test_pybabel_update_keeps_the_catalogues(tmp_path: Path) -> None:
    """The translators' command (README) on the committed files changes no msgid or text."""
    from babel.messages.frontend import CommandLineInterface

    locale = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE_DIR, locale)
    before = {lang: {m.id: m.string for m in cat} for lang, cat in catalogues(locale).items()}
    CommandLineInterface().run(["pybabel", "-q", "update", "-i", str(locale / "ivr.pot"),
                                "-d", str(locale), "-D", "ivr", "--no-fuzzy-matching"])
    after = {lang: {m.id: m.string for m in cat} for lang, cat in catalogues(locale).items()}
    assert after == before
    assert untranslated(locale) == []


def test_every_literal_key_used_exists() -> None:
    used: set[str] = set()
    for template in (WEB / "templates").rglob("*.html"):
        used.update(re.findall(r"\bt\('([a-z0-9_]+)'\s*[,)]", template.read_text(encoding="utf-8")))
    for module in WEB.glob("*.py"):
        text = module.read_text(encoding="utf-8")
        used.update(re.findall(r"\bt\(request, \"([a-z0-9_]+)\"\s*[,)]", text))
        used.update(re.findall(r"(?:TaskError|AuthError|Problem)\(\"([a-z0-9_]+)\"", text))
    missing = sorted(k for k in used if k not in i18n.RU)
    assert missing == []
    assert len(used) > 150


def test_every_value_of_a_translated_choice_has_a_text() -> None:
    from ivr.db.models import CaseState, TaskState
    from ivr.dialer.policy import COUNTS, HOLIDAY_POLICIES, ON_END, PERIODS
    from ivr.outbox.events import KINDS
    from ivr.prompts import TEMPLATE_DOC
    from ivr.prompts.context import CONTEXT_DOC
    from ivr.reports.funnel import FAULT_KINDS
    from ivr.web import admin_data, auth, forms, tasks

    choices = {
        "result_": [k.value for k in tasks.ResultKind], "role_": auth.ROLES, "weekday_": range(8),
        "on_end_": ON_END, "holiday_": HOLIDAY_POLICIES, "period_": PERIODS, "counts_": COUNTS,
        "category_": forms.CATEGORIES, "anchor_": forms.ANCHORS, "state_": [s.value for s in TaskState],
        "import_": admin_data.IMPORT_KINDS, "case_state_": [s.value for s in CaseState], "field_day": range(8),
        "prompt_doc_": TEMPLATE_DOC, "var_doc_": CONTEXT_DOC, "outbox_kind_": [k.replace(".", "_") for k in KINDS],
        "lang_name_": i18n.LANGUAGES, "scope_short_": auth.SCOPES,
        "ladder_stage_": [stage["code"] for stage in seed_ladder()], "optout_source_": ("keypad", "admin", "api"),
        "fault_": FAULT_KINDS,
    }
    for prefix, values in choices.items():
        for value in values:
            for lang in i18n.LANGUAGES:
                assert f"{prefix}{value}" in i18n.MESSAGES[lang], f"{lang}: {prefix}{value}"


def seed_ladder() -> list[dict[str, str]]:
    from ivr.db.seed import load_seed

    return list(load_seed()["ladder"])


def test_seeded_stage_names_are_the_english_labels() -> None:
    """A seeded stage is shown by its label while it keeps its seeded name, which the English
    catalogue must therefore spell exactly as the settings file does."""
    from ivr.web.labels import stage_name

    for stage in seed_ladder():
        assert i18n.EN[f"ladder_stage_{stage['code']}"] == stage["name"]
        assert stage_name("uk", stage["code"], stage["name"]) == i18n.UK[f"ladder_stage_{stage['code']}"]
    assert stage_name("uk", "blocked", "Renamed by the admin") == "Renamed by the admin"
    assert stage_name("uk", "new_stage", "Новий етап") == "Новий етап"


def test_translate_fallbacks() -> None:
    assert i18n.translate("en", "login") == "Sign in"
    assert i18n.translate("uk", "login") == "Увійти"
    assert i18n.translate("de", "login") == "Войти"  # unknown language: Russian
    assert i18n.translate("en", "no_such_key") == "no_such_key"
    assert i18n.translate("en", "minutes_n", n=5) == "5 min"
    assert i18n.translate("uk", "minutes_n", n=5) == "5 хв."
    assert i18n.translate("en", "minutes_n") == "{n} min"  # a missing parameter never breaks a page


def test_a_registered_module_not_yet_folded_is_used_in_every_language(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between a merge and the fold, a strings module's Ukrainian texts still show in Ukrainian
    (its registration lines only update RU and EN)."""
    import sys
    import types

    module = types.ModuleType("ivr.web.strings_zz")
    module.STRINGS = {"ru": {"zz_x": "икс"}, "uk": {"zz_x": "ікс"}, "en": {"zz_x": "ex"}}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ivr.web.strings_zz", module)
    monkeypatch.setitem(i18n.RU, "zz_x", "икс")
    monkeypatch.setitem(i18n.EN, "zz_x", "ex")
    assert [i18n.translate(lang, "zz_x") for lang in ("ru", "uk", "en")] == ["икс", "ікс", "ex"]


def test_the_catalogues_are_package_data() -> None:
    """The app reads the .po files at import, so an installed package (a wheel) must carry them."""
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]["ivr"]
    files = [p.relative_to(root / "ivr").as_posix() for p in (root / "ivr" / "locale").rglob("*.po*")]
    assert len(files) == 1 + len(i18n.LANGUAGES)
    assert [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)] == []
