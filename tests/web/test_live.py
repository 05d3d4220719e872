"""The live page (issue 13): /live.json's content and the pause / resume buttons."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from ivr.db.models import CallAttempt, CallStep, LadderStage, RobotPause
from ivr.dialer import pauses
from ivr.heartbeat import beat
from ivr.wiring import Database

from .conftest import NOW, Browser, make_account, make_robot_call, make_task

NAIVE_NOW = NOW.replace(tzinfo=None)


def in_flight(s: Any, account: Any, action_id: str, state: str, *, started: dt.datetime,
              steps: tuple[str, ...] = (), server: str = "pbx1") -> CallAttempt:
    attempt = CallAttempt(debt_case_id=account.cases[0].id, account_id=account.id, phone=account.phones[0].number,
                          stage_code="reminder", purpose="robot", action_id=action_id, state=state, server=server,
                          created_at=started, originated_at=started)
    s.add(attempt)
    s.flush()
    for seq, step in enumerate(steps, start=1):
        s.add(CallStep(attempt_id=attempt.id, seq=seq, step=step))
    return attempt


def test_live_json_shows_lines_calls_plan_queues_health_and_pauses(db: Database, as_op1: Browser) -> None:
    with db.sessions.begin() as s:
        a1 = make_account(s, "A-1")
        a2 = make_account(s, "A-2", phones=("+79160000002",))
        a3 = make_account(s, "A-3", phones=("+79160000003",))
        in_flight(s, a1, "ring-1", "dialing", started=NAIVE_NOW - dt.timedelta(seconds=20))
        in_flight(s, a2, "talk-2", "answered", started=NAIVE_NOW - dt.timedelta(seconds=75),
                  steps=("greet", "identity", "menu"))
        done = make_robot_call(s, a3, created=NAIVE_NOW - dt.timedelta(hours=1))
        done.originated_at, done.answered_at = done.created_at, done.created_at
        make_task(s, a3, queue="quality", due=NAIVE_NOW - dt.timedelta(minutes=30), attempt=done)
        pauses.pause(s, pauses.SERVER, "pbx2", "admin", "trunk maintenance", NOW - dt.timedelta(minutes=5))
    beat(db.sessions, "host-1", "run", {
        "lines": {"pbx1": {"limit": 4, "in_use": 2}, "pbx2": {"limit": 2, "in_use": 0}},
        "ami": {"pbx1": {"connected": True, "since": "2025-11-19T09:00:00+00:00", "last_error": ""},
                "pbx2": {"connected": False, "since": "2025-11-19T09:50:00+00:00", "last_error": "connection refused"}},
        "agi": {"host": "0.0.0.0", "port": 4573},
        "dialer": {"health": {"ok": True, "reason": "", "since": "2025-11-19T09:00:00+00:00"}},
    }, NOW)

    response = as_op1.get("/live.json")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    data = response.json()
    assert data["lines"] == [{"server": "pbx1", "in_use": 2, "limit": 4, "paused": False},
                             {"server": "pbx2", "in_use": 0, "limit": 2, "paused": True}]
    calls = {c["id"]: c for c in data["calls"]}
    assert set(calls) == {"ring-1", "talk-2"}
    # the latest step, in the page's language (Russian by default); else ringing
    assert calls["talk-2"]["step"] == "menu" and calls["talk-2"]["step_label"] == "главное меню"
    assert calls["ring-1"]["step"] == "" and calls["ring-1"]["step_label"] == "вызов"
    assert calls["talk-2"]["seconds"] == 75 and calls["talk-2"]["account"] == "A-2"
    plan = data["plan"]
    assert plan["dialled_today"] == 3 and plan["answered_today"] == 1  # the calls in progress were dialled today
    assert plan["in_flight"] == 2 and plan["remaining"] == 1  # A-3's case; the two in flight are not left
    assert plan["due_today"] == 3  # A-3 was dialled today and is still due: counted once
    assert "waiting_window" in plan and "first_local" in plan["waiting_window"]
    assert data["queues"] == [{"queue": "quality", "raised_today": 1, "done_today": 0, "open": 1, "results": {},
                               "label": "Качество услуги"}]
    assert data["outcomes_today"] == {"reason": 1}
    # codes go with their labels in the page's language, so the page never shows a raw code
    assert data["outcome_labels"] == {"reason": "назвал причину"}
    assert calls["talk-2"]["stage"] == "reminder" and calls["talk-2"]["stage_label"] == "Мягкое напоминание"
    health = data["health"]
    assert health["running"] and {a["server"]: a["connected"] for a in health["ami"]} == {"pbx1": True, "pbx2": False}
    assert health["ami"][1]["last_error"] == "connection refused"
    assert health["agi"] == [{"process": "host-1", "address": "0.0.0.0:4573"}]
    assert health["dialing"][0]["ok"] is True
    assert [(p["scope"], p["key"], p["who"], p["why"]) for p in data["pauses"]] == [
        ("server", "pbx2", "admin", "trunk maintenance")]

    page = as_op1.get("/live")
    assert page.status_code == 200
    assert 'src="/static/live.js"' in page.text and "<script>" not in page.text
    assert "talk-2" in page.text and "trunk maintenance" in page.text
    assert 'action="/live/pause"' not in page.text  # operators see the pauses, only admins change them
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_live_json_in_english_and_for_managers_refused(db: Database, browser: Any, users: dict[str, int]) -> None:
    with db.sessions.begin() as s:
        in_flight(s, make_account(s, "A-1"), "talk-1", "answered", started=NAIVE_NOW, steps=("greet",))
    admin = browser("admin")
    admin.post("/lang", {"lang": "en", "next": "/live"})
    assert admin.get("/live.json").json()["calls"][0]["step_label"] == "greeting"
    boss = browser("boss")
    assert boss.get("/live.json").status_code == 403
    anonymous = browser(None)
    assert anonymous.get("/live.json", follow_redirects=False).status_code == 303


def test_admin_pauses_and_resumes_from_the_live_page(db: Database, as_admin: Browser, as_op1: Browser) -> None:
    with db.sessions() as s:
        stage = s.scalars(select(LadderStage.code).order_by(LadderStage.position)).first()
    assert stage is not None
    page = as_admin.get("/live").text
    assert 'id="pause-stage"' in page and f'<option value="{stage}">' in page

    response = as_admin.post("/live/pause", {"scope": "stage", "key": stage, "why": "new wording being recorded"})
    assert response.status_code == 303 and response.headers["location"] == "/live"
    assert as_admin.post("/live/pause", {"scope": "global", "why": ""}).status_code == 303
    assert as_admin.post("/live/pause", {"scope": "server", "key": ""}).status_code == 400  # nothing named
    assert as_op1.post("/live/pause", {"scope": "global"}).status_code == 403  # operators cannot
    forged = as_admin.client.post("/live/pause", data={"csrf": "forged", "scope": "global"}, follow_redirects=False)
    assert forged.status_code == 403

    data = as_op1.get("/live.json").json()
    assert [(p["scope"], p["key"], p["who"]) for p in data["pauses"]] == [("stage", stage, "admin"), ("global", "", "admin")]
    with db.sessions() as s:
        act = pauses.active(s)
    assert act.everything and act.stages == {stage}

    shown = as_admin.get("/live").text
    assert "new wording being recorded" in shown and 'action="/live/resume"' in shown
    global_id = next(p["id"] for p in data["pauses"] if p["scope"] == "global")
    assert as_op1.post("/live/resume", {"pause_id": str(global_id)}).status_code == 403
    assert as_admin.post("/live/resume", {"pause_id": str(global_id)}).status_code == 303
    assert as_admin.post("/live/resume", {"pause_id": str(global_id)}).status_code == 303  # already ended: says so
    assert "уже снята" in as_admin.get("/live").text
    with db.sessions() as s:
        act = pauses.active(s)
        row = s.get(RobotPause, global_id)
        assert row is not None and row.resumed_by == "admin" and row.resumed_at is not None
    assert not act.everything and act.stages == {stage}


def test_live_page_shows_the_forecast_made_in_the_background(db: Database, app: Any, as_op1: Browser) -> None:
    """The forecast is never computed in a page request: the first look says it is being computed,
    then the page and /live.json show the finish time in the company's time zone, the what-if
    rows and the callbacks per queue with their labels."""
    with db.sessions.begin() as s:
        for i in range(6):
            make_account(s, f"F-{i}", phones=(f"+7916000010{i}",))
    first = as_op1.get("/live.json").json()
    assert first["forecast"] is None and first["forecast_error"] is None
    assert app.state.live_forecast.wait(60), app.state.live_forecast.error

    data = as_op1.get("/live.json").json()
    fc = data["forecast"]
    assert fc is not None and fc["prior"] is True  # no call history: the stated prior
    assert fc["cases_today"] == 6 and fc["time_zone"] == "Europe/Moscow"
    assert [r["lines"] for r in fc["by_lines"]] == sorted({max(1, fc["lines"] // 2), fc["lines"], fc["lines"] * 2})
    current = next(r for r in fc["by_lines"] if r["lines"] == fc["lines"])
    assert current["finish_local"] is not None and current["finish_local"] == fc["finish_local"]
    # the prior sends callbacks to billing only; labelled in the page's language
    assert [(q["queue"], q["label"]) for q in fc["callbacks"]] == [("billing", "Вопросы по счетам")]
    assert fc["callbacks"][0]["today"] > 0
    assert "долгов" in fc["plan_line"] and "начальным оценкам" in fc["basis"]

    page = as_op1.get("/live").text
    assert 'id="live-forecast-card"' in page and fc["finish_local"] in page and "Вопросы по счетам" in page


def test_live_forecast_local_times_are_never_bare_utc() -> None:
    from ivr.web.live_forecast import with_local_times

    data = {"at": "2025-11-19T10:00:00+00:00", "opens": "2025-11-19T06:00:00+00:00",
            "finish": "2025-11-19T21:30:00+00:00",
            "by_lines": [{"lines": 2, "finish": "2025-11-19T21:30:00+00:00"}, {"lines": 4, "finish": None}]}
    out = with_local_times(data, "Europe/Moscow")
    assert out["opens_local"] == "09:00"
    assert out["finish_local"] == "20.11 00:30"  # past midnight in Moscow: the date is shown
    assert [r["finish_local"] for r in out["by_lines"]] == ["20.11 00:30", None]


def test_live_json_labels_codes_in_ukrainian(db: Database, browser: Any, users: dict[str, int]) -> None:
    """Stages, spoiled calls' results, queues and outcomes come with their labels in the page's
    language (here Ukrainian), so neither the page nor live.js shows a code."""
    with db.sessions.begin() as s:
        account = make_account(s, "A-1")
        in_flight(s, account, "talk-1", "answered", started=NAIVE_NOW, steps=("greet",))
        spoiled = in_flight(s, make_account(s, "A-2", phones=("+79160000002",)), "cut-2", "done",
                            started=NAIVE_NOW - dt.timedelta(minutes=5))
        spoiled.result, spoiled.ended_at = "interrupted", NAIVE_NOW - dt.timedelta(minutes=4)
    operator = browser("op1")
    operator.post("/lang", {"lang": "uk", "next": "/live"})
    data = operator.get("/live.json").json()
    assert data["calls"][0]["stage_label"] == "М'яке нагадування"
    assert [(e["result"], e["result_label"]) for e in data["health"]["last_errors"]] == [
        ("interrupted", "перервано з нашого боку")]
    page = operator.get("/live").text
    assert "перервано з нашого боку" in page
    assert "М&#39;яке нагадування" in page  # escaped apostrophe
