"""The operator's open-task list past 50 tasks: total and paging, filters, search, sort, and the
reason / amount / local time / call-allowed columns."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from ivr.db.models import DebtCase
from ivr.wiring import Database
from tests.web.conftest import Browser, make_account, make_task


def _ids(page: Any) -> list[int]:
    assert page.status_code == 200, page.text
    table = page.text.split('id="open-tasks"', 1)[1].split("</table>", 1)[0]
    return [int(x) for x in re.findall(r'<tr data-task="(\d+)">', table)]


def _total(page: Any) -> int:
    m = re.search(r'id="task-total">[^<]*?(\d+)', page.text)
    assert m, "no total on the page"
    return int(m.group(1))


@pytest.fixture
def many(db: Database) -> dict[str, Any]:
    """60 quality tasks (amounts 100..6000, raised one hour apart, the first 30 already due) and
    one billing task whose subscriber lives in New York (05:00 there: no calls)."""
    ids: dict[str, Any] = {"quality": []}
    with db.sessions.begin() as s:
        for i in range(60):
            account = make_account(s, f"Q-{i:03d}", holder=f"Клиентов Номер{i}", phones=(f"+7912000{i:04d}",),
                                   balance=f"{(i + 1) * 100}.00")
            due = dt.datetime(2025, 11, 19, 9, 0) + dt.timedelta(hours=i - 29)
            task = make_task(s, account, due=due)
            task.created_at = due
            ids["quality"].append(task.id)
        ny = make_account(s, "NY-1", holder="Смит Джон", phones=("+12125550123",), timezone="America/New_York",
                          balance="777.00")
        case = s.get(DebtCase, ny.cases[0].id)
        assert case is not None
        case.stage_code = "firm"
        ids["ny"] = make_task(s, ny, queue="billing", reason_code="no_invoice").id
    return ids


def test_total_and_paging_past_50(as_op1: Browser, many: dict[str, Any]) -> None:
    first = as_op1.get("/queues")
    assert _total(first) == 61 and len(_ids(first)) == 50
    second = as_op1.get("/queues", params={"page": "2"})
    assert len(_ids(second)) == 11
    assert set(_ids(first)).isdisjoint(_ids(second))
    assert set(_ids(first)) | set(_ids(second)) == {*many["quality"], many["ny"]}
    assert 'rel="next"' in first.text and 'rel="prev"' in second.text
    assert 'data-refresh="30"' in first.text
    # the pager keeps the filter and the sort
    filtered = as_op1.get("/queues", params={"queue": "quality", "sort": "amount"})
    assert 'href="/queues?queue=quality&amp;sort=amount&amp;page=2" rel="next"' in filtered.text


@pytest.mark.parametrize(("params", "expected"), [
    ({"queue": "billing"}, 1),
    ({"queue": "quality"}, 60),
    ({"reason": "no_invoice"}, 1),
    ({"stage": "firm"}, 1),
    ({"stage": "reminder", "amount_min": "1000", "amount_max": "1500,00"}, 6),
    ({"overdue": "1"}, 31),  # 30 quality tasks and the billing one are past due
    ({"age": "1d", "queue": "quality"}, 7),  # raised at 10:00 UTC the day before or earlier
    ({"q": "номер1"}, 11),  # Номер1, Номер10..19
    ({"q": "0012"}, 1),  # a phone fragment
    ({"q": "NY-1"}, 1),
    ({"amount_min": "много"}, 61),  # a malformed bound is ignored
])
def test_filters(as_op1: Browser, many: dict[str, Any], params: dict[str, str], expected: int) -> None:
    page = as_op1.get("/queues", params=params)
    assert _total(page) == expected
    assert len(_ids(page)) == min(expected, 50)


def test_sort_by_amount(as_op1: Browser, many: dict[str, Any]) -> None:
    biggest = _ids(as_op1.get("/queues", params={"sort": "amount_desc"}))
    assert biggest[:2] == [many["quality"][59], many["quality"][58]]
    smallest = _ids(as_op1.get("/queues", params={"sort": "amount"}))
    assert smallest[:2] == many["quality"][:2]
    latest = _ids(as_op1.get("/queues", params={"sort": "due_desc"}))
    assert latest[0] == many["quality"][59]


def test_operator_scope_is_kept(browser: Any, users: dict[str, int], db: Database, many: dict[str, Any]) -> None:
    from tests.web.conftest import add_user

    add_user(db, "billing_op", "operator", queues=["billing"])
    page = browser("billing_op").get("/queues", params={"queue": "quality"})
    assert _total(page) == 0


def test_columns_reason_amount_local_time(as_op1: Browser, many: dict[str, Any]) -> None:
    html = as_op1.get("/queues", params={"queue": "billing"}).text
    row = html.split(f'<tr data-task="{many["ny"]}">', 1)[1].split("</tr>", 1)[0]
    assert "777" in row and "America/New_York" in row and "05:00" in row
    assert "звонить нельзя" in row
    assert re.search(r"<td>[^<]*(счёт|квитанц)", row, re.I), row
    html = as_op1.get("/queues", params={"q": "Q-000"}).text
    row = html.split(f'<tr data-task="{many["quality"][0]}">', 1)[1].split("</tr>", 1)[0]
    assert "15:00" in row and "звонить можно" in row  # Yekaterinburg, Wednesday afternoon
