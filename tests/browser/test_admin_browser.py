"""An admin in a real browser: a broken template is refused, the fixed one saved, previewed as
text and audio; closing today's call window stops the dialer from selecting a case it selected
a moment before; the classifier and the import report render."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from ivr.db.models import PromptTemplate
from ivr.dialer.policy import load_rules
from ivr.dialer.selector import select_candidates

from .conftest import NOW, LiveServer, add_user, login, make_debtor, screenshot

pytestmark = pytest.mark.browser

BAD_CSV = (
    "Лицевой счёт;ФИО;Телефон;Сумма долга;Срок оплаты;Дата блокировки\n"
    "B-1;Иванов Иван;+7 916 111-22-33;1 800,50;10.11.2025;25.11.2025\n"
    "B-2;Петрова Анна;;950,00;10.11.2025;25.11.2025\n"
    "B-3;Сидоров Олег;+7 916 222-33-44;много;10.11.2025;25.11.2025\n"
).encode("cp1251")


def _selected_case_ids(server: LiveServer) -> set[int]:
    with server.db.sessions() as s:
        rules = load_rules(s, server.settings.default_timezone)
        ids = {c.case_id for c in select_candidates(s, rules, NOW, 50)}
        s.rollback()  # selection may bump next_attempt_at; this check must not change anything
    return ids


def _overrides(server: LiveServer) -> list[tuple[str, str]]:
    with server.db.sessions() as s:
        return [(r.name, r.body) for r in s.scalars(select(PromptTemplate))]


def test_admin_templates_windows_classifier_import(chromium: Any, live_server: LiveServer) -> None:
    add_user(live_server.db, "root", "admin")
    _account_id, case_id = make_debtor(live_server.db, "W-1")
    assert case_id in _selected_case_ids(live_server)  # due, inside Wednesday's window

    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="ru-RU")
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    try:
        login(page, live_server, "root")
        assert page.url.endswith("/admin")

        # 1. a broken template is refused and not saved; the admin's text stays in the editor
        page.goto(live_server.url + "/admin/prompts/edit?name=greeting&lang=ru&stage=")
        page.fill("#template-body", "Здравствуйте! Вас беспокоит {{ company ")
        page.click("#save-template")
        error = page.locator("#template-error")
        assert "greeting (ru), строка 1: синтаксическая ошибка" in error.inner_text()
        assert page.locator("#template-body").input_value() == "Здравствуйте! Вас беспокоит {{ company "
        assert _overrides(live_server) == []
        screenshot(page, "template-refused")

        # 2. fixed: saved
        page.fill("#template-body", "Здравствуйте! Вас беспокоит {{ company }}.")
        page.click("#save-template")
        assert "Шаблон сохранён" in page.locator(".flash").first.inner_text()
        assert _overrides(live_server) == [("greeting", "Здравствуйте! Вас беспокоит {{ company }}.")]

        # 3. preview: text and a playable WAV
        page.click("#preview-template")
        text = page.locator("#preview-text").inner_text()
        assert text == "Здравствуйте! Вас беспокоит ООО «Охрана-Сервис»."
        src = page.locator("#preview-audio").get_attribute("src")
        assert src and src.startswith("/admin/audio/")
        audio = page.request.get(live_server.url + src)
        assert audio.status == 200 and audio.headers["content-type"] == "audio/wav"
        assert audio.body()[:4] == b"RIFF"
        duration = page.evaluate("""async () => {
            const a = document.getElementById('preview-audio');
            a.preload = 'auto'; a.load();
            await new Promise((ok, bad) => { a.onloadedmetadata = ok; a.onerror = bad; });
            return a.duration; }""")
        assert duration > 1.0  # Chromium decoded the WAV
        screenshot(page, "templates-editor")

        # 4. close today's (Wednesday's) window: the dialer no longer selects the case
        page.goto(live_server.url + "/admin/windows")
        assert page.locator("#day2").input_value() == "09:00-20:00"
        screenshot(page, "windows")
        page.fill("#day2", "")
        page.click("#windows-form button[type=submit]")
        assert "Сохранено" in page.locator(".flash").first.inner_text()
        assert page.locator("#day2").input_value() == ""
        assert case_id not in _selected_case_ids(live_server)

        # 5. the classifier
        page.goto(live_server.url + "/admin/reasons")
        assert page.locator("#norm-sum").inner_text() == "100.00"
        assert "недоволен качеством услуги" in page.locator("#reasons").inner_text()
        screenshot(page, "classifier")

        # 6. billing import with bad rows
        page.goto(live_server.url + "/admin/import")
        page.set_input_files("input[name=file]", files=[{"name": "billing.csv", "mimeType": "text/csv",
                                                         "buffer": BAD_CSV}])
        page.click("#import-form button[type=submit]")
        page.wait_for_selector("#preview-form")  # the wizard's preview first (issue 14), then confirm
        page.click("#confirm")
        page.wait_for_selector("#rows-ok", timeout=60_000)  # the job page reloads when the import is done
        assert page.locator("#rows-ok").inner_text() == "1"
        assert page.locator("#rows-bad").inner_text() == "2"
        lines = page.locator("#bad-rows tbody tr td:first-child").all_inner_texts()
        assert lines == ["3", "4"]
        screenshot(page, "import-report")
    finally:
        context.close()
