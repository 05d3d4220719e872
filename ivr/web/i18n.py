"""Interface texts of the web UI in Russian (the default), Ukrainian and English.

The texts live in gettext catalogues, `ivr/locale/<lang>/LC_MESSAGES/ivr.po`, which translators
edit (README: "UI languages and translations"); they are read with Babel once, at import. The
msgid of a text is the key the code asks for (`t("login")`); its English text is the '#.' comment
of every entry. `translate` falls back to Russian and then to the key itself, so a missing entry
shows up as its key instead of breaking a page (tests/web/test_i18n.py fails on any such gap).

New texts come as `ivr/web/strings_<name>.py` modules registered at the end of this file and are
folded into the catalogues with `scripts/i18n_fold.py`."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

log = logging.getLogger(__name__)

DOMAIN = "ivr"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DEFAULT_LANGUAGE = "ru"
LANGUAGES = ("ru", "uk", "en")


def load_catalogue(lang: str, locale_dir: Path = LOCALE_DIR) -> dict[str, str]:
    """key -> text of one language's catalogue. Untranslated (empty) and fuzzy entries are left
    out, as gettext does, so they fall back instead of showing an empty or doubtful text."""
    path = locale_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as f:
        catalogue = read_po(f, locale=lang, domain=DOMAIN)
    return {str(m.id): str(m.string) for m in catalogue
            if m.id and isinstance(m.string, str) and m.string and not m.fuzzy}


RU: dict[str, str] = load_catalogue("ru")
UK: dict[str, str] = load_catalogue("uk")
EN: dict[str, str] = load_catalogue("en")

MESSAGES: dict[str, dict[str, str]] = {"ru": RU, "uk": UK, "en": EN}


def _unfolded(lang: str, key: str) -> str | None:
    """A text of a strings module registered below but not yet folded into the catalogues: its
    registration lines only update RU and EN, so Ukrainian is looked up in the module itself."""
    for name, module in list(sys.modules.items()):
        if name.startswith("ivr.web.strings_"):
            text = getattr(module, "STRINGS", {}).get(lang, {}).get(key)
            if isinstance(text, str) and text:
                return text
    return None


def has_key(key: str) -> bool:
    return key in RU


def translate(lang: str, key: str, /, **params: Any) -> str:
    catalogue = MESSAGES.get(lang, RU)
    text = catalogue.get(key) or (_unfolded(lang, key) if lang in MESSAGES else None) or RU.get(key)
    if text is None:
        log.warning("missing UI text %r", key)
        return key
    if not params:
        return text
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):
        log.warning("UI text %r does not take parameters %s", key, sorted(params))
        return text


def translator(lang: str) -> Callable[..., str]:
    def t(key: str, /, **params: Any) -> str:
        return translate(lang, key, **params)

    return t
