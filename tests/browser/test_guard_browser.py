"""Issue 14 in a real browser: the window editor refuses Sunday 06:00 (outside the legal hours) and
keeps what was typed; the admin pages and the operator's queue and card at 1366x900 and 390x844,
written as screenshots, with the checks that the edit links are inside the viewport at 1366 and
that no page scrolls sideways at 390.

Screenshots go to $IVR_SCREENSHOTS when set, else to a folder under pytest's tmp dir (its path
is printed)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ivr.db.models import CallbackTask, CallWindow, Reason, User

from .conftest import LiveServer, add_user, login, make_debtor

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ["IVR_SCREENSHOTS"]) if os.environ.get("IVR_SCREENSHOTS") else \
        tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {folder}")
    return folder


def _sunday_rows(server: LiveServer) -> list[tuple[dt.time, dt.time]]:
    with server.db.sessions() as s:
        return [(w.start_time, w.end_time) for w in s.scalars(
            select(CallWindow).where(CallWindow.profile == "default", CallWindow.weekday == 6))]


def test_sunday_six_oclock_refused_naming_the_limit(chromium: Any, live_server: LiveServer) -> None:
    add_user(live_server.db, "root", "admin")
    before = _sunday_rows(live_server)
    context = chromium.new_context(viewport=LAPTOP, locale="ru-RU")
    page = context.new_page()
    try:
        login(page, live_server, "root")
        page.goto(live_server.url + "/admin/windows")
        assert "выходные и праздники 09:00-20:00" in page.locator("#legal-limits").inner_text()
        page.fill("#day6", "06:00-23:30")
        page.click("#windows-form button[type=submit]")
        page.wait_for_load_state()
        error = page.locator(".flash.error").inner_text()
        assert "Воскресенье: 06:00-23:30 — вне законных часов выходных и праздников (09:00-20:00)" in error
        assert page.locator("#day6").input_value() == "06:00-23:30"  # nothing typed is lost
        assert _sunday_rows(live_server) == before

        # the short spelling is accepted and shown back in full
        page.fill("#day6", "10-13")
        page.click("#windows-form button[type=submit]")
        page.wait_for_load_state()
        assert page.locator("#day6").input_value() == "10:00-13:00"
        assert _sunday_rows(live_server) == [(dt.time(10), dt.time(13))]
    finally:
        context.close()


def _task(server: LiveServer, account_id: int, case_id: int, claimed_by: str | None = None) -> int:
    with server.db.sessions.begin() as s:
        reason_id = s.scalars(select(Reason.id).where(Reason.code == "service_quality")).one()
        user_id = s.scalars(select(User.id).where(User.username == claimed_by)).one() if claimed_by else None
        task = CallbackTask(account_id=account_id, debt_case_id=case_id, queue="quality",
                            state="claimed" if user_id else "open", claimed_by=user_id,
                            claimed_at=dt.datetime(2025, 11, 19, 9, 30) if user_id else None, reason_id=reason_id,
                            due_at=dt.datetime(2025, 11, 19, 9, 0), created_at=dt.datetime(2025, 11, 19, 9, 0))
        s.add(task)
        s.flush()
        return task.id


def _sideways(page: Any) -> int:
    """How many pixels the page scrolls sideways (0 = none)."""
    return int(page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def _inner_scrollers(page: Any) -> list[str]:
    """Elements inside the page that scroll sideways (a table in a scroll box, say)."""
    return list(page.evaluate("""() => [...document.querySelectorAll('main *')].filter(el => {
        const x = getComputedStyle(el).overflowX;
        return (x === 'auto' || x === 'scroll') && el.scrollWidth > el.clientWidth + 1;
    }).map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + '.' + el.className)"""))


def _same_row(page: Any, first: str, second: str) -> bool:
    a, b = page.locator(first).bounding_box(), page.locator(second).bounding_box()
    return bool(a and b and abs((a["y"] + a["height"]) - (b["y"] + b["height"])) < 12 and b["x"] > a["x"])


def _links_outside(page: Any, selector: str) -> list[str]:
    """Links matching `selector` not entirely inside the viewport (nor scrollable into it without
    scrolling the page or a table sideways)."""
    return list(page.evaluate("""(selector) => {
        const width = document.documentElement.clientWidth;
        return [...document.querySelectorAll(selector)].filter(a => {
            const r = a.getBoundingClientRect();
            let hidden = r.width === 0 || r.left < 0 || r.right > width;
            for (let el = a.parentElement; el && !hidden; el = el.parentElement) {
                const box = el.getBoundingClientRect();
                const style = getComputedStyle(el);
                if (style.overflowX !== 'visible' && (r.right > box.right + 1 || r.left < box.left - 1)) hidden = true;
            }
            return hidden;
        }).map(a => a.getAttribute('href'));
    }""", selector))


def test_pages_at_laptop_and_phone_sizes(chromium: Any, live_server: LiveServer, shots: Path) -> None:
    add_user(live_server.db, "root", "admin")
    add_user(live_server.db, "anna", "operator", phone="PJSIP/101")
    account_id, case_id = make_debtor(live_server.db, "L-1", holder="Константинопольская Анастасия Александровна")
    task_id = _task(live_server, account_id, case_id, claimed_by="anna")
    _task(live_server, account_id, case_id)  # and one still open in the queue
    admin_pages = {"admin": "/admin", "windows": "/admin/windows", "settings": "/admin/settings",
                   "reasons": "/admin/reasons", "ladder": "/admin/ladder", "limits": "/admin/limits",
                   "users": "/admin/users", "optouts": "/admin/optouts", "tokens": "/admin/tokens",
                   "prompts": "/admin/prompts", "outbox": "/admin/outbox", "me": "/me"}
    operator_pages = {"queue": "/queues", "card": f"/tasks/{task_id}", "account": f"/accounts/{account_id}"}
    edit_links = {"reasons": "a[href^='/admin/reasons/']", "ladder": "a[href^='/admin/ladder/']"}
    problems: list[str] = []
    for who, pages in (("root", admin_pages), ("anna", operator_pages)):
        context = chromium.new_context(viewport=LAPTOP, locale="ru-RU")
        page = context.new_page()
        try:
            login(page, live_server, who)
            for name, path in pages.items():
                page.set_viewport_size(LAPTOP)
                page.goto(live_server.url + path)
                page.wait_for_load_state()
                page.screenshot(path=str(shots / f"{name}-1366x900.png"), full_page=True)
                if _sideways(page) > 0:
                    problems.append(f"{path} scrolls sideways at 1366 by {_sideways(page)} px")
                if _inner_scrollers(page):
                    problems.append(f"{path}: parts scroll sideways at 1366: {_inner_scrollers(page)}")
                if name == "windows" and not _same_row(page, "#profile-bar select", "#profile-bar button >> nth=0"):
                    problems.append("/admin/windows: the profile bar is stacked at 1366")
                if name in edit_links:
                    links = page.locator(edit_links[name])
                    assert links.count() >= 4, f"{path}: no edit links found"
                    hidden = _links_outside(page, edit_links[name])
                    if hidden:
                        problems.append(f"{path}: edit links outside the viewport at 1366: {hidden}")
                page.set_viewport_size(PHONE)
                page.screenshot(path=str(shots / f"{name}-390x844.png"), full_page=True)
                if _sideways(page) > 0:
                    problems.append(f"{path} scrolls sideways at 390 by {_sideways(page)} px")
                if _inner_scrollers(page):
                    problems.append(f"{path}: parts scroll sideways at 390: {_inner_scrollers(page)}")
        finally:
            context.close()
    assert problems == [], "\n".join(problems)
    for name in [*admin_pages, *operator_pages]:
        for size in ("1366x900", "390x844"):
            shot = shots / f"{name}-{size}.png"
            assert shot.stat().st_size > 1000 and shot.read_bytes()[:4] == b"\x89PNG", shot
