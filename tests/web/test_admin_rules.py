"""Admin pages for windows, holiday policy, reasons, ladder, limits, opt-outs, users, tokens."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from ivr.db.models import ApiToken, CallWindow, ContactLimit, LadderStage, OptOut, Reason, User
from ivr.db.options import get_option, set_option
from ivr.web.auth import hash_token
from ivr.wiring import Database

from .conftest import Browser, make_account


def _windows(db: Database, profile: str = "default") -> dict[int, list[tuple[dt.time, dt.time]]]:
    out: dict[int, list[tuple[dt.time, dt.time]]] = {}
    with db.sessions() as s:
        for w in s.scalars(select(CallWindow).where(CallWindow.profile == profile).order_by(CallWindow.start_time)):
            out.setdefault(w.weekday, []).append((w.start_time, w.end_time))
    return out


def _days(**overrides: str) -> dict[str, str]:
    days = {f"day{d}": "09:00-20:00" for d in range(5)} | {"day5": "10:00-18:00", "day6": "10:00-18:00",
                                                           "day7": "10:00-18:00"}
    days.update(overrides)
    return days


def test_windows_page_shows_seeded_hours(as_admin: Browser) -> None:
    page = as_admin.get("/admin/windows").text
    assert 'name="day0" id="day0" value="09:00-20:00"' in page
    assert 'name="day7" id="day7" value="10:00-18:00"' in page


def test_window_edit_saved(db: Database, as_admin: Browser) -> None:
    with db.sessions.begin() as s:  # legal limits that allow a window until midnight
        set_option(s, "legal_hours_weekday", "08:00-24:00")
    response = as_admin.post("/admin/windows", {"profile": "default",
                                                **_days(day2="", day3="08:00-12:00, 13:00-24:00")})
    assert response.status_code == 303
    windows = _windows(db)
    assert 2 not in windows  # Wednesday closed
    assert windows[3] == [(dt.time(8), dt.time(12)), (dt.time(13), dt.time(0))]  # 24:00 is stored as 00:00
    assert windows[0] == [(dt.time(9), dt.time(20))]


def test_window_errors_refused_and_nothing_changed(db: Database, as_admin: Browser) -> None:
    before = _windows(db)
    for bad, message in (("20:00-09:00", "конец раньше начала"), ("9h-20", "ожидается ЧЧ:ММ-ЧЧ:ММ"),
                         ("09:00-13:00, 12:00-18:00", "пересекаются"), ("25:00-26:00", "ожидается")):
        response = as_admin.post("/admin/windows", {"profile": "default", **_days(day1=bad)})
        assert response.status_code == 400, bad
        assert message in response.text and "Вторник" in response.text
        assert f'value="{bad}"' in response.text  # the admin's input is kept
    all_closed = {f"day{d}": "" for d in range(8)}
    assert as_admin.post("/admin/windows", {"profile": "default", **all_closed}).status_code == 400
    assert _windows(db) == before


def test_new_window_profile_then_used_by_a_stage(db: Database, as_admin: Browser) -> None:
    assert as_admin.post("/admin/windows", {"profile": "evening", **_days()}).status_code == 303
    assert 0 in _windows(db, "evening")
    assert as_admin.get("/admin/windows?profile=Bad Name").status_code == 400


def test_holiday_policy(db: Database, as_admin: Browser) -> None:
    assert as_admin.post("/admin/windows/holiday", {"holiday_policy": "no_calls"}).status_code == 303
    with db.sessions() as s:
        assert get_option(s, "holiday_policy") == "no_calls"
    assert as_admin.post("/admin/windows/holiday", {"holiday_policy": "always"}).status_code == 400


def _reason_form(**kw: str) -> dict[str, str]:
    form = {"code": "late_salary", "key": "9", "label_ru": "задержали зарплату", "label_en": "salary is late",
            "category": "uncontrollable", "route": "", "norm_pct": "3", "position": "9", "active": "on",
            "reply_ru": "Назовите удобную дату в главном меню."}
    form.update(kw)
    return form


def test_reasons_list_shows_norm_sum(as_admin: Browser) -> None:
    page = as_admin.get("/admin/reasons").text
    assert '<th class="num" id="norm-sum">100.00</th>' in page
    assert "недоволен качеством услуги" in page


def test_reason_add_and_edit(db: Database, as_admin: Browser) -> None:
    assert as_admin.post("/admin/reasons/new", _reason_form()).status_code == 303
    with db.sessions() as s:
        row = s.scalars(select(Reason).where(Reason.code == "late_salary")).one()
        assert (row.key, row.labels["en"], row.actionable, row.norm_pct) == ("9", "salary is late", False, Decimal("3"))
        rid = row.id
    assert "103.00" in as_admin.get("/admin/reasons").text  # the sum is shown, off 100
    response = as_admin.post(f"/admin/reasons/{rid}", _reason_form(actionable="on", route="billing"))
    assert response.status_code == 303
    with db.sessions() as s:
        row = s.get_one(Reason, rid)
        assert (row.actionable, row.route) == (True, "billing")


def test_reason_validation(db: Database, as_admin: Browser) -> None:
    cases = [
        (_reason_form(key="1"), "кнопка 1 уже у другой активной причины"),
        (_reason_form(key="0"), "одна цифра от 1 до 9"),
        (_reason_form(key="12"), "одна цифра от 1 до 9"),
        (_reason_form(code="forgot"), "код «forgot» уже занят"),
        (_reason_form(actionable="on"), "нужна очередь"),
        (_reason_form(incentive_allowed="on"), "скидку предлагает человек"),
        (_reason_form(label_ru=""), "нужно название на языке ru"),
        (_reason_form(norm_pct="120"), "число от 0 до 100"),
        (_reason_form(category="other"), "выберите категорию"),
    ]
    for form, message in cases:
        response = as_admin.post("/admin/reasons/new", form)
        assert response.status_code == 400, form
        assert message in response.text, message
    with db.sessions() as s:
        assert s.scalar(select(Reason).where(Reason.code == "late_salary")) is None
    # an inactive reason may share a key with an active one
    assert as_admin.post("/admin/reasons/new", _reason_form(key="1", active="")).status_code == 303


def _stage_form(**kw: str) -> dict[str, str]:
    form = {"code": "courtesy", "position": "9", "name": "Courtesy call", "anchor": "due", "start_day": "-2",
            "prompt": "before_due", "window_profile": "default", "required_hour": "", "max_attempts": "2",
            "retry_minutes": "120", "on_enter": "", "on_end": "next", "active": "on"}
    form.update(kw)
    return form


def test_ladder_stage_add_edit_validate(db: Database, as_admin: Browser) -> None:
    assert as_admin.post("/admin/ladder/new", _stage_form()).status_code == 303
    with db.sessions() as s:
        stage = s.scalars(select(LadderStage).where(LadderStage.code == "courtesy")).one()
        assert (stage.start_day, stage.prompt, stage.required_hour, stage.on_enter) == (-2, "before_due", None, None)
        sid = stage.id
    assert as_admin.post(f"/admin/ladder/{sid}", _stage_form(required_hour="11", on_enter="block")).status_code == 303
    with db.sessions() as s:
        assert (s.get_one(LadderStage, sid).required_hour, s.get_one(LadderStage, sid).on_enter) == (11, "block")
    for form, message in [
        (_stage_form(code="firm"), "код «firm» уже занят"),
        (_stage_form(position="1"), "порядок 1 уже у другого активного этапа"),
        (_stage_form(prompt="no_such_prompt"), "шаблона «no_such_prompt» нет"),
        (_stage_form(window_profile="night"), "профиля часов «night» нет"),
        (_stage_form(max_attempts="0"), "целое число от 1 до 50"),
        (_stage_form(required_hour="24"), "целое число от 0 до 23"),
        (_stage_form(on_end="explode"), "недопустимое значение"),
        (_stage_form(anchor="paid"), "выберите, от какой даты считать"),
    ]:
        response = as_admin.post("/admin/ladder/new", form)
        assert response.status_code == 400, form
        assert message in response.text, message


def test_limits(db: Database, as_admin: Browser) -> None:
    assert as_admin.post("/admin/limits", {"period": "day", "counts": "answered", "max_calls": "2"}).status_code == 303
    assert as_admin.post("/admin/limits", {"period": "week", "counts": "attempts", "max_calls": "10"}).status_code == 303
    with db.sessions() as s:
        limits = {(lim.period, lim.counts): lim.max_calls for lim in s.scalars(select(ContactLimit))}
        assert limits[("day", "answered")] == 2 and limits[("week", "attempts")] == 10
        week_id = s.scalars(select(ContactLimit.id).where(ContactLimit.period == "week", ContactLimit.counts == "attempts")).one()
    assert as_admin.post("/admin/limits", {"period": "year", "counts": "attempts", "max_calls": "1"}).status_code == 400
    assert as_admin.post("/admin/limits", {"period": "day", "counts": "attempts", "max_calls": "-1"}).status_code == 400
    assert as_admin.post(f"/admin/limits/{week_id}/delete").status_code == 303
    with db.sessions() as s:
        assert s.get(ContactLimit, week_id) is None


def test_optouts(db: Database, as_admin: Browser) -> None:
    with db.sessions.begin() as s:
        account_id = make_account(s, "A-5").id
    assert as_admin.post("/admin/optouts", {"phone": "8 (916) 555-44-33", "note": "asked by letter"}).status_code == 303
    assert as_admin.post("/admin/optouts", {"external_id": "A-5"}).status_code == 303
    with db.sessions() as s:
        rows = s.scalars(select(OptOut).order_by(OptOut.id)).all()
        assert (rows[0].phone, rows[0].source, rows[0].account_id) == ("+79165554433", "admin", None)
        assert rows[1].account_id == account_id
        first = rows[0].id
    page = as_admin.get("/admin/optouts").text
    assert "+7916*****33" in page and "+79165554433" not in page
    assert as_admin.post("/admin/optouts", {"phone": "12"}).status_code == 400
    assert as_admin.post("/admin/optouts", {"external_id": "NOPE"}).status_code == 400
    assert as_admin.post("/admin/optouts", {}).status_code == 400
    assert as_admin.post(f"/admin/optouts/{first}/delete").status_code == 303
    with db.sessions() as s:
        assert s.get(OptOut, first) is None


def test_users_add_update_deactivate(db: Database, as_admin: Browser, browser: object, users: dict[str, int]) -> None:
    response = as_admin.post("/admin/users", {"username": "anna", "role": "operator", "password": "long password",
                                              "phone": "PJSIP/105", "queues": "billing, retention"})
    assert response.status_code == 303
    with db.sessions() as s:
        anna = s.scalars(select(User).where(User.username == "anna")).one()
        assert (anna.role, anna.phone, anna.queues) == ("operator", "PJSIP/105", ["billing", "retention"])
        assert anna.password_hash.startswith("scrypt$")
    dup = as_admin.post("/admin/users", {"username": "anna", "role": "operator", "password": "long password"})
    assert dup.status_code == 400 and "уже есть" in dup.text
    short = as_admin.post("/admin/users", {"username": "bob", "role": "operator", "password": "short"})
    assert short.status_code == 400 and "не короче 12" in short.text
    assert as_admin.post(f"/admin/users/{anna.id}", {"role": "manager", "phone": "", "queues": ""}).status_code == 303
    with db.sessions() as s:
        anna = s.get_one(User, anna.id)
        assert (anna.role, anna.active, anna.queues) == ("manager", False, [])
    # an admin cannot lock themselves out
    me = users["admin"]
    response = as_admin.post(f"/admin/users/{me}", {"role": "operator", "active": "on"})
    assert response.status_code == 400
    with db.sessions() as s:
        assert s.get_one(User, me).role == "admin"


def test_tokens_shown_once_and_revoked(db: Database, as_admin: Browser) -> None:
    page = as_admin.post("/admin/tokens", {"name": "billing", "scope": ["export"]}, follow_redirects=False)
    assert page.status_code == 200
    token = page.text.split('<code class="token">')[1].split("</code>")[0]
    with db.sessions() as s:
        row = s.scalars(select(ApiToken)).one()
        assert row.token_hash == hash_token(token)
        assert row.scopes == "export"
    assert token not in as_admin.get("/admin/tokens").text
    assert as_admin.post("/admin/tokens", {"name": "billing", "scope": ["import"]}).status_code == 400
    # a token that may do nothing is refused, not stored
    nothing = as_admin.post("/admin/tokens", {"name": "idle"})
    assert nothing.status_code == 400 and "import" in nothing.text
    assert as_admin.post(f"/admin/tokens/{row.id}/revoke").status_code == 303
    with db.sessions() as s:
        assert s.get_one(ApiToken, row.id).revoked_at is not None


def test_reason_route_is_chosen_from_the_labelled_queues(db: Database, as_admin: Browser) -> None:
    page = as_admin.get("/admin/reasons/new").text
    assert '<select name="route">' in page and '<input name="route"' not in page
    assert '<option value="retention">Удержание</option>' in page
    assert '<option value="billing">Вопросы по счетам</option>' in page
    # a name typed into a forged form is not a queue anybody works
    response = as_admin.post("/admin/reasons/new", _reason_form(actionable="on", route="nowhere"))
    assert response.status_code == 400 and "очереди «nowhere» нет в списке" in response.text
    with db.sessions() as s:
        assert s.scalar(select(Reason).where(Reason.code == "late_salary")) is None
    assert as_admin.post("/admin/reasons/new", _reason_form(actionable="on", route="retention")).status_code == 303
    listing = as_admin.get("/admin/reasons").text
    assert "<td>Удержание</td>" in listing or ">Удержание<" in listing


def test_user_queues_are_ticked_from_the_list_and_shown_by_label(db: Database, as_admin: Browser) -> None:
    response = as_admin.post("/admin/users", {"username": "olga", "role": "operator", "password": "long password",
                                              "queues": ["billing", "quality"]})
    assert response.status_code == 303
    with db.sessions() as s:
        olga = s.scalars(select(User).where(User.username == "olga")).one()
        assert olga.queues == ["billing", "quality"]
    page = as_admin.get("/admin/users").text
    assert f'<input type="checkbox" name="queues" value="quality" form="user-{olga.id}" checked> Качество услуги' in page
    assert f'<input type="checkbox" name="queues" value="retention" form="user-{olga.id}"> Удержание' in page
    assert 'size="16" placeholder' not in page  # no free-text queue field left
    assert as_admin.post(f"/admin/users/{olga.id}", {"role": "operator", "active": "on",
                                                     "queues": ["retention"]}).status_code == 303
    with db.sessions() as s:
        assert s.get_one(User, olga.id).queues == ["retention"]
    forged = as_admin.post(f"/admin/users/{olga.id}", {"role": "operator", "active": "on", "queues": ["nowhere"]})
    assert forged.status_code == 400 and "очереди «nowhere» нет в списке" in forged.text
    with db.sessions() as s:
        assert s.get_one(User, olga.id).queues == ["retention"]


def test_codes_are_shown_by_their_labels(db: Database, as_admin: Browser) -> None:
    assert as_admin.post("/admin/optouts", {"phone": "8 (916) 555-44-33"}).status_code == 303
    page = as_admin.get("/admin/optouts").text
    assert "<td>администратор</td>" in page and "<td>admin</td>" not in page
    ladder = as_admin.get("/admin/ladder").text
    assert "<td>Мягкое напоминание</td>" in ladder and "Soft reminder" not in ladder
    as_admin.post("/lang", {"lang": "uk", "next": "/admin/ladder"})
    ladder = as_admin.get("/admin/ladder").text
    assert "<td>Послугу обмежено</td>" in ladder and "Service restricted" not in ladder
    prompt = as_admin.get("/admin/prompts/edit?name=menu&lang=ru&stage=").text
    assert "Головне меню: 1 — дата" in prompt and "Main menu" not in prompt
    assert "Назва компанії (налаштування)" in prompt and "Company name" not in prompt
