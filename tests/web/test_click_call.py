"""Click-to-call over HTTP: the subscriber's call hours, the override with its reason, and the
call's state and duration as the card polls them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update
from starlette.testclient import TestClient

from ivr.ami.types import CallEnded, OriginateResult
from ivr.clock import FixedClock
from ivr.db.models import CallAttempt, CallWindow, LadderStage, PhoneNumber
from ivr.dialer.attempts import on_call_ended, on_originate_result
from ivr.dialer.policy import load_rules
from ivr.web.deps import AmiClickToCall
from ivr.wiring import Database

from .conftest import Browser, FakeClickToCall
from .test_operator_pages import FakeAmi

# Wednesday 16:30 UTC: 21:30 for the card's subscriber (Asia/Yekaterinburg), after the default
# 09:00-20:00 window; still 19:30 in Moscow, the default zone, so the account's zone decides.
NIGHT = dt.datetime(2025, 11, 19, 16, 30, tzinfo=dt.UTC)


def _operator(make_app: Any, click_to_call: Any, clock: FixedClock, task_id: int) -> Browser:
    b = Browser(TestClient(make_app(click_to_call=click_to_call, clock=clock)))
    assert b.login("op1").status_code == 303
    assert b.post(f"/tasks/{task_id}/claim").headers["location"] == f"/tasks/{task_id}"
    return b


def _first_phone(db: Database) -> int:
    with db.sessions() as s:
        return s.scalars(select(PhoneNumber.id).order_by(PhoneNumber.priority)).first() or 0


def test_outside_hours_is_refused_without_override(db: Database, make_app: Any, users: dict[str, int],
                                                   card_task: int) -> None:
    fake = FakeClickToCall()
    b = _operator(make_app, fake, FixedClock(NIGHT), card_task)
    card = b.get(f"/tasks/{card_task}").text
    # the card warns before any click and offers the override
    assert 'id="outside-hours"' in card and "20.11 09:00 (Asia/Yekaterinburg)" in card
    assert 'name="override"' in card and 'name="override_reason"' in card
    response = b.post(f"/tasks/{card_task}/call", {"phone_id": str(_first_phone(db))})
    assert response.status_code == 303
    assert fake.calls == []
    page = b.get(f"/tasks/{card_task}").text
    assert "нерабочее для звонков время; звонить можно с 20.11 09:00 (Asia/Yekaterinburg)" in page
    # ticking the override without a reason is refused too
    b.post(f"/tasks/{card_task}/call", {"phone_id": str(_first_phone(db)), "override": "1", "override_reason": "  "})
    assert fake.calls == []
    assert "укажите причину" in b.get(f"/tasks/{card_task}").text


async def test_override_with_reason_calls_and_keeps_the_reason(db: Database, make_app: Any, settings: Any,
                                                               users: dict[str, int], card_task: int) -> None:
    clock = FixedClock(NIGHT)
    ami = FakeAmi()
    c2c = AmiClickToCall(ami, settings, sessions=db.sessions, clock=clock)
    b = _operator(make_app, c2c, clock, card_task)
    response = b.post(f"/tasks/{card_task}/call", {"phone_id": str(_first_phone(db)), "override": "1",
                                                   "override_reason": " asked to call\nback tonight "})
    assert response.status_code == 303
    assert len(ami.sent) == 1
    with db.sessions() as s:
        attempt = s.scalars(select(CallAttempt).where(CallAttempt.purpose == "operator")).one()
        assert attempt.override_reason == "asked to call back tonight"
        assert attempt.operator_id == users["op1"]
    page = b.get(f"/tasks/{card_task}").text
    assert "вне часов</span> asked to call back tonight" in page


def test_inside_hours_needs_no_override(db: Database, make_app: Any, users: dict[str, int], clock: FixedClock,
                                        card_task: int) -> None:
    fake = FakeClickToCall()
    b = _operator(make_app, fake, clock, card_task)  # 15:00 in Yekaterinburg
    assert 'id="outside-hours"' not in b.get(f"/tasks/{card_task}").text
    b.post(f"/tasks/{card_task}/call", {"phone_id": str(_first_phone(db))})
    assert len(fake.calls) == 1 and "override_reason" not in fake.calls[0]


def test_the_stage_window_profile_decides(db: Database, make_app: Any, users: dict[str, int],
                                          card_task: int) -> None:
    # the case's stage calls in the evening: 21:30 is inside its window, though not the default's
    with db.sessions.begin() as s:
        s.add_all(CallWindow(profile="evening", weekday=d, start_time=dt.time(18, 0), end_time=dt.time(22, 0))
                  for d in range(8))
        s.execute(update(LadderStage).where(LadderStage.code == "reminder").values(window_profile="evening"))
    fake = FakeClickToCall()
    b = _operator(make_app, fake, FixedClock(NIGHT), card_task)
    b.post(f"/tasks/{card_task}/call", {"phone_id": str(_first_phone(db))})
    assert len(fake.calls) == 1


async def test_call_status_follows_the_call(db: Database, make_app: Any, settings: Any, users: dict[str, int],
                                            clock: FixedClock, card_task: int) -> None:
    c2c = AmiClickToCall(FakeAmi(), settings, sessions=db.sessions, clock=clock)
    b = _operator(make_app, c2c, clock, card_task)
    assert b.get(f"/tasks/{card_task}/call-status").json() == {"call": None}
    b.post(f"/tasks/{card_task}/call", {"phone_id": str(_first_phone(db))})
    status = b.get(f"/tasks/{card_task}/call-status").json()["call"]
    assert (status["state"], status["label"], status["duration_s"]) == ("ringing", "идёт вызов", None)

    with db.sessions() as s:
        action_id = s.scalars(select(CallAttempt.action_id).where(CallAttempt.purpose == "operator")).one()
        rules = load_rules(s)
    clock.advance(dt.timedelta(seconds=12))
    on_originate_result(db.sessions, OriginateResult(action_id, True, 4, "PJSIP/101-0001", "1.1", "answered"),
                        clock.now(), rules)
    clock.advance(dt.timedelta(seconds=30))
    status = b.get(f"/tasks/{card_task}/call-status").json()["call"]
    assert (status["state"], status["label"], status["duration_s"]) == ("talking", "разговор", 30)

    clock.advance(dt.timedelta(seconds=45))
    on_call_ended(db.sessions, CallEnded(action_id, "1.1", "PJSIP/101-0001", 16, "Normal Clearing", "answered"),
                  clock.now(), rules)
    clock.advance(dt.timedelta(minutes=5))  # an ended call's duration is the stored one
    status = b.get(f"/tasks/{card_task}/call-status").json()["call"]
    assert (status["state"], status["label"], status["duration_s"]) == ("ended", "завершён", 75)
    with db.sessions() as s:
        attempt = s.scalars(select(CallAttempt).where(CallAttempt.action_id == action_id)).one()
        assert float(attempt.duration_s or 0) == 75.0
    # the card's attempt list shows the stored duration too
    assert "· 75 с" in b.get(f"/tasks/{card_task}").text


def test_call_status_needs_login_and_the_queue(db: Database, make_app: Any, users: dict[str, int],
                                               card_task: int) -> None:
    from .conftest import add_user

    client = TestClient(make_app())
    assert client.get(f"/tasks/{card_task}/call-status", follow_redirects=False).status_code in (302, 303, 401)
    add_user(db, "biller", "operator", phone="PJSIP/103", queues=["billing"])
    b = Browser(client)
    assert b.login("biller").status_code == 303
    assert b.get(f"/tasks/{card_task}/call-status").status_code == 403
