"""Issue 14: times on the pages in the user's own zone (default the company's), never bare UTC."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from ivr.db.models import AccountNote, ApiToken, DebtCase, User
from ivr.wiring import Database

from .conftest import Browser, make_account

STORED = dt.datetime(2025, 11, 19, 10, 5)  # naive UTC, as the database keeps instants


def _token(db: Database) -> None:
    with db.sessions.begin() as s:
        s.add(ApiToken(name="billing", token_hash="x" * 64, created_at=STORED))


def test_company_zone_by_default_then_the_users_own(db: Database, as_admin: Browser) -> None:
    _token(db)
    page = as_admin.get("/admin/tokens").text
    assert "2025-11-19 13:05" in page  # Europe/Moscow, the company's zone
    assert "2025-11-19 10:05" not in page
    assert 'id="user-tz"' in page and ">Europe/Moscow</a>" in page
    response = as_admin.post("/me", {"timezone": "Asia/Vladivostok"})
    assert response.status_code == 303
    page = as_admin.get("/admin/tokens").text
    assert "2025-11-19 20:05" in page and ">Asia/Vladivostok</a>" in page
    with db.sessions() as s:
        assert s.scalars(select(User.timezone).where(User.username == "admin")).one() == "Asia/Vladivostok"
    # empty = back to the company's
    assert as_admin.post("/me", {"timezone": ""}).status_code == 303
    assert "2025-11-19 13:05" in as_admin.get("/admin/tokens").text


def test_unknown_zone_refused_and_kept(db: Database, as_admin: Browser) -> None:
    response = as_admin.post("/me", {"timezone": "Mars/Olympus"})
    assert response.status_code == 400
    assert "«Mars/Olympus» — неизвестный часовой пояс" in response.text
    assert 'value="Mars/Olympus"' in response.text
    with db.sessions() as s:
        assert s.scalars(select(User.timezone).where(User.username == "admin")).one() is None


def test_each_user_sees_their_own_zone_on_the_operator_pages(db: Database, browser: Any,
                                                              users: dict[str, int]) -> None:
    with db.sessions.begin() as s:
        account = make_account(s)
        s.add(AccountNote(account_id=account.id, author="op1", text="перезвонить", created_at=STORED))
        s.get(User, users["op2"]).timezone = "Europe/Kyiv"  # type: ignore[union-attr]
        account_id = account.id
    op1, op2 = browser("op1"), browser("op2")
    page1 = op1.get(f"/accounts/{account_id}").text
    page2 = op2.get(f"/accounts/{account_id}").text
    assert "2025-11-19 13:05 · op1" in page1  # Moscow
    assert "2025-11-19 12:05 · op1" in page2  # Kyiv
    assert " UTC" not in page1 and " UTC" not in page2
    # the subscriber's own local time is still shown in their zone (Yekaterinburg, +5)
    assert "Asia/Yekaterinburg" in page1
    with db.sessions.begin() as s:
        case = s.scalars(select(DebtCase).where(DebtCase.account_id == account_id)).one()
        case.next_attempt_at = STORED
    page1 = op1.get(f"/accounts/{account_id}").text
    assert "2025-11-19 13:05" in page1 and "(у абонента 19.11 15:05)" in page1


def test_me_needs_a_login(browser: Any) -> None:
    response = browser(None).get("/me", follow_redirects=False)
    assert response.status_code in (302, 303, 307)
    assert "/login" in response.headers["location"]


def test_live_page_shows_instants_in_the_users_zone(db: Database, as_admin: Browser) -> None:
    page = as_admin.get("/live").text
    # the fixed clock is 10:00 UTC: 13:00 in Moscow, with the zone named instead of "UTC"
    assert '<span id="live-at">2025-11-19 13:00</span> Europe/Moscow' in page
    assert 'data-tz="Europe/Moscow"' in page


def test_dt_filter_converts_instants_only() -> None:
    from ivr.web.app import _templates

    env = _templates().env
    render = env.from_string("{{ v|dt }}").render
    assert render(v=STORED, user_tz="Asia/Vladivostok") == "2025-11-19 20:05"
    assert render(v="2025-11-19T10:05:00+00:00", user_tz="Europe/Moscow") == "2025-11-19 13:05"
    assert render(v="2025-11-19", user_tz="Europe/Moscow") == "2025-11-19"  # a date stays a date
    assert render(v=dt.date(2025, 11, 19), user_tz="Europe/Moscow") == "2025-11-19"
    assert render(v=None, user_tz="Europe/Moscow") == ""
    # without a user's zone the filter says UTC rather than pass UTC off as local
    assert render(v=STORED) == "2025-11-19 10:05 UTC"


def test_admin_sets_a_users_zone(db: Database, as_admin: Browser, users: dict[str, int]) -> None:
    base = {"role": "operator", "phone": "PJSIP/101", "queues": "", "active": "on"}
    assert as_admin.post(f"/admin/users/{users['op1']}", base | {"timezone": "Asia/Novosibirsk"}).status_code == 303
    refused = as_admin.post(f"/admin/users/{users['op1']}", base | {"timezone": "Novosibirsk"})
    assert refused.status_code == 400 and "«Novosibirsk» — неизвестный часовой пояс" in refused.text
    assert as_admin.post(f"/admin/users/{users['op1']}", base).status_code == 303  # no field: kept
    with db.sessions() as s:
        assert s.get(User, users["op1"]).timezone == "Asia/Novosibirsk"  # type: ignore[union-attr]
    page = as_admin.get("/admin/users").text
    assert 'value="Asia/Novosibirsk"' in page
