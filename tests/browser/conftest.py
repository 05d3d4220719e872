"""Browser tests: Debian's Chromium driven by Playwright against the real app served by uvicorn
on 127.0.0.1 (a background thread, a temporary SQLite database per test).

Never `playwright install`: the browser is the system's (IVR_CHROMIUM, default /usr/bin/chromium;
scripts/setup.sh --test installs it). A missing browser is a failure, never a skip.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ivr.clock import FixedClock
from ivr.config import Settings
from ivr.db.models import (
    Account,
    CallbackTask,
    DebtCase,
    PhoneNumber,
    User,
)
from ivr.web.auth import LoginLimiter, hash_password
from ivr.wiring import Database

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("IVR_SCREENSHOTS", str(REPO / "tests" / "artifacts" / "screenshots")))
PASSWORD = "browser-pass-1"
# Wednesday 19 November 2025, 10:00 UTC (13:00 in Moscow): inside the default windows
NOW = dt.datetime(2025, 11, 19, 10, 0, tzinfo=dt.UTC)
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


def chromium_path() -> str:
    path = os.environ.get("IVR_CHROMIUM", "/usr/bin/chromium")
    if not Path(path).exists():
        pytest.fail(f"Chromium not found at {path}: install Debian's chromium (scripts/setup.sh --test) or set "
                    "IVR_CHROMIUM; browser tests never skip")
    return path


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    # Module scope, not session: Playwright's sync API keeps its own event loop running on this
    # thread while it is open, and the asyncio tests collected after tests/browser/ would fail
    # with "cannot be called from a running event loop".
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    db: Database
    clock: FixedClock
    settings: Settings


@pytest.fixture
def live_server(db: Database, tmp_path: Path) -> Iterator[LiveServer]:
    yield from serve(db, tmp_path, FixedClock(NOW))


def server_settings(tmp_path: Path) -> Settings:
    return Settings(database_url="sqlite://", web_secret="browser-test-secret", prompts_dir=REPO / "prompts",
                    audio_cache_dir=tmp_path / "audio", recordings_dir=tmp_path / "recordings")


def serve(db: Database, tmp_path: Path, clock: FixedClock, **app_kwargs: Any) -> Iterator[LiveServer]:
    """The app on a free port in a background thread until the generator is closed; `app_kwargs`
    are more collaborators for create_app (a click-to-call)."""
    import uvicorn

    from ivr.web.app import create_app

    settings = app_kwargs.pop("settings", None) or server_settings(tmp_path)
    app = create_app(settings=settings, sessions=db.sessions, clock=clock, secret_file=tmp_path / "web_secret",
                     login_limiter=LoginLimiter(), upload_dir=tmp_path / "uploads", **app_kwargs)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, name="live-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the web server did not start")
        time.sleep(0.02)
    yield LiveServer(f"http://127.0.0.1:{port}", db, clock, settings)
    server.should_exit = True
    thread.join(timeout=10)


def add_user(db: Database, username: str, role: str, phone: str | None = None) -> None:
    with db.sessions.begin() as s:
        s.add(User(username=username, role=role, password_hash=hash_password(PASSWORD), phone=phone, queues=[]))


def make_debtor(db: Database, external_id: str = "A-2001", *, holder: str = "Смирнова Ольга Викторовна",
                number: str = "+79165550011", timezone: str = "Europe/Moscow") -> tuple[int, int]:
    """An account with an active case in the first ladder stage, due for a call now."""
    with db.sessions.begin() as s:
        account = Account(external_id=external_id, holder_name=holder, service_name="Охрана квартиры",
                          tariff="Стандарт", balance=Decimal("2450.00"), currency="RUB",
                          due_date=dt.date(2025, 11, 10), block_date=dt.date(2025, 11, 28), timezone=timezone,
                          language="ru")
        account.phones = [PhoneNumber(number=number, priority=1)]
        s.add(account)
        s.flush()
        case = DebtCase(account_id=account.id, opened_on=dt.date(2025, 11, 10), amount_initial=Decimal("2450.00"),
                        amount_owed=Decimal("2450.00"), currency="RUB", state="active", stage_code="reminder",
                        stage_entered_at=dt.datetime(2025, 11, 11, 6, 0), next_attempt_at=dt.datetime(2025, 11, 19, 6, 0))
        s.add(case)
        s.flush()
        return account.id, case.id


@pytest.fixture
def raised_callback(db: Database, tmp_path_factory: pytest.TempPathFactory) -> int:
    """A callback task raised by a real simulated call: the simulated Asterisk places the call,
    connects to the FastAGI server, and the subscriber confirms identity (1), stays silent at the
    menu once, then chooses "tell us why" (3) and names an actionable reason (4, service quality).
    The call script stores every step and raises the task on the reason's route."""
    from ivr.sim import Callee, KeyPress
    from tests.call.rig import CallRig, rig_settings

    account_id, case_id = make_debtor(db)
    with db.sessions() as s:
        phone_id = s.scalars(select(PhoneNumber.id).where(PhoneNumber.account_id == account_id)).one()
    settings = rig_settings(tmp_path_factory.mktemp("browser-audio"), str(db.engine.url))

    async def call() -> int:
        async with CallRig(db, settings, now=NOW - dt.timedelta(hours=2, minutes=30)) as rig:
            # the menu is two input opportunities (the prompt, then the wait for a key): two
            # silences make one "no input" try
            subscriber = Callee(answer_after=1.0, keys=[KeyPress(k) for k in ("1", "", "", "3", "4")])
            await rig.call(subscriber, account=(account_id, case_id, phone_id))
        with db.sessions() as s:
            return s.scalars(select(CallbackTask.id).where(CallbackTask.account_id == account_id)).one()

    # Playwright's sync API keeps an event loop on this thread: run the call on its own
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, call()).result(timeout=120)


def screenshot(page: Any, name: str) -> None:
    """The page at laptop size and at phone size, full length."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(LAPTOP)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-laptop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(LAPTOP)


def login(page: Any, server: LiveServer, username: str) -> None:
    page.goto(server.url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
