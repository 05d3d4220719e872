"""Login, sessions, roles, CSRF, rate limiting, the session secret and password hashing."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.routing import Mount, Route

from ivr.db.models import User
from ivr.web import auth
from ivr.wiring import Database

from .conftest import PASSWORD, Browser, add_user, csrf_of

# Pages every role-less visitor must be sent to the login page from (no path parameters needed).
_SAMPLE_IDS = {"task_id": "1", "reason_id": "1", "stage_id": "1", "limit_id": "1", "optout_id": "1",
               "user_id": "1", "token_id": "1", "digest": "x", "event_id": "1", "account_id": "1",
               "phone_id": "1", "run_id": "1", "token": "x", "job_id": "x"}


def _html_routes(app: Any, method: str) -> list[str]:
    paths = []
    for route in app.routes:
        if isinstance(route, Route) and method in (route.methods or set()):
            path = route.path
            for name, value in _SAMPLE_IDS.items():
                path = path.replace("{" + name + ":int}", value).replace("{" + name + ":str}", value)
            paths.append(path)
    return paths


def test_password_hash_roundtrip_and_salted() -> None:
    first, second = auth.hash_password("s3cret-pass"), auth.hash_password("s3cret-pass")
    assert first != second  # per-user salt
    assert auth.verify_password("s3cret-pass", first) and auth.verify_password("s3cret-pass", second)
    assert not auth.verify_password("s3cret-pasS", first)
    assert not auth.verify_password("s3cret-pass", "garbage")
    assert first.startswith("scrypt$")
    assert auth.hash_password("x", cost=2**14).startswith("scrypt$16384$8$1$")  # the production cost


def test_every_page_needs_login(app: Any, browser: Any, users: dict[str, int]) -> None:
    anonymous: Browser = browser(None)
    # /media/ serves a call's prompts to Asterisk's HTTP media cache: its per-call token is the
    # permission (tests/web/test_media.py shows a wrong token gets nothing)
    pages = [p for p in _html_routes(app, "GET") if p not in ("/", "/login") and not p.startswith("/media/")]
    assert len(pages) > 20
    for path in pages:
        response = anonymous.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login"), path
    # the API answers 401 in JSON instead of a redirect
    for route in app.routes:
        if isinstance(route, Mount) and route.path == "/api/v1":
            for sub in route.routes:
                assert isinstance(sub, Route)
                method = "GET" if "GET" in (sub.methods or set()) else "POST"
                response = anonymous.client.request(method, "/api/v1" + sub.path)
                assert response.status_code == 401
                assert "token" in response.json()["error"]


def test_login_redirects_back_to_requested_page(browser: Any, users: dict[str, int], card_task: int) -> None:
    b: Browser = browser(None)
    first = b.get(f"/tasks/{card_task}", follow_redirects=False)
    assert first.headers["location"] == f"/login?next=/tasks/{card_task}"
    page = b.get(first.headers["location"])
    response = b.client.post("/login", data={"csrf": csrf_of(page.text), "username": "op1", "password": PASSWORD,
                                             "next": f"/tasks/{card_task}"}, follow_redirects=False)
    assert response.headers["location"] == f"/tasks/{card_task}"
    # an absolute URL in `next` is not followed (no open redirect)
    b2: Browser = browser(None)
    page = b2.get("/login")
    response = b2.client.post("/login", data={"csrf": csrf_of(page.text), "username": "op1", "password": PASSWORD,
                                              "next": "//evil.example/x"}, follow_redirects=False)
    assert response.headers["location"] == "/queues"


def test_wrong_password_is_refused(browser: Any, users: dict[str, int]) -> None:
    b: Browser = browser(None)
    response = b.login("op1", "wrong password")
    assert response.status_code == 401
    assert "Неверное имя пользователя или пароль" in response.text
    assert b.get("/queues", follow_redirects=False).status_code == 303
    assert b.login("nobody", PASSWORD).status_code == 401  # same answer for an unknown user


def test_inactive_user_cannot_log_in_and_is_logged_out(db: Database, browser: Any, users: dict[str, int]) -> None:
    add_user(db, "gone", "operator", active=False)
    assert browser(None).login("gone").status_code == 401
    b: Browser = browser("op1")
    assert b.get("/queues").status_code == 200
    with db.sessions.begin() as s:
        s.get_one(User, users["op1"]).active = False
    assert b.get("/queues", follow_redirects=False).status_code == 303


def test_login_rate_limit_per_username_and_address(browser: Any, users: dict[str, int]) -> None:
    b: Browser = browser(None)
    for _ in range(5):
        assert b.login("op1", "bad guess").status_code == 401
    blocked = b.login("op1", PASSWORD)  # even the right password waits now
    assert blocked.status_code == 429
    assert "Слишком много" in blocked.text
    # another username from the same address is not blocked
    assert browser(None).login("op2").status_code == 303


def test_login_limiter_window() -> None:
    limiter = auth.LoginLimiter(max_failures=3, window=dt.timedelta(minutes=10))
    t0 = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
    for i in range(3):
        assert limiter.blocked_for("Op1", "1.2.3.4", t0) is None
        limiter.failed("op1", "1.2.3.4", t0 + dt.timedelta(minutes=i))
    wait = limiter.blocked_for("op1", "1.2.3.4", t0 + dt.timedelta(minutes=3))
    assert wait == dt.timedelta(minutes=7)
    assert limiter.blocked_for("op1", "5.6.7.8", t0) is None
    assert limiter.blocked_for("op1", "1.2.3.4", t0 + dt.timedelta(minutes=10)) is None
    limiter.succeeded("op1", "1.2.3.4")
    assert limiter.blocked_for("op1", "1.2.3.4", t0 + dt.timedelta(minutes=3)) is None


def test_every_post_form_checks_csrf(app: Any, as_admin: Browser, card_task: int, db: Database) -> None:
    posts = _html_routes(app, "POST")
    assert len(posts) > 25
    with db.sessions() as s:
        admins_before = s.scalars(select(User.username)).all()
    for path in posts:
        missing = as_admin.client.post(path, data={"name": "x"}, follow_redirects=False)
        assert missing.status_code == 403, path
        wrong = as_admin.client.post(path, data={"csrf": "not-the-token", "name": "x"}, follow_redirects=False)
        assert wrong.status_code == 403, path
    # nothing was changed by the refused forms, and the session still works
    with db.sessions() as s:
        assert s.scalars(select(User.username)).all() == admins_before
    assert as_admin.get("/admin").status_code == 200


def test_login_form_needs_csrf(browser: Any, users: dict[str, int]) -> None:
    b: Browser = browser(None)
    b.get("/login")
    response = b.client.post("/login", data={"username": "op1", "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403
    assert b.get("/queues", follow_redirects=False).status_code == 303


def test_operator_cannot_reach_admin_pages(app: Any, as_op1: Browser) -> None:
    for path in _html_routes(app, "GET"):
        if path.startswith("/admin"):
            assert as_op1.get(path).status_code == 403, path
    response = as_op1.post("/admin/users", {"username": "mallory", "role": "admin", "password": "x" * 12})
    assert response.status_code == 403
    assert as_op1.get("/reports").status_code == 403
    assert as_op1.get("/queues").status_code == 200


def test_manager_reads_reports_only(browser: Any, users: dict[str, int], card_task: int) -> None:
    boss: Browser = browser("boss")
    assert boss.get("/", follow_redirects=False).headers["location"] == "/reports"
    page = boss.get("/reports")
    assert page.status_code == 200
    assert 'id="report-reasons"' in page.text
    for path in ("/queues", f"/tasks/{card_task}", "/admin", "/admin/prompts"):
        assert boss.get(path).status_code == 403, path
    assert boss.post("/queues/next").status_code == 403


def test_password_reset_ends_existing_sessions(as_admin: Browser, browser: Any, users: dict[str, int]) -> None:
    op: Browser = browser("op1")
    assert op.get("/queues").status_code == 200
    response = as_admin.post(f"/admin/users/{users['op1']}/password", {"password": "a-new-password"})
    assert response.status_code == 303
    assert op.get("/queues", follow_redirects=False).status_code == 303
    assert browser(None).login("op1", "a-new-password").status_code == 303


def test_logout(as_op1: Browser) -> None:
    assert as_op1.post("/logout").status_code == 303
    assert as_op1.get("/queues", follow_redirects=False).status_code == 303


def test_language_switch(as_op1: Browser) -> None:
    assert "Очереди обратных звонков" in as_op1.get("/queues").text
    response = as_op1.post("/lang", {"lang": "en", "next": "/queues"})
    assert response.headers["location"] == "/queues"
    page = as_op1.get("/queues").text
    assert "Callback queues" in page and '<html lang="en">' in page
    assert as_op1.post("/lang", {"lang": "xx"}).status_code == 400


def test_security_headers(as_op1: Browser) -> None:
    response = as_op1.get("/queues")
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    cookie = response.request.headers.get("cookie", "")
    assert "ivr_session=" in cookie


def test_generated_secret_is_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "var" / "web_secret"
    first = auth.load_or_create_secret("", path)
    assert len(first) >= 40
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert auth.load_or_create_secret("", path) == first
    assert auth.load_or_create_secret("configured", path) == "configured"


def test_weak_secret_written_into_the_secret_file_is_refused(tmp_path: Path) -> None:
    from ivr.config import ConfigError

    path = tmp_path / "web_secret"
    path.write_text("changeme\n", encoding="ascii")
    with pytest.raises(ConfigError, match="web_secret: weak session secret refused"):
        auth.load_or_create_secret("", path)


def test_sessions_survive_an_app_restart(make_app: Any, db: Database, users: dict[str, int], settings: Any) -> None:
    from dataclasses import replace

    from starlette.testclient import TestClient

    no_secret = replace(settings, web_secret="")
    client = TestClient(make_app(settings=no_secret))
    b = Browser(client)
    assert b.login("op1").status_code == 303
    restarted = make_app(settings=no_secret)  # same var/web_secret file
    client2 = TestClient(restarted, cookies=dict(client.cookies))
    assert client2.get("/queues", follow_redirects=False).status_code == 200


@pytest.mark.parametrize("bad", ["", "a b", "x" * 65])
def test_create_user_validates(db: Database, bad: str) -> None:
    with db.sessions() as s, pytest.raises(auth.AuthError):
        auth.create_user(s, username=bad, role="operator", password="long enough 1")
    with db.sessions() as s, pytest.raises(auth.AuthError):
        auth.create_user(s, username="ok", role="root", password="long enough 1")
    with db.sessions() as s, pytest.raises(auth.AuthError):
        auth.create_user(s, username="ok", role="operator", password="short")


def test_api_token_stored_hashed(db: Database) -> None:
    with db.sessions.begin() as s:
        row, token = auth.create_api_token(s, "billing")
        assert token not in row.token_hash and row.token_hash == auth.hash_token(token)
    with db.sessions() as s:
        assert auth.find_api_token(s, token) is not None
        assert auth.find_api_token(s, token + "x") is None
        assert auth.bearer_token({"authorization": f"Bearer {token}"}) == token
        assert auth.bearer_token({"authorization": f"Basic {token}"}) == ""


def test_secure_cookie_flag(make_app: Any, settings: Any, users: dict[str, int]) -> None:
    from dataclasses import replace

    from starlette.testclient import TestClient

    secure = make_app(settings=replace(settings, extra={"IVR_WEB_COOKIE_SECURE": "1"}))
    client = TestClient(secure, base_url="https://testserver")
    page = client.get("/login")
    assert "secure" in page.headers["set-cookie"].lower()
    plain = TestClient(make_app(), base_url="http://testserver").get("/login")
    assert "secure" not in plain.headers["set-cookie"].lower()


# --- revocable sessions, per-account limiting, trusted proxies ----------------------------------

def test_logout_revokes_a_copied_session_cookie(app: Any, as_op1: Browser) -> None:
    from starlette.testclient import TestClient

    stolen = TestClient(app, cookies=dict(as_op1.client.cookies))  # e.g. copied off the machine
    assert stolen.get("/queues", follow_redirects=False).status_code == 200
    assert as_op1.post("/logout").status_code == 303
    # the copy is signed and unexpired, yet dead: the server bumped the user's session epoch
    replay = stolen.get("/queues", follow_redirects=False)
    assert replay.status_code == 303 and replay.headers["location"].startswith("/login")
    stolen.close()


def test_revoking_sessions_ends_a_live_session(db: Database, as_op1: Browser,
                                                                        users: dict[str, int]) -> None:
    with db.sessions.begin() as s:
        auth.revoke_sessions(s.get_one(User, users["op1"]))
    assert as_op1.get("/queues", follow_redirects=False).status_code == 303


def test_login_limit_per_account_across_addresses(make_app: Any, settings: Any, users: dict[str, int]) -> None:
    """Guesses spread over many addresses (here: behind a trusted proxy) still lock the account,
    while the pair limit alone would have allowed 5 per address."""
    from dataclasses import replace

    from starlette.testclient import TestClient

    app = make_app(settings=replace(settings, web_trusted_proxies=("10.0.0.1",)))
    limiter: auth.LoginLimiter = app.state.web.limiter
    for i in range(limiter.max_account_failures):
        client = TestClient(app, client=("10.0.0.1", 40000), headers={"X-Forwarded-For": f"198.51.100.{i}"})
        assert Browser(client).login("op1", f"guess {i}").status_code == 401
    fresh = TestClient(app, client=("10.0.0.1", 40000), headers={"X-Forwarded-For": "203.0.113.7"})
    assert Browser(fresh).login("op1").status_code == 429  # the right password, a new address: waits
    other = TestClient(app, client=("10.0.0.1", 40000), headers={"X-Forwarded-For": "203.0.113.7"})
    assert Browser(other).login("op2").status_code == 303  # other accounts are not affected


def test_many_accounts_from_one_address_do_not_lock_out_the_others(browser: Any, users: dict[str, int]) -> None:
    """Behind an office NAT or an unconfigured proxy everyone shares an address: failures on
    other accounts must not block a user who types the right password."""
    for i in range(30):
        assert browser(None).login(f"nobody{i}", "bad guess").status_code == 401
    assert browser(None).login("op1").status_code == 303


def test_success_does_not_reset_the_account_count() -> None:
    limiter = auth.LoginLimiter(max_failures=5, max_account_failures=3)
    t0 = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)
    for i in range(3):
        limiter.failed("op1", f"10.0.0.{i}", t0)
    limiter.succeeded("op1", "10.9.9.9")
    assert limiter.blocked_for("op1", "10.9.9.9", t0) is not None


@pytest.mark.parametrize(("proxies", "peer", "forwarded", "expected"), [
    ((), "192.0.2.1", "203.0.113.5", "192.0.2.1"),  # no proxies trusted: the header is ignored
    (("10.0.0.1",), "192.0.2.1", "203.0.113.5", "192.0.2.1"),  # peer is not the proxy: ignored
    (("10.0.0.1",), "10.0.0.1", "203.0.113.5", "203.0.113.5"),
    (("10.0.0.1",), "10.0.0.1", "1.1.1.1, 203.0.113.5", "203.0.113.5"),  # the client forged the left part
    (("10.0.0.0/24",), "10.0.0.1", "203.0.113.5, 10.0.0.2", "203.0.113.5"),  # two trusted hops
    (("10.0.0.1",), "10.0.0.1", "", "10.0.0.1"),  # proxy sent no header
    (("10.0.0.0/24",), "10.0.0.1", "10.0.0.9", "10.0.0.9"),  # a client inside the trusted network
    (("10.0.0.1",), "10.0.0.1", "203.0.113.5, garbage", "10.0.0.1"),  # unreadable: no answer
    (("::1",), "::1", "2001:db8::7", "2001:db8::7"),
])
def test_client_address_behind_trusted_proxies(make_app: Any, settings: Any, proxies: tuple[str, ...], peer: str,
                                                forwarded: str, expected: str) -> None:
    from dataclasses import replace

    from starlette.requests import Request

    from ivr.web.common import client_address

    app = make_app(settings=replace(settings, web_trusted_proxies=proxies))
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    request = Request({"type": "http", "app": app, "headers": headers, "client": (peer, 1234), "path": "/"})
    assert client_address(request) == expected
