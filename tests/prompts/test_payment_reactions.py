"""Issue 16 in the templates: the before-due message and the thank-you speak of no debt and
threaten nothing; the deadline phrase ("pay by ... to keep this month's price") comes from the
account's keep_price_until and is said only while that day has not passed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from ivr.prompts import NO_DEBT_MESSAGES
from ivr.prompts.context import build_context
from ivr.prompts.render import PromptStore

STORE = PromptStore(Path(__file__).resolve().parents[2] / "prompts")
LANGUAGES = ("ru", "uk", "en")
TODAY = dt.date(2026, 11, 22)
# debt wording and threats of restriction (stems, lower case)
FORBIDDEN = {
    "ru": ("долг", "задолж", "приостан", "огранич", "отключ", "блокир", "не поступ"),
    "uk": ("борг", "заборг", "призупин", "обмеж", "відключ", "блок", "не надійш"),
    "en": ("debt", "owe", "overdue", "suspend", "restrict", "block", "not been received", "not received"),
}
KEEP_PRICE = {
    "ru": "Оплатите до двадцать пятого ноября, чтобы сохранить цену этого месяца.",
    "uk": "Сплатіть до двадцять п'ятого листопада, щоб зберегти ціну цього місяця.",
    "en": "to keep this month's price",
}


def context(language: str, *, keep: dt.date | None = dt.date(2026, 11, 25), due: dt.date = dt.date(2026, 11, 25)):  # type: ignore[no-untyped-def]
    settings = SimpleNamespace(company_name="ООО «Пример»", default_currency="RUB", default_language="ru")
    account = SimpleNamespace(holder_name="Иванов Иван", service_name="охрана квартиры", tariff="", balance=Decimal("1800"),
                              currency="RUB", due_date=due, block_date=dt.date(2026, 12, 5), keep_price_until=keep)
    return build_context(settings=settings, account=account, case=None, language=language, today=TODAY)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", NO_DEBT_MESSAGES)
def test_no_debt_wording_and_no_threat(language: str, name: str) -> None:
    text = STORE.render(name, language, context(language)).lower()
    assert text
    for stem in FORBIDDEN[language]:
        assert stem not in text, (name, stem, text)


def test_russian_before_due_says_amount_and_day() -> None:
    text = STORE.render("before_due", "ru", context("ru"))
    assert "двадцать пятого ноября наступает срок оплаты услуги «охрана квартиры»" in text
    assert "одна тысяча восемьсот рублей" in text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", ["before_due", "debt_soft"])
def test_deadline_phrase_only_when_the_account_has_one(language: str, name: str) -> None:
    assert KEEP_PRICE[language] in STORE.render(name, language, context(language))
    assert KEEP_PRICE[language] not in STORE.render(name, language, context(language, keep=None))
    # the day has passed: promising the old price would be false
    assert KEEP_PRICE[language] not in STORE.render(name, language, context(language, keep=TODAY - dt.timedelta(days=1)))


def test_keep_price_variables() -> None:
    ctx = context("ru")
    assert ctx["keep_price_until"] == dt.date(2026, 11, 25)
    assert ctx["keep_price_until_words_gen"] == "двадцать пятого ноября"
    assert ctx["days_to_due"] == 3
    assert context("ru", keep=None)["keep_price_until_words_gen"] == ""
