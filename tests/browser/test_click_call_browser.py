"""Click-to-call in a real browser outside the subscriber's hours: the card warns, a click without
the override is refused (nothing is dialled), a click with the override and a reason dials, and the
card follows the call's state (static JS polling the JSON endpoint, under the strict CSP)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ivr.ami.types import CallEnded, OriginateResult
from ivr.clock import FixedClock
from ivr.db.models import CallAttempt, CallbackTask
from ivr.dialer.attempts import on_call_ended, on_originate_result
from ivr.dialer.policy import load_rules
from ivr.web.deps import AmiClickToCall
from ivr.wiring import Database

from .conftest import LiveServer, add_user, login, make_debtor, serve, server_settings

pytestmark = pytest.mark.browser

# Wednesday 16:30 UTC = 21:30 in Yekaterinburg: after the default 09:00-20:00 window
NIGHT = dt.datetime(2025, 11, 19, 16, 30, tzinfo=dt.UTC)


class RecordingAmi:
    """Stands in for the AMI client: keeps the Originate requests it was given."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def originate(self, request: Any) -> None:
        self.sent.append(request)


@pytest.fixture
def ami() -> RecordingAmi:
    return RecordingAmi()


@pytest.fixture
def night_server(db: Database, tmp_path: Path, ami: RecordingAmi) -> Iterator[LiveServer]:
    clock = FixedClock(NIGHT)
    settings = server_settings(tmp_path)
    c2c = AmiClickToCall(ami, settings, sessions=db.sessions, clock=clock)
    yield from serve(db, tmp_path, clock, settings=settings, click_to_call=c2c)


def _task(db: Database) -> int:
    account_id, case_id = make_debtor(db, timezone="Asia/Yekaterinburg")
    with db.sessions.begin() as s:
        task = CallbackTask(account_id=account_id, debt_case_id=case_id, queue="quality", state="open",
                            due_at=dt.datetime(2025, 11, 19, 9, 0), created_at=dt.datetime(2025, 11, 19, 9, 0))
        s.add(task)
        s.flush()
        return task.id


def _operator_calls(db: Database) -> list[CallAttempt]:
    with db.sessions() as s:
        return list(s.scalars(select(CallAttempt).where(CallAttempt.purpose == "operator")))


def test_click_to_call_outside_hours_needs_an_override(chromium: Any, night_server: LiveServer,
                                                       ami: RecordingAmi) -> None:
    db = night_server.db
    task_id = _task(db)
    add_user(db, "olga", "operator", phone="PJSIP/101")
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="ru-RU")
    page = context.new_page()
    csp_errors: list[str] = []
    page.on("console", lambda msg: csp_errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    try:
        login(page, night_server, "olga")
        page.goto(f"{night_server.url}/tasks/{task_id}")
        page.click("form[action$='/claim'] button")
        page.wait_for_url(f"**/tasks/{task_id}")
        warning = page.locator("#outside-hours")
        assert "20.11 09:00 (Asia/Yekaterinburg)" in warning.inner_text()

        # without the override: refused, nothing dialled
        page.click("#phones form button.call")
        page.wait_for_load_state()
        assert "нерабочее для звонков время" in page.locator(".flash.error").first.inner_text()
        assert ami.sent == [] and _operator_calls(db) == []

        # with the override and a reason: dialled, the reason kept
        page.check("#phones input[name=override]")
        page.fill("#phones input[name=override_reason]", "просил перезвонить вечером")
        page.click("#phones form button.call")
        page.wait_for_selector("#call-status[data-state=ringing]")
        assert "идёт вызов" in page.locator("#call-status").inner_text()
        assert len(ami.sent) == 1
        [attempt] = _operator_calls(db)
        assert attempt.override_reason == "просил перезвонить вечером"
        assert "просил перезвонить вечером" in page.locator("#attempts").inner_text()

        # Asterisk reports the answer and the hangup: the card follows without a reload
        with db.sessions() as s:
            rules = load_rules(s)
        night_server.clock.advance(dt.timedelta(seconds=5))
        on_originate_result(db.sessions, OriginateResult(attempt.action_id, True, 4, "PJSIP/101-01", "9.1",
                                                         "answered"), night_server.clock.now(), rules)
        page.wait_for_selector("#call-status[data-state=talking]")
        night_server.clock.advance(dt.timedelta(seconds=64))
        on_call_ended(db.sessions, CallEnded(attempt.action_id, "9.1", "PJSIP/101-01", 16, "Normal Clearing",
                                             "answered"), night_server.clock.now(), rules)
        page.wait_for_selector("#call-status[data-state=ended]")
        assert page.locator("#call-status .call-duration").inner_text() == "64"
        assert csp_errors == []
    finally:
        context.close()
