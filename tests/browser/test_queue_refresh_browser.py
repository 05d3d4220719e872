"""The operator's queue list refreshes itself (static script, strict CSP): a task raised while the
page is open appears without a reload, and the filter the operator set is kept."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.db.models import Account, CallbackTask

from .conftest import LiveServer, add_user, login, make_debtor

pytestmark = pytest.mark.browser


def _raise_task(server: LiveServer, account_id: int, queue: str) -> int:
    with server.db.sessions.begin() as s:
        account = s.get(Account, account_id)
        assert account is not None
        task = CallbackTask(account_id=account_id, debt_case_id=account.cases[0].id, queue=queue, priority=5)
        s.add(task)
        s.flush()
        return task.id


def test_queue_list_refreshes_without_reload(chromium: Any, live_server: LiveServer) -> None:
    add_user(live_server.db, "olga", "operator", phone="PJSIP/101")
    first, _ = make_debtor(live_server.db, "A-2001")
    second, _ = make_debtor(live_server.db, "A-2002", holder="Ёлкин Семён", number="+79037770022")
    _raise_task(live_server, first, "quality")
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="ru-RU")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    try:
        login(page, live_server, "olga")
        page.goto(live_server.url + "/queues?queue=quality")
        assert page.locator("#open-tasks tbody tr[data-task]").count() == 1
        page.evaluate("window.ivrMarker = 1")  # gone if the page reloads
        wanted = _raise_task(live_server, second, "quality")
        _raise_task(live_server, second, "billing")  # outside the filter: must not appear
        page.wait_for_selector(f'#open-tasks tr[data-task="{wanted}"]', timeout=75_000)
        assert page.evaluate("window.ivrMarker") == 1
        assert page.locator("#open-tasks tbody tr[data-task]").count() == 2
        assert "Всего задач: 2" in page.locator("#task-total").inner_text()
        assert problems == []
    finally:
        context.close()
