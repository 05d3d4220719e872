"""An operator in a real browser: log in, take the callback a robot call raised, read the account
card (attempts and keys), record a promise, and check the database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from ivr.db.models import CallbackTask, DebtCase, Promise

from .conftest import LiveServer, add_user, login, screenshot

pytestmark = pytest.mark.browser


def test_operator_takes_callback_and_records_promise(chromium: Any, live_server: LiveServer,
                                                     raised_callback: int) -> None:
    add_user(live_server.db, "olga", "operator", phone="PJSIP/101")
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="ru-RU")
    page = context.new_page()
    try:
        page.goto(live_server.url + "/queues")
        assert "/login" in page.url  # not logged in: sent to the login page
        screenshot(page, "login")
        login(page, live_server, "olga")
        assert page.url.endswith("/queues")
        counts = page.locator("#queue-counts")
        assert "Качество услуги" in counts.inner_text()
        screenshot(page, "queues")

        page.click("#take-next")
        page.wait_for_url(f"**/tasks/{raised_callback}")
        card = page.locator("main")
        text = card.inner_text()
        for expected in ("Смирнова Ольга Викторовна", "A-2001", "Охрана квартиры", "2\u00a0450,00 RUB",
                         "Europe/Moscow", "недоволен качеством услуги", "проверка личности", "меню причин",
                         "подтверждена", "+7916*****11"):
            assert expected in text, expected
        assert "+79165550011" not in page.content()
        keys = page.locator("table.steps td.keys").all_inner_texts()
        assert keys == ["—", "1", "—", "—", "3", "4", "—"]  # greet, identity, message, silent menu, menu, reason, close
        assert page.locator("#local-time").inner_text() == "13:00"
        # the promise date field appears only for "promise"
        date_label = page.locator("label[data-for-kind=promise]")
        assert not date_label.is_visible()
        screenshot(page, "account-card")

        page.check("input[name=kind][value=promise]")
        assert date_label.is_visible()
        page.fill("input[name=promise_date]", "2025-11-21")
        page.fill("textarea[name=note]", "Оплатит в пятницу, жалоба на датчик передана")
        page.click("#result-form button[type=submit]")
        page.wait_for_url("**/queues")
        assert "Результат сохранён: обещал оплатить" in page.locator(".flash").first.inner_text()
    finally:
        context.close()

    with live_server.db.sessions() as s:
        task = s.get_one(CallbackTask, raised_callback)
        assert (task.state, task.result, task.promise_date) == ("done", "promise", dt.date(2025, 11, 21))
        assert "жалоба на датчик" in task.result_note
        promise = s.scalars(select(Promise).where(Promise.debt_case_id == task.debt_case_id)).one()
        assert (promise.source, promise.status) == ("operator", "pending")
        assert s.get_one(DebtCase, task.debt_case_id).state == "promised"
