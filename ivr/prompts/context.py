"""The variables a prompt template can use (CONTEXT_DOC) and the pure function that fills them
from an account, its debt case and the admin options (build_context)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from ivr.call import dates as call_dates
from ivr.prompts.words import date_text, date_words, money_text, money_words

# Every variable a template may reference. Validation refuses any other name, so a typo is
# caught when the admin saves, not during a call. Dates may be None (empty *_words/_text).
CONTEXT_DOC: dict[str, str] = {
    "company": "Company name (settings)",
    "holder_name": "Account holder's name",
    "amount": "Amount owed (a Decimal, e.g. 1800.50)",
    "amount_words": "Amount in words for speech: 'одна тысяча восемьсот рублей пятьдесят копеек'",
    "amount_text": "Amount in digits for display: '1 800 рублей 50 копеек'",
    "currency": "Currency code: RUB, UAH, USD, EUR",
    "service": "Service name (may be empty)",
    "tariff": "Tariff name (may be empty)",
    "due_date": "Date the payment was due (a date, may be None)",
    "due_date_words": "Due date in words, nominative: 'двадцать пятое ноября'",
    "due_date_words_gen": "Due date in words, genitive (after 'до', 'не позднее', 'оплатить ...'): 'двадцать пятого ноября'",
    "due_date_text": "Due date for display: '25 ноября'",
    "block_date": "Date the service will be (or was) restricted (a date, may be None)",
    "block_date_words": "Block date in words, nominative",
    "block_date_words_gen": "Block date in words, genitive: 'до двадцать пятого ноября'",
    "block_date_text": "Block date for display",
    "deadline": "Latest date a promise may name (the horizon; a date, may be None)",
    "deadline_words": "Deadline in words, nominative",
    "deadline_words_gen": "Deadline in words, genitive",
    "deadline_text": "Deadline for display",
    "promise_date": "date_readback: the date read back; broken_promise: the missed date; else None",
    "promise_date_words": "Promise date in words, nominative",
    "promise_date_words_gen": "Promise date in words, genitive",
    "promise_date_text": "Promise date for display",
    "keep_price_until": "Last day a payment keeps this month's price (billing column; None when absent or passed)",
    "keep_price_until_words": "That day in words, nominative",
    "keep_price_until_words_gen": "That day in words, genitive: 'до двадцать пятого ноября'",
    "keep_price_until_text": "That day for display",
    "days_to_due": "Days until the due date (0 on it, negative once passed; None if unknown)",
    "days_overdue": "Days since the due date (0 if not yet due or unknown)",
    "days_to_block": "Days until the block date (negative once passed; None if unknown)",
    "stage": "Code of the ladder stage of this call",
    "reasons": "Reason menu entries in menu order: list of {key, label, code}",
    "human_key": "Key that asks for a human ('' when disabled)",
    "opt_out_key": "Key that stops automated calls ('' when disabled)",
    "language": "Language of this call: ru, uk, en",
    "today": "Today's date in the subscriber's time zone",
    "today_words": "Today in words, nominative",
}


def _date_vars(prefix: str, value: dt.date | None, language: str) -> dict[str, Any]:
    if value is None:
        return {prefix: None, f"{prefix}_words": "", f"{prefix}_words_gen": "", f"{prefix}_text": ""}
    return {
        prefix: value,
        f"{prefix}_words": date_words(value, language),
        f"{prefix}_words_gen": date_words(value, language, case="gen"),
        f"{prefix}_text": date_text(value, language),
    }


def reason_label(reason: Any, language: str, fallback_language: str = "ru") -> str:
    """The reason's label in the call's language, else in the default one, else its code."""
    labels: Mapping[str, str] = getattr(reason, "labels", None) or {}
    return labels.get(language) or labels.get(fallback_language) or str(reason.code)


def option_key(options: Mapping[str, Any] | None, name: str) -> str:
    """A menu key from the admin options; '' (disabled) when absent or empty."""
    if not options:
        return ""
    value = options.get(name)
    return str(value).strip() if value not in (None, False) else ""


def build_context(
    *,
    settings: Any,
    account: Any,
    case: Any,
    language: str,
    today: dt.date,
    stage_code: str | None = None,
    reasons: Iterable[Any] = (),
    options: Mapping[str, Any] | None = None,
    promise_date: dt.date | None = None,
    deadline: dt.date | None = None,
) -> dict[str, Any]:
    """All CONTEXT_DOC variables for one call. Pure: reads attributes, formats words.

    `case` may be None (a preview for an account without an open case): the account's balance
    and currency are used. `reasons` are Reason rows (or anything with key, code, labels).
    """
    amount = Decimal(str(case.amount_owed if case is not None else account.balance or 0))
    currency = (case.currency if case is not None else None) or account.currency or settings.default_currency
    due_date = account.due_date or (case.opened_on if case is not None else None)
    block_date = account.block_date
    fallback = getattr(settings, "default_language", "ru")
    context: dict[str, Any] = {
        "company": settings.company_name,
        "holder_name": account.holder_name or "",
        "amount": amount,
        "amount_words": money_words(amount, currency, language),
        "amount_text": money_text(amount, currency, language),
        "currency": currency,
        "service": account.service_name or "",
        "tariff": account.tariff or "",
        "days_to_due": (due_date - today).days if due_date else None,
        "days_overdue": max((today - due_date).days, 0) if due_date else 0,
        "days_to_block": (block_date - today).days if block_date else None,
        "stage": stage_code or (case.stage_code if case is not None else None) or "",
        "reasons": [
            {"key": str(r.key), "label": reason_label(r, language, fallback), "code": str(r.code)}
            for r in reasons
        ],
        "human_key": option_key(options, "human_request_key"),
        "opt_out_key": option_key(options, "opt_out_key"),
        "language": language,
        "today": today,
        "today_words": date_words(today, language),
    }
    context.update(_date_vars("due_date", due_date, language))
    context.update(_date_vars("block_date", block_date, language))
    context.update(_date_vars("deadline", deadline, language))
    context.update(_date_vars("promise_date", promise_date, language))
    # issue 16: "pay by ... to keep this month's price" only while that day has not passed
    keep_price = getattr(account, "keep_price_until", None)
    context.update(_date_vars("keep_price_until", keep_price if keep_price and keep_price >= today else None, language))
    return context


def with_promise_date(context: Mapping[str, Any], promise_date: dt.date | None) -> dict[str, Any]:
    """A copy of the context for another promise date (the readback of each date)."""
    out = dict(context)
    out.update(_date_vars("promise_date", promise_date, str(context["language"])))
    return out


def promise_horizon(today: dt.date, block_date: dt.date | None, options: Mapping[str, Any]) -> dt.date:
    """Latest date a promise may name, from the admin options; the rule itself is the call
    script's (ivr.call.dates.promise_horizon), so what is read out matches what is accepted."""
    return call_dates.promise_horizon(
        today,
        block_date,
        int(options.get("promise_horizon_days_after_block", 5)),
        int(options.get("promise_horizon_max_days", 30)),
    )


SAMPLE_REASONS = (
    SimpleNamespace(key="1", code="forgot", labels={"ru": "забыл оплатить", "uk": "забув сплатити", "en": "forgot to pay"}),
    SimpleNamespace(key="2", code="no_invoice", labels={"ru": "не получил счёт", "uk": "не отримав рахунок", "en": "did not get the invoice"}),
)


def sample_context(language: str, *, today: dt.date | None = None, sparse: bool = False) -> dict[str, Any]:
    """A full context with made-up values, for validation and previews.

    sparse=True leaves every optional value empty (no dates, no service, no reasons, keys
    disabled) so a trial render also walks the "else" branches of a template."""
    today = today or dt.date(2025, 11, 18)
    settings = SimpleNamespace(company_name="ООО «Пример»", default_currency="RUB", default_language="ru")
    account = SimpleNamespace(
        holder_name="Иванов Иван Иванович",
        service_name="" if sparse else "охрана квартиры",
        tariff="" if sparse else "Базовый",
        balance=Decimal("1800.50"),
        currency="RUB",
        due_date=None if sparse else today - dt.timedelta(days=8),
        block_date=None if sparse else today + dt.timedelta(days=7),
        keep_price_until=None if sparse else today + dt.timedelta(days=5),
    )
    return build_context(
        settings=settings,
        account=account,
        case=None,
        language=language,
        today=today,
        stage_code="reminder",
        reasons=() if sparse else SAMPLE_REASONS,
        options={} if sparse else {"human_request_key": "9", "opt_out_key": "7"},
        promise_date=None if sparse else today + dt.timedelta(days=3),
        deadline=None if sparse else today + dt.timedelta(days=12),
    )
