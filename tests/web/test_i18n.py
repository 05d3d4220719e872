"""Both UI languages have every text, and every text a template or handler asks for exists."""

from __future__ import annotations

import re
from pathlib import Path

from ivr.web import i18n

WEB = Path(i18n.__file__).parent


def test_catalogues_have_the_same_keys() -> None:
    assert set(i18n.RU) == set(i18n.EN)
    for key in i18n.RU:
        ru_params = set(re.findall(r"{(\w+)}", i18n.RU[key]))
        assert ru_params == set(re.findall(r"{(\w+)}", i18n.EN[key])), key


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
    from ivr.web import admin_data, auth, forms, tasks

    choices = {
        "result_": [k.value for k in tasks.ResultKind], "role_": auth.ROLES, "weekday_": range(8),
        "on_end_": ON_END, "holiday_": HOLIDAY_POLICIES, "period_": PERIODS, "counts_": COUNTS,
        "category_": forms.CATEGORIES, "anchor_": forms.ANCHORS, "state_": [s.value for s in TaskState],
        "import_": admin_data.IMPORT_KINDS, "case_state_": [s.value for s in CaseState], "field_day": range(8),
    }
    for prefix, values in choices.items():
        for value in values:
            assert f"{prefix}{value}" in i18n.RU, f"{prefix}{value}"


def test_translate_fallbacks() -> None:
    assert i18n.translate("en", "login") == "Sign in"
    assert i18n.translate("de", "login") == "Войти"  # unknown language: Russian
    assert i18n.translate("en", "no_such_key") == "no_such_key"
    assert i18n.translate("en", "minutes_n", n=5) == "5 min"
    assert i18n.translate("en", "minutes_n") == "{n} min"  # a missing parameter never breaks a page
