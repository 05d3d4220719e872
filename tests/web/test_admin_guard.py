"""Issue 14: the legal-hours guard in the window editor and the runtime settings page (admins only,
validated, typed values kept on refusal, stored values read by the call script and the dialer)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import select

from ivr.call.script import CallOptions
from ivr.db.models import Account, CallWindow, Setting
from ivr.db.options import get_options, set_option
from ivr.dialer.policy import load_rules
from ivr.web import runtime_settings as rs
from ivr.web.call_hours import call_hours
from ivr.web.forms import FormProblems
from ivr.wiring import Database

from .conftest import Browser, make_account


def _windows(db: Database, profile: str = "default") -> dict[int, list[tuple[dt.time, dt.time]]]:
    out: dict[int, list[tuple[dt.time, dt.time]]] = {}
    with db.sessions() as s:
        for w in s.scalars(select(CallWindow).where(CallWindow.profile == profile).order_by(CallWindow.start_time)):
            out.setdefault(w.weekday, []).append((w.start_time, w.end_time))
    return out


def _days(**overrides: str) -> dict[str, str]:
    days = {f"day{d}": "09:00-20:00" for d in range(5)} | {f"day{d}": "10:00-18:00" for d in (5, 6, 7)}
    return days | overrides


def _settings_form(db: Database, **overrides: str) -> dict[str, str]:
    with db.sessions() as s:
        return rs.form_values(get_options(s)) | overrides


def _stored_settings(db: Database) -> dict[str, Any]:
    with db.sessions() as s:
        return {row.key: row.value for row in s.scalars(select(Setting))}


# --- the window editor's guard ------------------------------------------------------------------

def test_sunday_6_to_23_30_refused_naming_the_limit(db: Database, as_admin: Browser) -> None:
    before = _windows(db)
    response = as_admin.post("/admin/windows", {"profile": "default", **_days(day6="06:00-23:30")})
    assert response.status_code == 400
    text = response.text
    assert "Воскресенье: 06:00-23:30 — вне законных часов выходных и праздников (09:00-20:00)" in text
    assert 'value="06:00-23:30"' in text  # what the admin typed is still there
    assert _windows(db) == before


def test_working_day_and_holiday_rows_checked_against_their_limits(db: Database, as_admin: Browser) -> None:
    response = as_admin.post("/admin/windows", {"profile": "default",
                                                **_days(day0="07:30-12:00", day7="8-19")})
    assert response.status_code == 400
    assert "07:30-12:00 — вне законных часов рабочих дней (08:00-22:00)" in response.text
    assert "Праздничный день: 08:00-19:00 — вне законных часов выходных и праздников (09:00-20:00)" in response.text
    # English UI, same refusal
    as_admin.post("/lang", {"lang": "en", "next": "/admin/windows"})
    response = as_admin.post("/admin/windows", {"profile": "default", **_days(day6="06:00-23:30")})
    assert "06:00-23:30 is outside the legal hours of weekends and public holidays (09:00-20:00)" in response.text


@pytest.mark.parametrize("typed", ["9-13", "9:00-13:00", "09:00-13:00"])
def test_short_hours_accepted(db: Database, as_admin: Browser, typed: str) -> None:
    response = as_admin.post("/admin/windows", {"profile": "default", **_days(day5=typed)})
    assert response.status_code == 303
    assert _windows(db)[5] == [(dt.time(9), dt.time(13))]
    assert 'name="day5" id="day5" value="09:00-13:00"' in as_admin.get("/admin/windows").text


def test_window_page_shows_limits_and_warns_about_windows_they_cut(db: Database, as_admin: Browser) -> None:
    page = as_admin.get("/admin/windows").text
    assert "рабочие дни 08:00-22:00, выходные и праздники 09:00-20:00" in page
    assert '<td class="muted legal-limit" id="legal-day0">08:00-22:00</td>' in page
    assert '<td class="muted legal-limit" id="legal-day7">09:00-20:00</td>' in page
    assert 'id="legal-warnings"' not in page
    with db.sessions.begin() as s:  # narrowed after the windows were saved
        set_option(s, "legal_hours_weekend", "11:00-17:00")
    page = as_admin.get("/admin/windows").text
    assert "выходные и праздники 11:00-17:00" in page
    assert 'id="legal-warnings"' in page and "Суббота: 10:00-18:00 — вне законных часов" in page


# --- the settings page --------------------------------------------------------------------------

def test_settings_page_lists_every_setting_with_help(as_admin: Browser) -> None:
    page = as_admin.get("/admin/settings")
    assert page.status_code == 200
    for spec in rs.SPECS:
        assert f'name="{spec.key}"' in page.text, spec.key
        assert f'id="help-{spec.key}"' in page.text, spec.key
    assert 'name="legal_hours_weekday" id="set-legal_hours_weekday" value="08:00-22:00"' in page.text
    assert "help_" not in re.sub(r'id="help-[a-z_]+"|aria-describedby="help-[a-z_]+"', "", page.text)
    as_admin.post("/lang", {"lang": "en", "next": "/admin/settings"})
    english = as_admin.get("/admin/settings").text
    assert "Legal calling hours" in english and "Working days (Mon-Fri)" in english
    visible = re.sub(r'(id|aria-describedby|name|for)="[^"]*"', "", english)
    for raw in ("help_", "field_", "settings_group_", "unit_", "machine_action_"):
        assert raw not in visible, raw


def test_settings_only_for_admins(browser: Any, users: dict[str, int], db: Database) -> None:
    for who in ("op1", "boss"):
        b = browser(who)
        assert b.get("/admin/settings").status_code == 403
        response = b.post("/admin/settings", _settings_form(db, legal_hours_weekend="0-24"))
        assert response.status_code == 403
    assert "legal_hours_weekend" not in _stored_settings(db) or \
        _stored_settings(db)["legal_hours_weekend"] == "09:00-20:00"


def test_saved_settings_override_defaults_for_the_call_and_the_dialer(db: Database, as_admin: Browser) -> None:
    form = _settings_form(db, legal_hours_weekday="9-21", legal_hours_weekend="10:00-19:00",
                          max_menu_tries="2", menu_timeout_seconds="8", human_request_key="8", opt_out_key="",
                          machine_action="hangup", paid_claim_grace_days="5", retry_busy_minutes="15",
                          retention_after_days="60", overdue_after_days="120", promise_horizon_max_days="20")
    response = as_admin.post("/admin/settings", form)
    assert response.status_code == 303
    with db.sessions() as s:
        options = CallOptions.from_options(get_options(s))
        rules = load_rules(s)
    assert (options.max_tries, options.timeout_ms, options.human_key, options.opt_out_key) == (2, 8000, "8", "")
    assert (options.machine_action, options.paid_claim_grace_days) == ("hangup", 5)
    assert rules.legal.weekday == (9 * 60, 21 * 60) and rules.legal.weekend == (10 * 60, 19 * 60)
    assert (rules.options.retry_busy_minutes, rules.options.retention_after_days,
            rules.options.overdue_after_days) == (15, 60, 120)
    assert _stored_settings(db)["legal_hours_weekday"] == "09:00-21:00"  # stored normalised
    page = as_admin.get("/admin/settings").text
    assert 'value="09:00-21:00"' in page and 'value="20"' in page
    # and the window editor now refuses what the old limits allowed
    response = as_admin.post("/admin/windows", {"profile": "default", **_days(day0="08:30-20:00")})
    assert response.status_code == 400 and "(09:00-21:00)" in response.text


def test_invalid_settings_refused_with_reasons_and_nothing_lost(db: Database, as_admin: Browser) -> None:
    before = _stored_settings(db)
    form = _settings_form(db, legal_hours_weekend="6-25", max_menu_tries="0", menu_timeout_seconds="abc",
                          human_request_key="1", opt_out_key="7", human_request_queue="Bad Queue",
                          retention_after_days="200", overdue_after_days="100", retry_busy_minutes="15")
    response = as_admin.post("/admin/settings", form)
    assert response.status_code == 400
    text = response.text
    assert "Выходные и праздники: «6-25» — ожидается интервал вида 8-22 или 08:00-22:00" in text
    assert "Попыток в меню: целое число от 1 до 10" in text
    assert "Ожидание нажатия: целое число от 2 до 30" in text
    assert "кнопка «1» недопустима" in text
    assert "должно быть больше срока удержания (200 дней)" in text
    # everything typed is shown again, the valid ones too
    for key, value in (("legal_hours_weekend", "6-25"), ("menu_timeout_seconds", "abc"),
                       ("human_request_queue", "Bad Queue"), ("retry_busy_minutes", "15")):
        assert f'name="{key}" id="set-{key}" value="{value}"' in text
    assert '<option selected value="1">1</option>' in text  # the refused key stays chosen
    assert _stored_settings(db) == before


def test_parse_settings_keys_must_differ_and_avoid_the_menu() -> None:
    base = rs.form_values({"legal_hours_weekday": "8-22", "legal_hours_weekend": "9-20",
                           "holiday_policy": "as_weekend", "promise_horizon_days_after_block": 5,
                           "promise_horizon_max_days": 30, "paid_claim_grace_days": 3, "max_menu_tries": 3,
                           "menu_timeout_seconds": 6, "human_request_key": "9", "human_request_queue": "billing",
                           "opt_out_key": "7", "machine_action": "message", "retry_busy_minutes": 20,
                           "retry_no_answer_minutes": 120, "retry_congestion_minutes": 30, "retry_failed_minutes": 5,
                           "retry_machine_minutes": 240, "retry_hangup_minutes": 240, "retention_after_days": 90,
                           "overdue_after_days": 180})
    assert rs.parse_settings(base)["legal_hours_weekday"] == "08:00-22:00"
    with pytest.raises(FormProblems) as err:
        rs.parse_settings(base | {"opt_out_key": "9"})
    assert [p.key for p in err.value.problems] == ["err_keys_clash"]
    with pytest.raises(FormProblems) as err:
        rs.parse_settings(base | {"human_request_key": "0", "machine_action": "sing"})
    assert {p.key for p in err.value.problems} == {"err_option_key", "err_choice"}


def test_operator_call_hours_keep_the_legal_limits_whatever_the_windows_say(db: Database) -> None:
    """The operator's "may I call now" (ivr.web.call_hours) uses the dialer's rules, so a window
    stored outside the limits (written straight into the table) still does not open at 06:00."""
    with db.sessions.begin() as s:
        s.query(CallWindow).filter(CallWindow.profile == "default", CallWindow.weekday == 6).delete()
        s.add(CallWindow(profile="default", weekday=6, start_time=dt.time(6), end_time=dt.time(23, 30)))
        account = make_account(s, timezone="Europe/Moscow")
        account_id = account.id
    sunday_6 = dt.datetime(2025, 11, 23, 3, 0, tzinfo=dt.UTC)  # 06:00 in Moscow
    with db.sessions() as s:
        row = s.get(Account, account_id)
        assert row is not None
        hours = call_hours(s, row, None, "+79161234567", sunday_6, "Europe/Moscow")
        assert not hours.allowed
        assert hours.next_open_local is not None and hours.next_open_local.strftime("%H:%M") == "09:00"
        later = call_hours(s, row, None, "+79161234567", sunday_6 + dt.timedelta(hours=3), "Europe/Moscow")
        assert later.allowed


def test_stage_with_a_required_hour_the_law_never_allows_is_refused(db: Database, as_admin: Browser) -> None:
    form = {"code": "night", "position": "9", "name": "Ночной", "anchor": "due", "start_day": "30",
            "prompt": "debt_soft", "window_profile": "default", "required_hour": "6", "max_attempts": "2",
            "retry_minutes": "60", "on_end": "stop", "active": "on"}
    response = as_admin.post("/admin/ladder/new", form)
    assert response.status_code == 400
    assert "Час звонка: 6:00 — вне законных часов (08:00-22:00, 09:00-20:00)" in response.text
    assert as_admin.post("/admin/ladder/new", form | {"required_hour": "8"}).status_code == 303  # weekdays only
