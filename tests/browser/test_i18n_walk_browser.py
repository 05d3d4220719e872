"""The whole UI in Ukrainian (and in Russian), in a real browser: every page the navigation leads
to, as an admin and as an operator, shows no catalogue key, no letter of the other alphabet and no
English word (apart from names and codes that are the same in every language), and is
photographed at 1366x900 and 390x844 (tests/artifacts/screenshots/<lang>-<role>-<page>-<width>.png).

The pages are found by following the navigation, so a page added later is walked too."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest

from ivr.db.models import (
    Account,
    CallAttempt,
    CallbackTask,
    DebtCase,
    OptOut,
    OutboxEvent,
    Outcome,
    PhoneNumber,
    Reason,
)
from ivr.web import i18n

from .conftest import NOW, SCREENSHOTS, LiveServer, add_user, login

pytestmark = pytest.mark.browser

SIZES = {"1366": {"width": 1366, "height": 900}, "390": {"width": 390, "height": 844}}
NAIVE_NOW = NOW.replace(tzinfo=None)

# Latin words that are the same in every UI language: names of protocols, formats and products,
# units, the language switch, and the data this test makes (usernames, account numbers).
ALLOWED_LATIN = {
    "UTC", "API", "CSV", "SVG", "PNG", "AMI", "FastAGI", "Asterisk", "PJSIP", "SIP", "WAV", "Jinja2", "UTF-8",
    "Windows-1251", "RU", "UK", "EN", "ru", "uk", "en", "RUB", "UAH", "USD", "EUR", "Bearer", "Authorization",
    "IVR_BILLING_PUSH_URL", "ivr", "run", "import", "export", "JSON", "Excel", "UTF-16", "espeak-ng",
    "voice-pack", "check",
    # the prompt editor's help names a reason entry's fields as a template spells them
    "key", "label", "code",
    "root", "op1", "U-1001", "U-1002", "U", "PJSIP/101",
}
# letters one of the two alphabets has and the other has not
FOREIGN_LETTERS = {"uk": re.compile("[ыэъёЫЭЪЁ]"), "ru": re.compile("[іїєґІЇЄҐ]")}


def _seed(server: LiveServer) -> dict[str, int]:
    """A subscriber with a case in the last stage, a finished robot call that ended in a promise,
    an operator task in the retention queue, an opt-out from the keypad and an outbox event: the
    codes the issue saw shown raw (blocked, keypad, promise, retention)."""
    add_user(server.db, "root", "admin")
    add_user(server.db, "op1", "operator", phone="PJSIP/101")
    with server.db.sessions.begin() as s:
        account = Account(external_id="U-1001", holder_name="Шевченко Тарас Григорович", service_name="Охорона квартири",
                          tariff="Стандарт", balance=Decimal("1800.50"), currency="UAH", due_date=dt.date(2025, 11, 10),
                          block_date=dt.date(2025, 11, 18), timezone="Europe/Kyiv", language="uk")
        account.phones = [PhoneNumber(number="+380671234567", priority=1)]
        s.add(account)
        s.flush()
        case = DebtCase(account_id=account.id, opened_on=dt.date(2025, 11, 10), amount_initial=Decimal("1800.50"),
                        amount_owed=Decimal("1800.50"), currency="UAH", state="active", stage_code="blocked",
                        stage_entered_at=NAIVE_NOW - dt.timedelta(days=1), next_attempt_at=NAIVE_NOW)
        s.add(case)
        s.flush()
        attempt = CallAttempt(debt_case_id=case.id, account_id=account.id, phone="+380671234567", language="uk",
                              stage_code="blocked", purpose="robot", action_id="walk-1", state="done",
                              result="answered", created_at=NAIVE_NOW - dt.timedelta(hours=2),
                              originated_at=NAIVE_NOW - dt.timedelta(hours=2))
        s.add(attempt)
        s.flush()
        s.add(Outcome(attempt_id=attempt.id, identity="confirmed", kind="promise",
                      created_at=NAIVE_NOW - dt.timedelta(hours=2)))
        reason = s.query(Reason).filter_by(code="moving_away").one()
        task = CallbackTask(account_id=account.id, debt_case_id=case.id, reason_id=reason.id, queue="retention",
                            due_at=NAIVE_NOW - dt.timedelta(hours=1), created_at=NAIVE_NOW - dt.timedelta(hours=1))
        s.add(task)
        s.add(OptOut(account_id=account.id, phone="+380671234567", source="keypad", created_at=NAIVE_NOW))
        s.add(OutboxEvent(idempotency_key="walk-1", account_id=account.id, account_external_id="U-1001", seq=1,
                          kind="promise.made", payload={}, created_at=NAIVE_NOW, next_try_at=NAIVE_NOW))
        s.flush()
        return {"account": account.id, "task": task.id}


def _visible_text(page: Any) -> str:
    """What a reader sees, less identifiers shown as code, plus the labels of choices in selects
    (innerText leaves closed selects' options out) and placeholders and titles."""
    return str(page.evaluate("""() => {
        const body = document.body.cloneNode(true);
        // identifiers an admin edits or a template names are shown as code on purpose, and a
        // report's code column (hidden on a phone) stands beside the readable label
        body.querySelectorAll('code, select.code, script, style, textarea, td.hide-narrow, th.hide-narrow')
            .forEach(e => e.remove());
        const extra = [];
        document.querySelectorAll('option').forEach(o => { if (!o.closest('select.code')) extra.push(o.textContent); });
        document.querySelectorAll('[placeholder], [title], [aria-label]').forEach(e => {
            ['placeholder', 'title', 'aria-label'].forEach(a => { if (e.getAttribute(a)) extra.push(e.getAttribute(a)); });
        });
        const holder = document.createElement('div');
        holder.appendChild(body);
        document.documentElement.appendChild(holder);
        const text = holder.innerText;
        holder.remove();
        return text + '\\n' + extra.join('\\n');
    }"""))


def _keys_pattern() -> re.Pattern[str]:
    # every catalogue key: shown on a page it means a text is missing
    keys = sorted((k for k in i18n.RU if "_" in k), key=len, reverse=True)
    return re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, keys)) + r")(?![\w-])")


def untranslated_on(text: str, lang: str = "uk") -> list[str]:
    from ivr.prompts.context import CONTEXT_DOC

    # time zone names (Europe/Kyiv) are the same in every language; ISO times (2025-11-19T10:00)
    # are the live page's, which the time-zone work shows in the reader's zone
    text = re.sub(r"\b[A-Z][a-z]+/[A-Za-z_]+\b|\d{4}-\d\d-\d\dT[\d:.+]+Z?", " ", text)
    # a template variable named in the prompt help is spelled as a template spells it
    variables = set(CONTEXT_DOC)
    found = [f"key {m}" for m in sorted(set(_keys_pattern().findall(text)) - variables)]
    found += [f"letter of the other alphabet in {line.strip()!r}" for line in text.splitlines()
              if FOREIGN_LETTERS[lang].search(line)]
    words = set(re.findall(r"[A-Za-z][A-Za-z0-9_/.-]*[A-Za-z0-9]|[A-Za-z]", text))
    found += [f"English word {w!r}" for w in sorted(words - ALLOWED_LATIN - variables)]
    return found


def test_the_check_catches_keys_russian_and_english() -> None:
    assert untranslated_on("Черги · live_title") == ["key live_title", "English word 'live_title'"]
    assert untranslated_on("Отказы от звонков") == ["letter of the other alphabet in 'Отказы от звонков'"]
    assert untranslated_on("Відмови від дзвінків", "ru") == [
        "letter of the other alphabet in 'Відмови від дзвінків'"]
    assert untranslated_on("Отказы от звонков", "ru") == []
    assert untranslated_on("Етап: blocked, keypad") == ["English word 'blocked'", "English word 'keypad'"]
    assert untranslated_on("Черги · U-1001 · UTC") == []


def _links(page: Any, selector: str) -> list[str]:
    hrefs = page.eval_on_selector_all(selector, "els => els.map(e => e.getAttribute('href'))")
    return [h for h in hrefs if h and h.startswith("/")]


def _walk(page: Any, server: LiveServer, lang: str, role: str, extra: list[str]) -> dict[str, list[str]]:
    """Every page reachable from the main and admin navigation (and the reports list), plus
    `extra`; returns each page's problems and photographs it."""
    page.goto(server.url + "/")
    page.click(f"form.lang button[value={lang}]")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == lang
    todo = _links(page, "nav.main-nav a") + extra
    seen: list[str] = []
    problems: dict[str, list[str]] = {}
    while todo:
        path = todo.pop(0)
        if path in seen:
            continue
        seen.append(path)
        response = page.goto(server.url + path)
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("networkidle")
        if urlsplit(page.url).path == "/admin":
            todo += _links(page, "nav.sub-nav a")
        if urlsplit(page.url).path == "/reports":
            todo += [h for h in _links(page, "main a") if h.startswith("/reports/")]
        found = untranslated_on(_visible_text(page), lang)
        if found:
            problems[path] = found
        slug = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home"
        for size, viewport in SIZES.items():
            page.set_viewport_size(viewport)
            page.screenshot(path=str(SCREENSHOTS / f"{lang}-{role}-{slug}-{size}.png"), full_page=True)
        page.set_viewport_size(SIZES["1366"])
    assert len(seen) >= len(extra) + 2
    return problems


@pytest.mark.parametrize("lang", ["uk", "ru"])
def test_every_page_has_no_untranslated_text(chromium: Any, live_server: LiveServer, lang: str) -> None:
    ids = _seed(live_server)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: dict[str, dict[str, list[str]]] = {}
    walked: dict[str, int] = {}
    for role, username, extra in (
        ("admin", "root", ["/admin/reasons/new", "/admin/ladder/new", "/admin/prompts/edit?name=menu&lang=uk&stage=",
                           f"/accounts/{ids['account']}", f"/tasks/{ids['task']}"]),
        ("operator", "op1", [f"/tasks/{ids['task']}", f"/accounts/{ids['account']}", "/accounts?q=U-1001"]),
    ):
        context = chromium.new_context(viewport=SIZES["1366"], locale=f"{lang}-{'UA' if lang == 'uk' else 'RU'}")
        page = context.new_page()
        try:
            login(page, live_server, username)
            found = _walk(page, live_server, lang, role, extra)
            walked[role] = len(list(SCREENSHOTS.glob(f"{lang}-{role}-*-390.png")))
            if found:
                problems[role] = found
        finally:
            context.close()
    # the list is an artefact too: what a translator has to look at when this fails
    (SCREENSHOTS / f"{lang}-untranslated.json").write_text(json.dumps(problems, ensure_ascii=False, indent=1),
                                                      encoding="utf-8")
    assert problems == {}
    # the admin sees every admin page and the reports; the operator at least queues and live
    assert walked["admin"] >= 20 and walked["operator"] >= 5
