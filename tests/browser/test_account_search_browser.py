"""An operator in a real browser finds a subscriber by a fragment of the phone number from the
search box in the header and opens the account page (under the app's strict CSP)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import LiveServer, add_user, login, make_debtor, screenshot

pytestmark = pytest.mark.browser


def test_operator_finds_account_by_phone_fragment(chromium: Any, live_server: LiveServer) -> None:
    add_user(live_server.db, "olga", "operator", phone="PJSIP/101")
    wanted, _ = make_debtor(live_server.db, "A-2001", number="+79165550011")
    make_debtor(live_server.db, "A-2002", holder="Ёлкин Семён", number="+79037770022")
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="ru-RU")
    page = context.new_page()
    problems: list[str] = []
    # script errors and CSP refusals; a missing favicon is the browser's own guess, not ours
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("response", lambda r: problems.append(r.url) if r.status >= 400 and "favicon" not in r.url else None)
    try:
        login(page, live_server, "olga")
        page.goto(live_server.url + "/queues")
        page.fill("#find-q", "555-00-11")
        page.press("#find-q", "Enter")
        page.wait_for_url("**/accounts?q=*")
        rows = page.locator("#search-results tbody tr")
        assert rows.count() == 1
        assert "Смирнова Ольга Викторовна" in rows.first.inner_text()
        assert "+7916*****11" in rows.first.inner_text()
        screenshot(page, "account-search")
        rows.first.locator("a").first.click()
        page.wait_for_url(f"**/accounts/{wanted}")
        main = page.locator("main").inner_text()
        for expected in ("Смирнова Ольга Викторовна", "A-2001", "Охрана квартиры", "Europe/Moscow"):
            assert expected in main, expected
        assert "+79165550011" not in page.content()
        screenshot(page, "account-page")
        assert problems == []  # nothing refused by the CSP, no script errors
    finally:
        context.close()
