"""The live page in a real browser while the robot (as `ivr run` assembles it) dials the
simulated Asterisk: calls appear and end without a reload, and an admin pauses a ladder stage
from the page, after which no call of that stage starts while the other stage's calls go on.

The simulated subscribers ring for hours (simulated and real time run at the same speed), so a
call ends only when the test hangs it up: every wait is on a condition (Playwright's
a locator waited for), never on a fixed sleep.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from ivr.clock import FastClock
from ivr.db.models import CallAttempt
from ivr.runtime import SIM_SECRET, SIM_USER
from ivr.sim import Callee, SimulatedAsterisk, book_from_mapping
from ivr.wiring import Database
from tests.dialer.conftest import add_case
from tests.faults.harness import Robot, make_settings, start_robot

from .conftest import LiveServer, add_user, login, screenshot

pytestmark = pytest.mark.browser
T = TypeVar("T")

START = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)  # Monday 11:00 in Moscow: inside the call window
REMINDER_OPENED = dt.date(2026, 3, 1)  # day 1: the seeded ladder's "reminder"
FIRM_OPENED = dt.date(2026, 2, 20)  # day 10: "firm"
LINES = 2
RING = 36_000.0  # seconds a subscriber lets it ring: longer than any test run
WAIT_MS = 60_000  # bounds a hang only


class RobotThread:
    """The robot's event loop on its own thread (Playwright's sync API holds the test's)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="robot", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def robot_thread() -> Iterator[RobotThread]:
    rt = RobotThread()
    yield rt
    rt.close()


def populate(db: Database) -> dict[str, list[str]]:
    """Interleaved so that the dialer, taking cases in id order, meets a firm case first."""
    numbers: dict[str, list[str]] = {"firm": [], "reminder": []}
    with db.sessions.begin() as s:
        for _ in range(3):
            for stage, opened in (("firm", FIRM_OPENED), ("reminder", REMINDER_OPENED)):
                number = f"+7916777{len(numbers['firm']) + len(numbers['reminder']):04d}"
                add_case(s, phones=[number], stage_code=stage, opened_on=opened)
                numbers[stage].append(number)
    return numbers


def attempts(db: Database) -> list[tuple[str, str, str, dt.datetime]]:
    with db.sessions() as s:
        return [(a.action_id, a.stage_code or "", a.state, a.created_at)
                for a in s.scalars(select(CallAttempt).order_by(CallAttempt.id))]


def shown_calls(page: Any) -> dict[str, str]:
    rows = page.locator("#live-calls tr[data-call]")
    return {rows.nth(i).get_attribute("data-call"): rows.nth(i).get_attribute("data-stage") for i in range(rows.count())}


def mark_page(page: Any) -> None:
    page.evaluate("window.noReload = 'still here'")


def not_reloaded(page: Any) -> bool:
    return bool(page.evaluate("window.noReload === 'still here'"))


def test_live_page_follows_calls_and_a_stage_pause(chromium: Any, live_server: LiveServer, robot_thread: RobotThread,
                                                   tmp_path: Path) -> None:
    db = live_server.db
    populate(db)
    add_user(db, "chief", "admin")
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="ru-RU")
    page = context.new_page()
    sim = SimulatedAsterisk(book_from_mapping({}, default=Callee(outcome="no_answer", answer_after=RING)),
                            users={SIM_USER: SIM_SECRET}, speed=1.0, channel_limit=LINES)
    robot: Robot | None = None
    try:
        login(page, live_server, "chief")
        page.goto(live_server.url + "/live")
        assert "Сейчас звонков нет" in page.locator("#live-calls").inner_text()
        mark_page(page)

        # the robot starts: two calls (a firm case and a reminder case) appear without a reload
        settings = make_settings(tmp_path, str(db.engine.url), "live-dialer", originate_timeout_ms=int(RING * 1000))

        async def start() -> Robot:
            await sim.start()
            return await start_robot(settings, db, sim, FastClock(START, 1.0), lines=LINES)

        robot = robot_thread.run(start())
        page.locator("#live-calls tr[data-call]").nth(LINES - 1).wait_for(timeout=WAIT_MS)
        assert not_reloaded(page)
        first = shown_calls(page)
        assert sorted(first.values()) == ["firm", "reminder"]
        assert "вызов" in page.locator("#live-calls").inner_text()  # ringing: no step recorded yet
        screenshot(page, "live")
        # the forecast, pending when the page loaded, is filled in by the refresh (no reload)
        page.locator("#live-forecast-lines tr[data-lines]").first.wait_for(timeout=WAIT_MS)
        assert page.locator("#live-forecast-queues tr[data-queue]").count() >= 1
        assert not_reloaded(page)

        # the admin pauses the firm stage from the page
        page.select_option("#pause-stage select[name=key]", "firm")
        page.fill("#pause-stage input[name=why]", "новый текст на записи")
        page.click("#pause-stage button[type=submit]")
        page.wait_for_url("**/live")
        assert "новый текст на записи" in page.locator("#live-pauses").inner_text()
        paused_at = max(a[3] for a in attempts(db))  # every attempt so far was made before the pause
        mark_page(page)

        # the calls end; the freed lines go to reminder cases only, though firm cases come first
        assert robot_thread.run(_hangup(sim)) == 2
        for action_id in first:
            page.locator(f"#live-calls tr[data-call='{action_id}']").wait_for(state="detached", timeout=WAIT_MS)
        page.locator("#live-calls tr[data-call][data-stage=reminder]").nth(LINES - 1).wait_for(timeout=WAIT_MS)
        assert not_reloaded(page)
        assert set(shown_calls(page).values()) == {"reminder"}

        # once those end too, only paused firm cases are due: nothing more is dialled
        assert robot_thread.run(_hangup(sim)) == 2
        page.locator("#live-calls td.muted").wait_for(timeout=WAIT_MS)  # "no calls in progress"
        assert not_reloaded(page)
        assert robot_thread.run(robot.dialer.run_once()) == 0  # free lines, due firm cases: paused
    finally:
        context.close()
        if robot is not None:
            robot_thread.run(robot.shutdown())
        robot_thread.run(sim.stop())

    rows = attempts(db)
    assert [stage for _, stage, _, _ in rows].count("reminder") == 3
    assert [stage for _, stage, _, created in rows if created > paused_at] == ["reminder", "reminder"]
    assert [stage for _, stage, _, _ in rows if stage == "firm"] == ["firm"]  # only the one dialled before the pause


async def _hangup(sim: SimulatedAsterisk) -> int:
    return sim.hangup_all()
