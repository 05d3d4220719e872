"""Every fact billing hears about writes its event in the fact's own transaction, through the
real code paths: the call script's recorder, the ladder, payments, the operator's task result."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ivr.billing.importer import import_accounts
from ivr.billing.payments import apply_payment
from ivr.call.recorder import CallRecorder
from ivr.clock import FixedClock
from ivr.config import Settings
from ivr.db.models import (
    BlockListEntry,
    CallAttempt,
    CallbackTask,
    DebtCase,
    OutboxEvent,
    Payment,
    Promise,
    User,
)
from ivr.dialer.ladder import add_to_block_list, advance_cases
from ivr.outbox import events
from ivr.web.tasks import ResultInput, record_result
from ivr.wiring import Database
from tests.dialer.conftest import add_case, make_rules

NOW = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)


def event_rows(sessions: sessionmaker[Session]) -> list[tuple[str, str, int]]:
    with sessions() as s:
        return [(e.kind, e.account_external_id, e.seq) for e in s.scalars(select(OutboxEvent).order_by(OutboxEvent.id))]


def event_rows_in(s: Session) -> list[str]:
    return [e.kind for e in s.scalars(select(OutboxEvent).order_by(OutboxEvent.id))]


def payload_of(sessions: sessionmaker[Session], kind: str) -> dict[str, object]:
    with sessions() as s:
        return dict(s.scalars(select(OutboxEvent).where(OutboxEvent.kind == kind)).one().payload)


def new_attempt(sessions: sessionmaker[Session]) -> tuple[int, int, str]:
    with sessions.begin() as s:
        case = add_case(s)
        attempt = CallAttempt(debt_case_id=case.id, account_id=case.account_id, phone="+79160000001",
                              stage_code="reminder", action_id=f"call-{case.id}", state="answered")
        s.add(attempt)
        s.flush()
        return case.id, case.account_id, case.account.external_id


async def test_a_call_records_its_promise_and_then_its_final_outcome(db: Database) -> None:
    case_id, _acc, ext = new_attempt(db.sessions)
    recorder = CallRecorder(db.sessions, FixedClock(NOW))
    info = await recorder.load(f"call-{case_id}")
    assert info is not None
    await recorder.answered(info, None)
    await recorder.identity(info, True)
    await recorder.promise(info, dt.date(2026, 3, 15))
    await recorder.writer.aflush()  # the promise is committed by the writer's next group
    assert event_rows(db.sessions) == [("promise.made", ext, 1)]  # no outcome while the call runs
    await recorder.finish(info, "hangup")
    await recorder.finish(info, "hangup")  # a repeat records nothing new
    assert event_rows(db.sessions) == [("promise.made", ext, 1), ("call.outcome", ext, 2)]
    outcome = payload_of(db.sessions, "call.outcome")
    assert outcome["outcome"] == "promise" and outcome["promise_date"] == "2026-03-15"
    assert outcome["identity"] == "confirmed" and outcome["call_id"] == f"call-{case_id}"
    assert outcome["result"] == "answered" and outcome["case_id"] == case_id
    made = payload_of(db.sessions, "promise.made")
    assert made["promised_date"] == "2026-03-15" and made["amount"] == "1500.00" and made["source"] == "robot"
    recorder.close()


async def test_a_keypad_opt_out_is_recorded(db: Database) -> None:
    case_id, _acc, ext = new_attempt(db.sessions)
    recorder = CallRecorder(db.sessions, FixedClock(NOW))
    info = await recorder.load(f"call-{case_id}")
    assert info is not None
    await recorder.answered(info, None)
    await recorder.opt_out(info)
    await recorder.finish(info, "hangup")
    assert event_rows(db.sessions) == [("opt_out", ext, 1), ("call.outcome", ext, 2)]
    assert payload_of(db.sessions, "opt_out")["source"] == "keypad"
    assert payload_of(db.sessions, "call.outcome")["opted_out"] is True
    recorder.close()


def test_block_list_added_once_and_re_added_after_removal(db: Database) -> None:
    with db.sessions.begin() as s:
        case = add_case(s)
        case_id, account_id, ext = case.id, case.account_id, case.account.external_id
    with db.sessions.begin() as s:
        add_to_block_list(s, account_id, case_id, "block", NOW)
    with db.sessions.begin() as s:
        add_to_block_list(s, account_id, case_id, "block", NOW + dt.timedelta(hours=1))  # already on it
    assert event_rows(db.sessions) == [("block_list.added", ext, 1)]
    with db.sessions.begin() as s:  # billing lifted the restriction
        s.execute(update(BlockListEntry).values(removed_at=NOW.replace(tzinfo=None) + dt.timedelta(days=1)))
    with db.sessions.begin() as s:
        add_to_block_list(s, account_id, case_id, "block", NOW + dt.timedelta(days=2))
    assert event_rows(db.sessions) == [("block_list.added", ext, 1), ("block_list.added", ext, 2)]


def test_a_rolled_back_fact_leaves_no_event(db: Database) -> None:
    with db.sessions.begin() as s:
        case = add_case(s)
        case_id, account_id = case.id, case.account_id
    with pytest.raises(RuntimeError), db.sessions.begin() as s:
        # as the ladder does it: the case changes, the account goes on the block list, and the
        # event is written; then the process dies before COMMIT
        s.execute(update(DebtCase).where(DebtCase.id == case_id).values(state="blocked"))
        add_to_block_list(s, account_id, case_id, "block", NOW)
        assert event_rows_in(s) == ["block_list.added"]
        raise RuntimeError("crash before commit")
    with db.sessions() as s:
        assert s.scalars(select(BlockListEntry)).all() == []
        assert s.get(DebtCase, case_id).state == "active"
    assert event_rows(db.sessions) == []


def test_ladder_breaks_a_promise_and_a_payment_keeps_one(db: Database) -> None:
    with db.sessions.begin() as s:
        late = add_case(s, state="promised")
        paid = add_case(s, state="promised")
        for case in (late, paid):
            s.add(Promise(debt_case_id=case.id, promised_date=dt.date(2026, 3, 5), amount=Decimal("1500.00"),
                          status="pending", created_at=dt.datetime(2026, 3, 1)))
        late_ext, paid_id, paid_ext, paid_acc = late.account.external_id, paid.id, paid.account.external_id, paid.account_id
    with db.sessions.begin() as s:  # the payment arrives before the promised date has passed there
        payment = Payment(external_id="P-1", account_id=paid_acc, amount=Decimal("1500.00"), paid_on=dt.date(2026, 3, 4))
        s.add(payment)
        s.flush()
        apply_payment(s, payment, now=NOW)
    with db.sessions.begin() as s:
        advance_cases(s, make_rules(), NOW)
    rows = event_rows(db.sessions)
    assert ("promise.kept", paid_ext, 1) in rows and ("promise.broken", late_ext, 1) in rows
    assert len(rows) == 2
    kept = payload_of(db.sessions, "promise.kept")
    assert kept["case_id"] == paid_id and kept["status"] == "kept" and kept["case_state"] == "paid"


def test_a_finished_callback_task_is_recorded(db: Database) -> None:
    with db.sessions.begin() as s:
        case = add_case(s)
        user = User(username="op1", password_hash="x", role="operator")
        s.add(user)
        s.flush()
        task = CallbackTask(account_id=case.account_id, debt_case_id=case.id, queue="billing", state="claimed",
                            claimed_by=user.id)
        s.add(task)
        s.flush()
        task_id, ext = task.id, case.account.external_id
    with db.sessions.begin() as s:
        user = s.scalars(select(User).where(User.username == "op1")).one()
        record_result(s, task_id, user, ResultInput(kind="promise", promise_date=dt.date(2026, 3, 12),
                                                    next_action="check on the 13th"), NOW, dt.date(2026, 3, 10))
    assert event_rows(db.sessions) == [("promise.made", ext, 1), ("callback.done", ext, 2)]
    done = payload_of(db.sessions, "callback.done")
    assert done["result"] == "promise" and done["operator"] == "op1" and done["promise_date"] == "2026-03-12"
    assert payload_of(db.sessions, "promise.made")["source"] == "operator"


def test_unknown_kind_is_refused(db: Database) -> None:
    with db.sessions.begin() as s, pytest.raises(ValueError):
        events.record(s, "payment.received", 1, {}, NOW, key="x")


IMPORT_HEADER = "Лицевой счёт;ФИО;Телефон;Сумма долга;Валюта;Дата платежа;Дата блокировки;Часовой пояс;Язык;Услуга;Тариф"


@pytest.mark.postgres
def test_an_import_that_pays_off_a_case_records_its_kept_promise(any_db: Database) -> None:
    settings = Settings(default_region="RU", default_language="ru", default_currency="RUB",
                        default_timezone="Europe/Moscow")
    today = dt.date(2026, 11, 20)

    def run(balance: str, now: dt.datetime) -> None:
        text = f"{IMPORT_HEADER}\n2001;Иванов Иван;89161234567;{balance};RUB;10.11.2026;;;;;\n"
        report = import_accounts(any_db.sessions, io.BytesIO(text.encode("cp1251")), settings=settings,
                                 today=today, now=now, filename="b.csv")
        assert report.errors == []

    run("1 800,00", NOW)
    with any_db.sessions.begin() as s:
        case = s.scalars(select(DebtCase)).one()
        s.add(Promise(debt_case_id=case.id, promised_date=today + dt.timedelta(days=2), amount=Decimal("1800.00"),
                      status="pending", created_at=dt.datetime(2026, 11, 19)))
    run("0,00", NOW + dt.timedelta(days=1))
    run("0,00", NOW + dt.timedelta(days=2))  # nothing new happened: no new event
    assert event_rows(any_db.sessions) == [("promise.kept", "2001", 1)]
    kept = payload_of(any_db.sessions, "promise.kept")
    assert kept["status"] == "kept" and kept["case_state"] == "paid" and kept["amount"] == "1800.00"


@pytest.mark.postgres
def test_concurrent_facts_of_one_account_get_gap_free_sequence_numbers(any_db: Database) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with any_db.sessions.begin() as s:
        account_id = add_case(s).account_id

    def fact(i: int) -> bool:
        with any_db.sessions.begin() as s:
            return events.record(s, events.OPT_OUT, account_id, {"i": i}, NOW, key=f"race:{i}")

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert all(pool.map(fact, range(30)))
    with any_db.sessions() as s:
        seqs = sorted(s.scalars(select(OutboxEvent.seq)))
    assert seqs == list(range(1, 31))
