"""Issue 16 in the admin: the shipped before-due stage is enabled like any stage, thank-you calls
are switched on and off on the ladder page, and "thanks" is not a stage code an admin may take."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ivr.db.models import DebtCase, LadderStage
from ivr.db.options import get_option
from ivr.wiring import Database

from .conftest import Browser, make_account


def test_thank_you_switch_and_before_due_hint(db: Database, as_admin: Browser) -> None:
    page = as_admin.get("/admin/ladder")
    assert page.status_code == 200
    assert "Звонок-благодарность после оплаты" in page.text
    assert "Этапы до срока оплаты" in page.text and "before_due" in page.text
    assert 'name="thank_you_calls" value="on">' in page.text  # shipped off: not checked
    assert as_admin.post("/admin/ladder/thanks", {"thank_you_calls": "on"}).status_code == 303
    with db.sessions() as s:
        assert get_option(s, "thank_you_calls") is True
    assert 'name="thank_you_calls" value="on" checked>' in as_admin.get("/admin/ladder").text
    assert as_admin.post("/admin/ladder/thanks", {}).status_code == 303
    with db.sessions() as s:
        assert get_option(s, "thank_you_calls") is False


def test_before_due_stage_enabled_at_position_zero_and_thanks_code_reserved(db: Database, as_admin: Browser) -> None:
    with db.sessions() as s:
        stage = s.scalars(select(LadderStage).where(LadderStage.code == "before_due")).one()
        assert (stage.active, stage.position, stage.start_day, stage.prompt) == (False, 0, -3, "before_due")
        sid = stage.id
    form = {"code": "before_due", "position": "0", "name": "Reminder before the due date", "anchor": "due",
            "start_day": "-3", "prompt": "before_due", "window_profile": "default", "required_hour": "",
            "max_attempts": "2", "retry_minutes": "240", "on_enter": "", "on_end": "next", "active": "on"}
    with db.sessions.begin() as s:  # a case dated by the old ladder: waits for the first debt stage
        acc = make_account(s, with_case=False)
        s.add(DebtCase(account_id=acc.id, opened_on=dt.date(2025, 11, 25), amount_initial=1, amount_owed=1,
                       state="active", next_attempt_at=dt.datetime(2025, 11, 25, 21, 0), wait_reason="waiting_stage"))
        busy = make_account(s, "A-1002")  # its case waits for a retry: left alone
    assert as_admin.post(f"/admin/ladder/{sid}", form).status_code == 303
    with db.sessions() as s:
        assert s.get_one(LadderStage, sid).active is True
        waiting = s.scalars(select(DebtCase).where(DebtCase.account_id == acc.id)).one()
        assert (waiting.next_attempt_at, waiting.wait_reason) == (None, None)  # re-dated by the next pass
        other = s.scalars(select(DebtCase).where(DebtCase.account_id == busy.id)).one()
        assert other.next_attempt_at == dt.datetime(2025, 11, 19, 6, 0)
    taken = as_admin.post("/admin/ladder/new", {**form, "code": "thanks", "position": "9"})
    assert taken.status_code == 400 and "код «thanks» уже занят" in taken.text
