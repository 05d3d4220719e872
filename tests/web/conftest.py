"""Fixtures for the web tests: an app on the seeded SQLite `db`, users of each role, logged-in
TestClients and a small data factory (account, case, robot call with steps, callback task)."""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from ivr.clock import FixedClock
from ivr.config import Settings
from ivr.db.models import (
    Account,
    CallAttempt,
    CallbackTask,
    CallStep,
    DebtCase,
    Outcome,
    PhoneNumber,
    Reason,
    User,
)
from ivr.web.app import create_app
from ivr.web.auth import LoginLimiter, hash_password
from ivr.wiring import Database

# Starlette 1.x nudges towards httpx2 for its TestClient; httpx is what the project ships with.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse 1"
# Wednesday, 10:00 UTC = 13:00 in Moscow: inside the default call window
NOW = dt.datetime(2025, 11, 19, 10, 0, tzinfo=dt.UTC)
_HASH: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashes made during the tests use a low scrypt cost (the cost is stored in each hash, so
    verification follows it); production keeps 2**14. Logins are most of these tests' time."""
    from ivr.web import auth

    monkeypatch.setattr(auth, "_SCRYPT_N", 2**10)


def password_hash(password: str = PASSWORD) -> str:
    # scrypt is deliberately slow; one hash per password for the whole test session
    if password not in _HASH:
        _HASH[password] = hash_password(password, cost=2**10)
    return _HASH[password]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        web_secret="test-secret-not-for-production",
        prompts_dir=REPO / "prompts",
        audio_cache_dir=tmp_path / "audio",
        recordings_dir=tmp_path / "recordings",
        claim_idle_minutes=30,
    )


class FakeClickToCall:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def call(self, *, operator_phone: str, subscriber_phone: str, task_id: int, account_id: int,
                   operator_id: int | None = None, override_reason: str | None = None) -> str:
        call = {"operator_phone": operator_phone, "subscriber_phone": subscriber_phone,
                "task_id": task_id, "account_id": account_id}
        if override_reason is not None:
            call["override_reason"] = override_reason
        self.calls.append(call)
        return f"op-{len(self.calls)}"


@pytest.fixture
def make_app(db: Database, settings: Settings, clock: FixedClock, tmp_path: Path) -> Callable[..., Any]:
    def build(**kwargs: Any) -> Any:
        kwargs.setdefault("settings", settings)
        kwargs.setdefault("clock", clock)
        return create_app(sessions=db.sessions, secret_file=tmp_path / "web_secret",
                          login_limiter=LoginLimiter(), upload_dir=tmp_path / "uploads", **kwargs)

    return build


@pytest.fixture
def app(make_app: Callable[..., Any]) -> Any:
    return make_app()


def add_user(db: Database, username: str, role: str, *, phone: str | None = None,
             queues: list[str] | None = None, active: bool = True) -> int:
    with db.sessions.begin() as s:
        user = User(username=username, role=role, password_hash=password_hash(), phone=phone,
                    queues=queues or [], active=active)
        s.add(user)
        s.flush()
        return user.id


@pytest.fixture
def users(db: Database) -> dict[str, int]:
    return {
        "admin": add_user(db, "admin", "admin"),
        "op1": add_user(db, "op1", "operator", phone="PJSIP/101"),
        "op2": add_user(db, "op2", "operator", phone="PJSIP/102"),
        "boss": add_user(db, "boss", "manager"),
    }


_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


class Browser:
    """A TestClient with the CSRF token of its session at hand."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def login(self, username: str, password: str = PASSWORD) -> Any:
        page = self.client.get("/login")
        response = self.client.post("/login", data={"csrf": csrf_of(page.text), "username": username,
                                                    "password": password}, follow_redirects=False)
        if response.status_code == 303:
            self.csrf = csrf_of(self.client.get("/").text)
        return response

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, **kw)

    def post(self, url: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        payload = {"csrf": self.csrf, **(data or {})}
        kw.setdefault("follow_redirects", False)
        return self.client.post(url, data=payload, **kw)


@pytest.fixture
def browser(app: Any) -> Iterator[Callable[[str | None], Browser]]:
    clients: list[TestClient] = []

    def open_as(username: str | None) -> Browser:
        client = TestClient(app, base_url="http://testserver")
        clients.append(client)
        b = Browser(client)
        if username:
            response = b.login(username)
            assert response.status_code == 303, response.text
        return b

    yield open_as
    for c in clients:
        c.close()


@pytest.fixture
def as_admin(browser: Callable[[str | None], Browser], users: dict[str, int]) -> Browser:
    return browser("admin")


@pytest.fixture
def as_op1(browser: Callable[[str | None], Browser], users: dict[str, int]) -> Browser:
    return browser("op1")


@pytest.fixture
def as_op2(browser: Callable[[str | None], Browser], users: dict[str, int]) -> Browser:
    return browser("op2")


# --- data ---------------------------------------------------------------------------------------

def make_account(s: Session, external_id: str = "A-1001", *, holder: str = "Петров Пётр Петрович",
                 phones: tuple[str, ...] = ("+79161234567", "+74951234567"), balance: str = "1800.50",
                 timezone: str | None = "Asia/Yekaterinburg", block_date: dt.date | None = dt.date(2025, 11, 25),
                 with_case: bool = True) -> Account:
    account = Account(external_id=external_id, holder_name=holder, service_name="Охрана квартиры", tariff="Базовый",
                      balance=Decimal(balance), currency="RUB", due_date=dt.date(2025, 11, 10), block_date=block_date,
                      timezone=timezone, language="ru")
    account.phones = [PhoneNumber(number=n, priority=i) for i, n in enumerate(phones, start=1)]
    s.add(account)
    s.flush()
    if with_case:
        s.add(DebtCase(account_id=account.id, opened_on=dt.date(2025, 11, 10), amount_initial=Decimal(balance),
                       amount_owed=Decimal(balance), currency="RUB", state="active", stage_code="reminder",
                       next_attempt_at=dt.datetime(2025, 11, 19, 6, 0)))
        s.flush()
    return account


def reason(s: Session, code: str) -> Reason:
    row = s.query(Reason).filter_by(code=code).one()
    return row


def make_robot_call(s: Session, account: Account, *, reason_code: str = "service_quality",
                    created: dt.datetime = dt.datetime(2025, 11, 19, 8, 30)) -> CallAttempt:
    case = account.cases[0] if account.cases else None
    phone = account.phones[0]
    attempt = CallAttempt(debt_case_id=case.id if case else None, account_id=account.id, phone_number_id=phone.id,
                          phone=phone.number, stage_code="reminder", purpose="robot", action_id=f"robot-{account.id}-{created:%H%M%S}",
                          state="done", result="answered", created_at=created, duration_s=Decimal("47.5"))
    s.add(attempt)
    s.flush()
    for seq, (step, keys, result) in enumerate([("greet", "", "ok"), ("identity", "1", "ok"), ("menu", "3", "ok"),
                                                ("reason", "4", "ok")], start=1):
        s.add(CallStep(attempt_id=attempt.id, seq=seq, step=step, keys=keys, result=result))
    r = reason(s, reason_code)
    s.add(Outcome(attempt_id=attempt.id, debt_case_id=attempt.debt_case_id, identity="confirmed", kind="reason",
                  reason_id=r.id))
    s.flush()
    return attempt


def make_task(s: Session, account: Account, *, queue: str = "quality", priority: int = 5,
              due: dt.datetime = dt.datetime(2025, 11, 19, 9, 0), attempt: CallAttempt | None = None,
              reason_code: str | None = "service_quality") -> CallbackTask:
    task = CallbackTask(account_id=account.id, debt_case_id=account.cases[0].id if account.cases else None,
                        attempt_id=attempt.id if attempt else None,
                        reason_id=reason(s, reason_code).id if reason_code else None,
                        queue=queue, priority=priority, due_at=due, state="open", created_at=due)
    s.add(task)
    s.flush()
    return task


@pytest.fixture
def card_task(db: Database) -> Iterator[int]:
    """One account with a robot call (steps, keys, reason) and the callback task it raised."""
    with db.sessions.begin() as s:
        account = make_account(s)
        attempt = make_robot_call(s, account)
        task_id = make_task(s, account, attempt=attempt).id
    yield task_id
