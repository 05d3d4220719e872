"""The shipped templates: complete in every language, render cleanly, and disclose nothing
about the debt before the identity is confirmed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from ivr.prompts import DEBT_MESSAGES, PRE_IDENTITY, TEMPLATE_NAMES
from ivr.prompts.context import build_context, sample_context, with_promise_date
from ivr.prompts.render import PromptStore

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
LANGUAGES = ("ru", "uk", "en")
STORE = PromptStore(PROMPTS)

# Words that would tell a third party there is a debt (stems, lower case).
DEBT_WORDS = {
    "ru": ("долг", "задолж", "оплат", "плат", "сумм", "рубл", "копе", "приостан", "огранич", "услуг"),
    "uk": ("борг", "заборг", "оплат", "сплат", "плат", "сум", "гривн", "гривен", "копій", "призупин", "обмеж", "послуг"),
    "en": ("debt", "owe", "pay", "balance", "amount", "due", "dollar", "rouble", "suspend", "restrict", "service"),
}


def test_every_template_exists_in_every_language() -> None:
    for language in LANGUAGES:
        assert set(STORE.file_names(language)) == set(TEMPLATE_NAMES), language


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("sparse", [False, True], ids=["full", "sparse"])
def test_every_template_renders_without_leftovers(language: str, sparse: bool) -> None:
    context = sample_context(language, sparse=sparse)
    for name in TEMPLATE_NAMES:
        text = STORE.render(name, language, context)
        assert text, name
        for leftover in ("{{", "}}", "{%", "%}", "{#", "None", "  "):
            assert leftover not in text, (name, text)
        assert not text.startswith((".", ",", " ")), (name, text)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("sparse", [False, True], ids=["full", "sparse"])
def test_nothing_about_the_debt_before_identity(language: str, sparse: bool) -> None:
    context = sample_context(language, sparse=sparse)
    for name in PRE_IDENTITY:
        text = STORE.render(name, language, context).lower()
        assert str(context["amount"]) not in text and "1800" not in text and "1 800" not in text
        assert str(context["amount_words"]).lower() not in text
        assert str(context["amount_text"]).lower() not in text
        if context["service"]:
            assert str(context["service"]).lower() not in text, (name, text)
        for stem in DEBT_WORDS[language]:
            assert stem not in text, (name, stem, text)


@pytest.mark.parametrize("language", LANGUAGES)
def test_greeting_names_the_company_and_identity_the_holder(language: str) -> None:
    context = sample_context(language)
    assert str(context["company"]) in STORE.render("greeting", language, context)
    assert str(context["holder_name"]) in STORE.render("identity", language, context)
    machine = STORE.render("machine", language, context)
    assert str(context["holder_name"]) not in machine


def test_russian_identity_is_the_brief_wording() -> None:
    text = STORE.render("identity", "ru", sample_context("ru"))
    assert text == "Если вы Иванов Иван Иванович, нажмите 1; если нет — нажмите 2."


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("name", [n for n in DEBT_MESSAGES if n not in ("before_due", "thank_you")])
def test_debt_messages_say_amount_service_and_block_date(language: str, name: str) -> None:
    context = sample_context(language)
    text = STORE.render(name, language, context)
    assert str(context["amount_words"]) in text
    assert str(context["service"]) in text
    if name != "debt_blocked":  # the block date is in the future in the sample: "if not paid by ..."
        assert context["block_date_words_gen"] in text or context["block_date_words"] in text


def test_russian_debt_message_wording() -> None:
    text = STORE.render("debt_soft", "ru", sample_context("ru"))
    assert "одна тысяча восемьсот рублей пятьдесят копеек" in text
    assert "если оплата не поступит до двадцать пятого ноября, услуга будет приостановлена" in text.lower()


@pytest.mark.parametrize("language", LANGUAGES)
def test_block_date_in_the_past_is_not_threatened_as_future(language: str) -> None:
    context = sample_context(language)
    today = context["today"]
    assert isinstance(today, dt.date)
    past = today - dt.timedelta(days=2)
    context.update(block_date=past, days_to_block=-2)
    for name in ("debt_soft", "debt_firm", "broken_promise"):
        assert context["block_date_words_gen"] not in STORE.render(name, language, context)


def test_blocked_message_says_since_when() -> None:
    settings = SimpleNamespace(company_name="X", default_currency="RUB", default_language="ru")
    account = SimpleNamespace(holder_name="A", service_name="ТВ", tariff="", balance=Decimal("5"), currency="RUB",
                              due_date=dt.date(2025, 10, 1), block_date=dt.date(2025, 11, 1))
    context = build_context(settings=settings, account=account, case=None, language="ru", today=dt.date(2025, 11, 10))
    assert "приостановлена с первого ноября" in STORE.render("debt_blocked", "ru", context)


@pytest.mark.parametrize("language", LANGUAGES)
def test_menu_offers_human_and_opt_out_keys_only_when_enabled(language: str) -> None:
    full = STORE.render("menu", language, sample_context(language))
    sparse = STORE.render("menu", language, sample_context(language, sparse=True))
    for key in ("1", "2", "3", "0"):
        assert key in full and key in sparse
    assert "9" in full and "7" in full
    assert "9" not in sparse and "7" not in sparse


def test_russian_menu_wording() -> None:
    text = STORE.render("menu", "ru", sample_context("ru", sparse=True))
    assert text == ("Чтобы назвать дату оплаты, нажмите 1. Если вы уже оплатили — 2. "
                    "Чтобы сообщить причину неоплаты — 3. Повторить — 0.")


@pytest.mark.parametrize(("language", "star"), [("ru", "звёздочку"), ("uk", "зірочку"), ("en", "star")])
def test_date_entry_explains_ddmm_and_star_shortcuts(language: str, star: str) -> None:
    text = STORE.render("date_entry", language, sample_context(language))
    assert "0, 5, 0, 3" in text
    assert f"{star} and 1" in text or f"{star} и 1" in text or f"{star} і 1" in text
    assert f"{star} and 2" in text or f"{star} и 2" in text or f"{star} і 2" in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_readback_reads_each_date(language: str) -> None:
    context = sample_context(language)
    today = context["today"]
    assert isinstance(today, dt.date)
    texts = set()
    for offset in range(10):
        day = today + dt.timedelta(days=offset)
        rendered = STORE.render("date_readback", language, with_promise_date(context, day))
        local = with_promise_date(context, day)
        assert local["promise_date_words_gen"] in rendered or local["promise_date_words"] in rendered
        texts.add(rendered)
    assert len(texts) == 10


@pytest.mark.parametrize("language", LANGUAGES)
def test_beyond_horizon_names_the_deadline(language: str) -> None:
    context = sample_context(language)
    text = STORE.render("date_beyond_horizon", language, context)
    assert context["deadline_words_gen"] in text or context["deadline_words"] in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_reason_menu_lists_every_reason_with_its_key(language: str) -> None:
    context = sample_context(language)
    text = STORE.render("reason_menu", language, context).lower()
    reasons = context["reasons"]
    assert isinstance(reasons, list) and reasons
    for reason in reasons:
        assert reason["label"].lower() in text
        assert reason["key"] in text


def test_callback_promise_says_a_specialist_will_call() -> None:
    assert "специалист перезвонит вам" in STORE.render("callback_promise", "ru", sample_context("ru")).lower()
