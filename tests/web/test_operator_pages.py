"""The operator's pages over HTTP: queues, take next, the account card, results, click-to-call."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import select

from ivr import dialplan_vars
from ivr.db.models import CallAttempt, CallbackTask, DebtCase, PhoneNumber, Promise
from ivr.web.deps import AmiClickToCall, ClickToCallError
from ivr.wiring import Database

from .conftest import Browser, FakeClickToCall, make_account, make_robot_call, make_task


def _take(b: Browser) -> int | None:
    response = b.post("/queues/next")
    assert response.status_code == 303
    m = re.fullmatch(r"/tasks/(\d+)", response.headers["location"])
    return int(m.group(1)) if m else None


def test_queues_page_counts_and_take_next(as_op1: Browser, card_task: int) -> None:
    page = as_op1.get("/queues")
    assert page.status_code == 200
    assert re.search(r"Качество услуги</td>\s*<td class=\"num\">1</td>", page.text)
    assert _take(as_op1) == card_task
    # nothing else is due: the next take says so
    as_op1.post(f"/tasks/{card_task}/release")
    assert _take(as_op1) == card_task


def test_two_operators_get_different_tasks(db: Database, as_op1: Browser, as_op2: Browser) -> None:
    with db.sessions.begin() as s:
        a = make_account(s)
        first = make_task(s, a, due=dt.datetime(2025, 11, 19, 8, 0)).id
        second = make_task(s, a, due=dt.datetime(2025, 11, 19, 8, 5)).id
    assert _take(as_op1) == first
    assert _take(as_op2) == second
    assert _take(as_op1) == first  # op1 holds one already
    # op2 cannot claim op1's task
    response = as_op2.post(f"/tasks/{first}/claim")
    assert response.headers["location"] == "/queues"
    assert "другой оператор" in as_op2.get("/queues").text


def test_account_card_shows_what_the_robot_learned(as_op1: Browser, card_task: int) -> None:
    _take(as_op1)
    page = as_op1.get(f"/tasks/{card_task}").text
    for expected in ("Петров Пётр Петрович", "A-1001", "Охрана квартиры", "Базовый", "1\u00a0800,50 RUB",
                     "2025-11-10", "2025-11-25", "Asia/Yekaterinburg", "недоволен качеством услуги",
                     "проверка личности", "меню причин", "подтверждена", "48 с"):
        assert expected in page, expected
    # subscriber's local time: 10:00 UTC is 15:00 in Yekaterinburg
    assert '<strong id="local-time">15:00</strong>' in page
    # keys pressed at each step, in order
    keys = re.findall(r'<td class="keys">([^<]*)</td>', page)
    assert keys == ["—", "1", "3", "4"]
    # phones are masked: the full number is nowhere on the page
    assert "+79161234567" not in page and "79161234567" not in page
    assert "+7916*****67" in page


def test_card_in_english(as_op1: Browser, card_task: int) -> None:
    as_op1.post("/lang", {"lang": "en"})
    page = as_op1.get(f"/tasks/{card_task}").text
    assert "unhappy with the service" in page and "identity check" in page and "1,800.50 RUB" in page


def _claim(b: Browser, task_id: int) -> None:
    assert b.post(f"/tasks/{task_id}/claim").headers["location"] == f"/tasks/{task_id}"


def test_record_promise(db: Database, as_op1: Browser, card_task: int) -> None:
    _claim(as_op1, card_task)
    response = as_op1.post(f"/tasks/{card_task}/result", {"kind": "promise", "promise_date": "2025-11-24",
                                                           "note": "pays on Monday", "next_action": ""})
    assert response.status_code == 303
    assert "обещал оплатить" in as_op1.get("/queues").text
    with db.sessions() as s:
        task = s.get_one(CallbackTask, card_task)
        assert (task.state, task.result) == ("done", "promise")
        promise = s.scalars(select(Promise)).one()
        assert (promise.source, promise.promised_date) == ("operator", dt.date(2025, 11, 24))
        assert s.get_one(DebtCase, task.debt_case_id).state == "promised"


@pytest.mark.parametrize(("date", "message"), [("2025-11-18", "уже прошла"), ("2025-02-30", "не дата"),
                                               ("2026-01-15", "слишком далеко"), ("", "укажите дату")])
def test_bad_promise_shows_error_and_keeps_input(db: Database, as_op1: Browser, card_task: int, date: str,
                                                 message: str) -> None:
    _claim(as_op1, card_task)
    response = as_op1.post(f"/tasks/{card_task}/result", {"kind": "promise", "promise_date": date,
                                                           "note": "keep this note"})
    assert response.status_code == 400
    assert message in response.text
    assert "keep this note" in response.text
    with db.sessions() as s:
        assert s.get_one(CallbackTask, card_task).state == "claimed"
        assert s.scalar(select(Promise.id)) is None


def test_record_refused_resolved(db: Database, as_op1: Browser, card_task: int) -> None:
    _claim(as_op1, card_task)
    as_op1.post(f"/tasks/{card_task}/result", {"kind": "refused", "note": "will switch provider",
                                                "next_action": "retention offer"})
    with db.sessions() as s:
        task = s.get_one(CallbackTask, card_task)
        assert (task.state, task.result, task.next_action) == ("done", "refused", "retention offer")
        assert "will switch provider" in task.result_note


def test_record_unreachable_requeues_later(db: Database, as_op1: Browser, card_task: int) -> None:
    _claim(as_op1, card_task)
    as_op1.post(f"/tasks/{card_task}/result", {"kind": "unreachable", "retry_minutes": "60"})
    with db.sessions() as s:
        task = s.get_one(CallbackTask, card_task)
        assert (task.state, task.claimed_by, task.due_at) == ("open", None, dt.datetime(2025, 11, 19, 11, 0))
    assert _take(as_op1) is None  # not due for another hour


def test_record_wrong_number(db: Database, as_op1: Browser, card_task: int) -> None:
    _claim(as_op1, card_task)
    with db.sessions() as s:
        phone_id = s.get_one(CallAttempt, s.get_one(CallbackTask, card_task).attempt_id).phone_number_id
    as_op1.post(f"/tasks/{card_task}/result", {"kind": "wrong_number", "phone_id": str(phone_id)})
    with db.sessions() as s:
        assert s.get_one(PhoneNumber, phone_id).status == "wrong_party"
        assert s.get_one(CallbackTask, card_task).result == "wrong_number"
    assert "чужой номер" in as_op1.get(f"/tasks/{card_task}").text


def test_result_needs_own_claim(as_op1: Browser, as_op2: Browser, card_task: int) -> None:
    _claim(as_op1, card_task)
    response = as_op2.post(f"/tasks/{card_task}/result", {"kind": "resolved"})
    assert response.status_code == 400
    assert "не за вами" in response.text


def test_idle_claim_returns_over_http(db: Database, as_op1: Browser, as_op2: Browser, card_task: int,
                                      clock: Any) -> None:
    _claim(as_op1, card_task)
    clock.advance(dt.timedelta(minutes=31))
    assert _take(as_op2) == card_task
    with db.sessions() as s:
        assert s.get_one(CallbackTask, card_task).claimed_by is not None


def test_operator_sees_only_own_queues(db: Database, browser: Any, users: dict[str, int], card_task: int) -> None:
    from .conftest import add_user

    add_user(db, "biller", "operator", queues=["billing"])
    b: Browser = browser("biller")
    assert b.get(f"/tasks/{card_task}").status_code == 403  # the card_task is in "quality"
    assert _take(b) is None


def test_click_to_call(db: Database, make_app: Any, users: dict[str, int], card_task: int, browser: Any) -> None:
    from starlette.testclient import TestClient

    fake = FakeClickToCall()
    b = Browser(TestClient(make_app(click_to_call=fake)))
    b.login("op1")
    page = b.get(f"/tasks/{card_task}").text
    assert "Asterisk не подключён" not in page
    _claim(b, card_task)
    with db.sessions() as s:
        phone = s.scalars(select(PhoneNumber).order_by(PhoneNumber.priority)).all()[0]
    response = b.post(f"/tasks/{card_task}/call", {"phone_id": str(phone.id)})
    assert response.status_code == 303
    assert fake.calls == [{"operator_phone": "PJSIP/101", "subscriber_phone": "+79161234567",
                           "task_id": card_task, "account_id": phone.account_id}]
    assert "Звоним на ваш телефон PJSIP/101" in b.get(f"/tasks/{card_task}").text


def test_click_to_call_without_asterisk(as_op1: Browser, card_task: int, db: Database) -> None:
    _claim(as_op1, card_task)
    page = as_op1.get(f"/tasks/{card_task}").text
    assert "Asterisk не подключён" in page
    assert re.search(r'<button type="submit" class="call" disabled>', page)
    with db.sessions() as s:
        phone_id = s.scalars(select(PhoneNumber.id)).first()
    as_op1.post(f"/tasks/{card_task}/call", {"phone_id": str(phone_id)})
    assert "Asterisk не подключён" in as_op1.get(f"/tasks/{card_task}").text


class FakeAmi:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[Any] = []
        self.fail = fail

    async def originate(self, request: Any) -> None:
        from ivr.ami.client import AMIError

        if self.fail:
            raise AMIError("Originate failed", action="Originate")
        self.sent.append(request)


async def test_ami_click_to_call_originates_and_records(db: Database, settings: Any, card_task: int,
                                                        clock: Any) -> None:
    ami = FakeAmi()
    c2c = AmiClickToCall(ami, settings, sessions=db.sessions, clock=clock)
    with db.sessions() as s:
        task = s.get_one(CallbackTask, card_task)
        account_id = task.account_id
    action_id = await c2c.call(operator_phone="PJSIP/101", subscriber_phone="+79161234567", task_id=card_task,
                               account_id=account_id)
    [request] = ami.sent
    assert request.action_id == action_id
    assert request.channel == "PJSIP/101"
    assert request.context == dialplan_vars.CONTEXT_OPERATOR
    assert request.exten == "79161234567"
    assert dict(request.variables) == {dialplan_vars.OPERATOR_TARGET: "79161234567",
                                       dialplan_vars.CALL_ID: action_id}
    with db.sessions() as s:
        attempt = s.scalars(select(CallAttempt).where(CallAttempt.action_id == action_id)).one()
        assert (attempt.purpose, attempt.state, attempt.phone) == ("operator", "dialing", "+79161234567")
        assert attempt.phone_number_id is not None and attempt.debt_case_id is not None


async def test_ami_click_to_call_failure(db: Database, settings: Any, card_task: int, clock: Any) -> None:
    c2c = AmiClickToCall(FakeAmi(fail=True), settings, sessions=db.sessions, clock=clock)
    with pytest.raises(ClickToCallError, match="Originate failed"):
        await c2c.call(operator_phone="PJSIP/101", subscriber_phone="+79161234567", task_id=card_task, account_id=1)
    with db.sessions() as s:
        attempt = s.scalars(select(CallAttempt).where(CallAttempt.purpose == "operator")).one()
        assert (attempt.state, attempt.result) == ("done", "failed")


def test_card_lists_earlier_tasks_and_promises(db: Database, as_op1: Browser) -> None:
    with db.sessions.begin() as s:
        a = make_account(s, "B-2")
        attempt = make_robot_call(s, a, reason_code="no_invoice")
        old = make_task(s, a, queue="billing", attempt=attempt, reason_code="no_invoice")
        old.state, old.result, old.result_note = "done", "resolved", "sent the invoice again"
        s.add(Promise(debt_case_id=a.cases[0].id, source="robot", promised_date=dt.date(2025, 11, 15),
                      status="broken"))
        new_id = make_task(s, a, queue="billing", attempt=attempt, reason_code="disputes_amount").id
    page = as_op1.get(f"/tasks/{new_id}").text
    assert "sent the invoice again" in page and "вопрос решён" in page
    assert "2025-11-15" in page and "нарушено" in page
