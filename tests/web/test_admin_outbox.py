"""The admin page of the push to billing: the event log, the state filter, resend with CSRF."""

from __future__ import annotations

from sqlalchemy import select, update

from ivr.db.models import OutboxEvent
from ivr.wiring import Database
from tests.web.conftest import Browser, make_account


def test_event_log_filter_and_resend(db: Database, as_admin: Browser, as_op1: Browser) -> None:
    with db.sessions.begin() as s:
        make_account(s, "A-77")
    # an admin's opt-out is a fact billing hears about: one event, written with the opt-out
    assert as_admin.post("/admin/optouts", {"external_id": "A-77", "note": "asked by letter"}).status_code == 303
    with db.sessions() as s:
        event = s.scalars(select(OutboxEvent)).one()
        assert (event.kind, event.account_external_id, event.seq, event.state) == ("opt_out", "A-77", 1, "pending")
        assert event.payload["source"] == "admin" and event.payload["note"] == "asked by letter"
    page = as_admin.get("/admin/outbox")
    assert page.status_code == 200 and "A-77" in page.text and "opt_out" in page.text
    assert "IVR_BILLING_PUSH_URL" in page.text  # no URL set: the page says nothing is sent
    assert "A-77" in as_admin.get("/admin/outbox?state=pending").text
    assert "A-77" not in as_admin.get("/admin/outbox?state=sent").text
    assert as_admin.get("/admin/outbox?state=bogus").status_code == 400

    with db.sessions.begin() as s:
        s.execute(update(OutboxEvent).values(state="failed", attempts=3, last_error="HTTP 400: bad account"))
    failed = as_admin.get("/admin/outbox?state=failed").text
    assert "HTTP 400: bad account" in failed
    no_csrf = as_admin.client.post(f"/admin/outbox/{event.id}/resend", data={}, follow_redirects=False)
    assert no_csrf.status_code in (400, 403)
    assert as_op1.post(f"/admin/outbox/{event.id}/resend").status_code in (302, 303, 403)
    with db.sessions() as s:
        assert s.get(OutboxEvent, event.id).state == "failed"  # neither request changed anything
    response = as_admin.post(f"/admin/outbox/{event.id}/resend", {"state": "failed"})
    assert response.status_code == 303 and response.headers["location"] == "/admin/outbox?state=failed"
    with db.sessions() as s:
        again = s.get(OutboxEvent, event.id)
        assert (again.state, again.attempts, again.idempotency_key) == ("pending", 0, event.idempotency_key)
    assert as_admin.post("/admin/outbox/999999/resend").status_code == 404
    assert as_op1.get("/admin/outbox", follow_redirects=False).status_code in (302, 303, 403)
