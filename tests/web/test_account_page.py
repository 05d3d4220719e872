"""Finding a subscriber and the account page: search by account number, name and phone; the page's
history; phone edits, notes and holding the robot (which the dialer's selection respects)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from sqlalchemy import select

from ivr.db.models import (
    Account,
    AccountNote,
    BlockListEntry,
    DebtCase,
    OptOut,
    Payment,
    PhoneNumber,
    Promise,
)
from ivr.dialer.policy import load_rules
from ivr.dialer.selector import select_candidates
from ivr.web.account_view import hold_resume_at
from ivr.web.search import fold, phone_digits
from ivr.wiring import Database
from tests.web.conftest import NOW, Browser, make_account, make_robot_call, make_task


@pytest.fixture
def accounts(db: Database) -> dict[str, int]:
    with db.sessions.begin() as s:
        petrov = make_account(s, "A-1001")
        fyodor = make_account(s, "A-2002", holder="СЁМИН Фёдор", phones=("+79035550011",), with_case=False)
        other = make_account(s, "B-3003", holder="Иванова Анна", phones=("+74957770099",), with_case=False)
        return {"petrov": petrov.id, "semin": fyodor.id, "ivanova": other.id}


def _found(page: Any) -> set[str]:
    assert page.status_code == 200, page.text
    table = page.text.split('id="search-results"', 1)[1].split("</table>", 1)[0]
    return set(re.findall(r'<a href="/accounts/\d+">([A-Z]-\d+)</a>', table))


def test_phone_digits_reads_any_format() -> None:
    assert phone_digits("+7 916 123-45-67") == "79161234567"
    assert phone_digits("8 (916) 123 45 67") == "79161234567"
    assert phone_digits("4567") == "4567"
    assert phone_digits("Петров") is None
    assert phone_digits("12") is None
    assert fold("СЁМИН") == "семин"


@pytest.mark.parametrize(("query", "expected"), [
    ("A-1001", {"A-1001"}),
    ("A-", {"A-1001", "A-2002"}),
    ("петров", {"A-1001"}),
    ("ПЁТР", {"A-1001"}),
    ("петр петрович", {"A-1001"}),
    ("семин", {"A-2002"}),
    ("Фёдор", {"A-2002"}),
    ("федор", {"A-2002"}),
    ("+7 916 123-45-67", {"A-1001"}),
    ("89161234567", {"A-1001"}),
    ("9161234567", {"A-1001"}),
    ("4567", {"A-1001"}),
    ("(495) 777", {"B-3003"}),
    ("nobody", set()),
])
def test_search_finds_by_number_name_and_phone(as_op1: Browser, accounts: dict[str, int],
                                                query: str, expected: set[str]) -> None:
    assert _found(as_op1.get("/accounts", params={"q": query})) == expected


def test_search_pages(as_op1: Browser, db: Database) -> None:
    with db.sessions.begin() as s:
        for i in range(45):
            make_account(s, f"P-{i:03d}", holder=f"Пагинов {i}", phones=(f"+7916000{i:04d}",), with_case=False)
    first = _found(as_op1.get("/accounts", params={"q": "пагинов"}))
    third = as_op1.get("/accounts", params={"q": "пагинов", "page": "3"})
    assert len(first) == 20 and 'rel="next"' in as_op1.get("/accounts", params={"q": "пагинов"}).text
    assert len(_found(third)) == 5 and 'rel="next"' not in third.text and 'rel="prev"' in third.text
    assert first.isdisjoint(_found(as_op1.get("/accounts", params={"q": "пагинов", "page": "2"})))


def test_search_box_on_every_page_and_only_for_operators(as_op1: Browser, as_admin: Browser,
                                                         browser: Any, users: dict[str, int]) -> None:
    assert 'id="find-form"' in as_op1.get("/queues").text
    assert 'id="find-form"' in as_admin.get("/admin").text
    boss = browser("boss")
    assert 'id="find-form"' not in boss.get("/reports").text
    assert boss.get("/accounts", params={"q": "A"}).status_code == 403


def test_account_page_shows_the_history(as_op1: Browser, db: Database, accounts: dict[str, int]) -> None:
    with db.sessions.begin() as s:
        account = s.get(Account, accounts["petrov"])
        assert account is not None
        attempt = make_robot_call(s, account)
        make_task(s, account, attempt=attempt)
        case_id = account.cases[0].id
        s.add(Promise(debt_case_id=case_id, promised_date=dt.date(2025, 11, 28), source="robot"))
        s.add(Payment(external_id="PAY-77", account_id=account.id, debt_case_id=case_id, amount=500, paid_on=dt.date(2025, 11, 12)))
        s.add(OptOut(phone="+74951234567", source="keypad"))
        s.add(BlockListEntry(account_id=account.id, debt_case_id=case_id, stage_code="block", amount_owed=1800))
    page = as_op1.get(f"/accounts/{accounts['petrov']}")
    assert page.status_code == 200
    html = page.text
    for section in ("cases", "attempts", "promises", "payments", "callbacks", "optouts", "blocks", "notes"):
        assert f'id="{section}"' in html
    assert "Петров Пётр Петрович" in html and "A-1001" in html
    steps = html.split('id="attempts"', 1)[1].split("</section>", 1)[0]
    assert re.search(r'class="keys">1<', steps) and re.search(r'class="keys">3<', steps)
    assert "2025-11-28" in html and "PAY-77" in html and "+7495*****67" in html
    assert "+79161234567" not in html  # numbers are masked
    assert as_op1.get("/accounts/999999").status_code == 404


def test_admin_may_search_and_edit(as_admin: Browser, accounts: dict[str, int]) -> None:
    page = as_admin.get("/accounts", params={"q": "сёмин"})
    assert _found(page) == {"A-2002"} and 'value="сёмин"' in page.text  # the header box keeps the query
    aid = accounts["semin"]
    assert as_admin.get(f"/accounts/{aid}").status_code == 200
    assert as_admin.post(f"/accounts/{aid}/notes", {"text": "проверено"}).status_code == 303


def _phones(db: Database, account_id: int) -> list[tuple[str, int, str]]:
    with db.sessions() as s:
        return [(p.number, p.priority, p.status) for p in s.scalars(
            select(PhoneNumber).where(PhoneNumber.account_id == account_id).order_by(PhoneNumber.priority))]


def test_phone_add_reorder_disable(as_op1: Browser, db: Database, accounts: dict[str, int]) -> None:
    aid = accounts["petrov"]
    assert as_op1.post(f"/accounts/{aid}/phones", {"number": "8 (912) 345-67-89"}).status_code == 303
    assert _phones(db, aid)[-1] == ("+79123456789", 3, "ok")
    again = as_op1.post(f"/accounts/{aid}/phones", {"number": "+7 912 345 67 89"})
    assert again.status_code == 400 and len(_phones(db, aid)) == 3
    assert as_op1.post(f"/accounts/{aid}/phones", {"number": "hello"}).status_code == 400
    with db.sessions() as s:
        new_id = s.scalar(select(PhoneNumber.id).where(PhoneNumber.number == "+79123456789"))
    as_op1.post(f"/accounts/{aid}/phones/{new_id}", {"action": "up"})
    assert [n for n, _, _ in _phones(db, aid)] == ["+79161234567", "+79123456789", "+74951234567"]
    as_op1.post(f"/accounts/{aid}/phones/{new_id}", {"action": "up"})
    assert [n for n, _, _ in _phones(db, aid)][0] == "+79123456789"
    assert as_op1.post(f"/accounts/{aid}/phones/{new_id}", {"action": "disable"}).status_code == 303
    assert ("+79123456789", 1, "disabled") in _phones(db, aid)
    as_op1.post(f"/accounts/{aid}/phones/{new_id}", {"action": "enable"})
    assert ("+79123456789", 1, "ok") in _phones(db, aid)
    # a number of another account is refused, nothing changes
    other = accounts["semin"]
    assert as_op1.post(f"/accounts/{other}/phones/{new_id}", {"action": "disable"}).status_code == 400
    assert ("+79123456789", 1, "ok") in _phones(db, aid)
    # without the CSRF token nothing changes
    as_op1.client.post(f"/accounts/{aid}/phones/{new_id}", data={"action": "disable"})
    assert ("+79123456789", 1, "ok") in _phones(db, aid)


def test_note(as_op1: Browser, db: Database, accounts: dict[str, int]) -> None:
    aid = accounts["petrov"]
    assert as_op1.post(f"/accounts/{aid}/notes", {"text": "Просил звонить после 18:00"}).status_code == 303
    assert as_op1.post(f"/accounts/{aid}/notes", {"text": "   "}).status_code == 400
    with db.sessions() as s:
        notes = [(n.author, n.text) for n in s.scalars(select(AccountNote).where(AccountNote.account_id == aid))]
    assert notes == [("op1", "Просил звонить после 18:00")]
    assert "Просил звонить после 18:00" in as_op1.get(f"/accounts/{aid}").text


def test_hold_resumes_at_local_midnight_after_the_date() -> None:
    # Yekaterinburg is UTC+5: local midnight starting 2025-11-26 is 2025-11-25 19:00 UTC
    assert hold_resume_at(dt.date(2025, 11, 25), "Asia/Yekaterinburg") == dt.datetime(2025, 11, 25, 19, 0)


def _selected(db: Database) -> set[int]:
    with db.sessions() as s:
        ids = {c.account_id for c in select_candidates(s, load_rules(s), NOW, 50)}
        s.rollback()  # selection may move next_attempt_at; the check must not change anything
    return ids


def test_hold_keeps_the_robot_away(as_op1: Browser, db: Database, accounts: dict[str, int]) -> None:
    aid = accounts["petrov"]
    assert aid in _selected(db)
    assert as_op1.post(f"/accounts/{aid}/hold", {"until": "2025-11-25", "why": ""}).status_code == 400
    assert as_op1.post(f"/accounts/{aid}/hold", {"until": "2025-11-01", "why": "x"}).status_code == 400
    assert as_op1.post(f"/accounts/{aid}/hold", {"until": "soon", "why": "x"}).status_code == 400
    assert aid in _selected(db)
    response = as_op1.post(f"/accounts/{aid}/hold", {"until": "2025-11-25", "why": "в больнице"})
    assert response.status_code == 303
    assert aid not in _selected(db)
    with db.sessions() as s:
        case = s.scalars(select(DebtCase).where(DebtCase.account_id == aid)).one()
        assert (case.next_attempt_at, case.wait_reason) == (dt.datetime(2025, 11, 25, 19, 0), "hold")
        note = s.scalars(select(AccountNote).where(AccountNote.account_id == aid)).one()
        assert note.author == "op1" and "2025-11-25" in note.text and "в больнице" in note.text
    # after the local midnight the case is due again
    with db.sessions() as s:
        later = {c.account_id for c in select_candidates(s, load_rules(s), dt.datetime(2025, 11, 26, 6, 0, tzinfo=dt.UTC), 50)}
        s.rollback()
    assert aid in later
