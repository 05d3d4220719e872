"""build_context: every documented variable, filled from the account and case."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

from ivr.config import Settings
from ivr.prompts.context import (
    CONTEXT_DOC,
    build_context,
    promise_horizon,
    sample_context,
    with_promise_date,
)

TODAY = dt.date(2025, 11, 18)


def account(**kw: object) -> SimpleNamespace:
    values: dict[str, object] = dict(
        holder_name="Иванов Иван", service_name="Интернет", tariff="Базовый", balance=Decimal("999"),
        currency="RUB", due_date=dt.date(2025, 11, 10), block_date=dt.date(2025, 11, 25),
    )
    values.update(kw)
    return SimpleNamespace(**values)


def case(**kw: object) -> SimpleNamespace:
    values: dict[str, object] = dict(amount_owed=Decimal("1800.50"), currency="RUB", opened_on=dt.date(2025, 11, 10), stage_code="firm")
    values.update(kw)
    return SimpleNamespace(**values)


def reason(key: str, code: str, **labels: str) -> SimpleNamespace:
    return SimpleNamespace(key=key, code=code, labels=labels)


def test_context_fills_every_documented_variable() -> None:
    for language in ("ru", "uk", "en"):
        for sparse in (False, True):
            assert set(sample_context(language, sparse=sparse)) == set(CONTEXT_DOC)


def test_values_come_from_case_account_and_options() -> None:
    settings = Settings(company_name="ООО «Охрана»")
    ctx = build_context(
        settings=settings, account=account(), case=case(), language="ru", today=TODAY,
        reasons=[reason("2", "b", ru="второй"), reason("1", "a", ru="первый")],
        options={"human_request_key": "9", "opt_out_key": ""}, deadline=dt.date(2025, 11, 30),
    )
    assert ctx["company"] == "ООО «Охрана»"
    assert ctx["amount"] == Decimal("1800.50")  # the case's amount, not the account balance
    assert ctx["amount_words"] == "одна тысяча восемьсот рублей пятьдесят копеек"
    assert ctx["block_date_words_gen"] == "двадцать пятого ноября"
    assert ctx["block_date_text"] == "25 ноября"
    assert ctx["deadline_words_gen"] == "тридцатого ноября"
    assert ctx["days_overdue"] == 8 and ctx["days_to_block"] == 7
    assert ctx["stage"] == "firm"
    assert ctx["human_key"] == "9" and ctx["opt_out_key"] == ""
    assert ctx["promise_date"] is None and ctx["promise_date_words"] == ""
    # the classifier's menu order is kept
    assert ctx["reasons"] == [{"key": "2", "label": "второй", "code": "b"}, {"key": "1", "label": "первый", "code": "a"}]


def test_without_case_uses_account_balance_and_missing_labels_fall_back() -> None:
    settings = Settings()
    ctx = build_context(settings=settings, account=account(currency="UAH", block_date=None), case=None,
                        language="uk", today=TODAY, reasons=[reason("1", "forgot", ru="забыл"), reason("2", "other")])
    assert ctx["amount_words"] == "дев'ятсот дев'яносто дев'ять гривень"
    assert ctx["block_date"] is None and ctx["block_date_words_gen"] == "" and ctx["days_to_block"] is None
    assert [r["label"] for r in ctx["reasons"]] == ["забыл", "other"]  # default language, then the code
    assert ctx["human_key"] == "" and ctx["opt_out_key"] == ""


def test_with_promise_date_only_changes_the_promise_variables() -> None:
    ctx = sample_context("en")
    later = with_promise_date(ctx, dt.date(2025, 12, 1))
    assert later["promise_date_words"] == "December first"
    assert {k for k in ctx if ctx[k] != later[k]} == {"promise_date", "promise_date_words", "promise_date_words_gen", "promise_date_text"}


def test_promise_horizon() -> None:
    options = {"promise_horizon_days_after_block": 5, "promise_horizon_max_days": 30}
    assert promise_horizon(TODAY, dt.date(2025, 11, 25), options) == dt.date(2025, 11, 30)
    assert promise_horizon(TODAY, dt.date(2026, 3, 1), options) == TODAY + dt.timedelta(days=30)
    assert promise_horizon(TODAY, None, options) == TODAY + dt.timedelta(days=30)
    # block date long past: today is still a valid promise
    assert promise_horizon(TODAY, dt.date(2025, 10, 1), options) == TODAY
