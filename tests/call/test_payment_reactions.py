"""Issue 16 end to end: the before-due stage and the thank-you call, each selected and claimed
by the dialer's own functions, played by the simulated Asterisk over real FastAGI against the
real call script, then settled from Asterisk's Hangup event as the dialer does. Each test checks
the words said (the rendered text of the files played) and what is stored."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select, update

from ivr.billing.importer import import_payments
from ivr.db.models import (
    Account,
    CallAttempt,
    CallStep,
    DebtCase,
    LadderStage,
    Outcome,
    PhoneNumber,
    ThankYouCall,
)
from ivr.db.options import set_option
from ivr.dialer import attempts as attempts_mod
from ivr.dialer.claims import claim, mark_dialing, mark_originating
from ivr.dialer.policy import load_rules
from ivr.dialer.selector import select_candidates
from ivr.dialer.staging import restage_waiting
from ivr.dialer.thanks_store import select_thanks
from ivr.sim.scenario import Callee, KeyPress
from tests.call.rig import NOW, CallRig

FORBIDDEN_RU = ("долг", "задолж", "приостан", "огранич", "отключ", "блокир", "не поступ")


def presses(*keys: str) -> Callee:
    return Callee(answer_after=1.0, keys=[KeyPress(k, delay=0.6) for k in keys])


def said(rig: CallRig, attempt_id: int) -> list[str]:
    """The texts of the phrases the call played, in order (from the STREAM FILE commands)."""
    with rig.db.sessions() as s:
        action_id = s.get(CallAttempt, attempt_id).action_id  # type: ignore[union-attr]
    record = next(c for c in rig.sim.calls if c.call_id == action_id)
    by_file = {}
    for name, path in rig.last_files.items():
        if name != "debt_message":
            by_file.setdefault(path, rig.last_texts.get(name, name))
    out = []
    for command in record.commands:
        if command.startswith(("STREAM FILE", "GET DATA")):
            target = command.split()[2]
            out.append(by_file.get(target, target))
    return out


def claim_and_send(rig: CallRig, candidate, now: dt.datetime) -> int:  # type: ignore[no-untyped-def]
    with rig.db.sessions() as s:
        rules = load_rules(s, rig.settings.default_timezone)
        attempt = claim(s, candidate, "test-dialer", now, rules=rules, server="sim")
        assert attempt is not None
        attempt_id = attempt.id
    with rig.db.sessions() as s:
        assert mark_originating(s, attempt_id, now)
    with rig.db.sessions() as s:
        mark_dialing(s, attempt_id)
    return attempt_id


def hangup_event(rig: CallRig, attempt_id: int, now: dt.datetime) -> None:
    """What the dialer does with Asterisk's Hangup event of the call."""
    with rig.db.sessions() as s:
        action_id = s.get(CallAttempt, attempt_id).action_id  # type: ignore[union-attr]
        rules = load_rules(s, rig.settings.default_timezone)
    attempts_mod.on_call_ended(rig.db.sessions, rig.ended[action_id], now, rules)


def make_account(rig: CallRig, *, due: dt.date, stage: str | None, keep_price: dt.date | None = None,
                 number: str = "+79161230016") -> tuple[int, int]:
    with rig.db.sessions.begin() as s:
        acc = Account(external_id=f"A-{uuid.uuid4().hex[:8]}", holder_name="Иванов Иван Иванович",
                      service_name="охранная сигнализация", balance=Decimal("1800.50"), currency="RUB",
                      due_date=due, block_date=due + dt.timedelta(days=15), keep_price_until=keep_price,
                      timezone="Europe/Moscow", language="ru")
        acc.phones.append(PhoneNumber(number=number, priority=1))
        s.add(acc)
        s.flush()
        case = DebtCase(account_id=acc.id, opened_on=due, amount_initial=acc.balance, amount_owed=acc.balance,
                        stage_code=stage)
        s.add(case)
        s.flush()
        return acc.id, case.id


# -- before the due date -------------------------------------------------------------------------

async def test_before_due_stage_calls_with_its_own_words(rig: CallRig) -> None:
    today = NOW.date()  # Sunday 22 November 2026, 11:00 in Moscow
    due = today + dt.timedelta(days=3)
    _acc, case_id = make_account(rig, due=due, stage=None, keep_price=due)
    with rig.db.sessions() as s:  # off as shipped: nobody is called three days early
        assert select_candidates(s, load_rules(s), NOW, 10) == []
        s.commit()
    with rig.db.sessions() as s:  # it waits for the first debt stage, the day after the due date
        case = s.get(DebtCase, case_id)
        assert (case.stage_code, case.wait_reason) == (None, "waiting_stage")  # type: ignore[union-attr]
        assert case.next_attempt_at == dt.datetime(2026, 11, 25, 21, 0)  # type: ignore[union-attr]
    with rig.db.sessions.begin() as s:  # the admin enables the shipped before-due stage (as the ladder page saves)
        s.execute(update(LadderStage).where(LadderStage.code == "before_due").values(active=True))
        assert restage_waiting(s) == 1
    with rig.db.sessions() as s:
        found = select_candidates(s, load_rules(s), NOW, 10)
        s.commit()
    assert [(c.case_id, c.stage_code, c.purpose) for c in found] == [(case_id, "before_due", "robot")]

    attempt_id = claim_and_send(rig, found[0], NOW)
    await rig.place(attempt_id, presses("1", "2"))  # it is me; "already paid"
    hangup_event(rig, attempt_id, NOW)

    message = rig.last_texts["debt_message"]
    assert message == ("Напоминаем: двадцать пятого ноября наступает срок оплаты услуги «охранная сигнализация». "
                       "Сумма к оплате — одна тысяча восемьсот рублей пятьдесят копеек. "
                       "Оплатите до двадцать пятого ноября, чтобы сохранить цену этого месяца.")
    words = said(rig, attempt_id)
    assert words.index(message) > words.index(rig.last_texts["identity"])  # only after "it is me"
    assert not any(stem in message.lower() for stem in FORBIDDEN_RU)
    with rig.db.sessions() as s:
        attempt = s.get(CallAttempt, attempt_id)
        outcome = s.scalar(select(Outcome).where(Outcome.attempt_id == attempt_id))
        case = s.get(DebtCase, case_id)
        assert attempt.stage_code == "before_due" and attempt.result == "answered"  # type: ignore[union-attr]
        assert outcome.identity == "confirmed" and outcome.message_delivered and outcome.kind == "paid_claim"  # type: ignore[union-attr]
        assert case.stage_code == "before_due" and case.attempts_in_stage == 1  # type: ignore[union-attr]


# -- thank you -----------------------------------------------------------------------------------

def import_payment(rig: CallRig, tmp_path: Path, account_id: int, *, now: dt.datetime) -> int:
    with rig.db.sessions() as s:
        external = s.get(Account, account_id).external_id  # type: ignore[union-attr]
    path = tmp_path / f"pay-{uuid.uuid4().hex[:6]}.csv"
    path.write_text(f"Номер платежа;Лицевой счёт;Сумма;Дата платежа\nP-{external};{external};1800,50;"
                    f"{now:%d.%m.%Y}\n", encoding="utf-8")
    report = import_payments(rig.db.sessions, path, settings=rig.settings, now=now.replace(tzinfo=None),
                             today=now.date())
    assert report.created == 1 and report.cases_closed == 1
    return report.thanks_recorded


async def robot_call_then_payment(rig: CallRig, tmp_path: Path, *, enabled: bool) -> tuple[int, int]:
    """A debt call the subscriber answers (identity confirmed, promises the 25th), then the
    payment for the whole amount arrives in the afternoon's import."""
    acc_id, case_id = make_account(rig, due=dt.date(2026, 11, 10), stage="reminder")
    with rig.db.sessions.begin() as s:
        set_option(s, "thank_you_calls", enabled)
    attempt_id = await rig.call(presses("1", "1", "2511", "1"), account=(acc_id, case_id, _phone_id(rig, acc_id)))
    with rig.db.sessions.begin() as s:  # the rig writes the attempt at the wall clock's time
        s.execute(update(CallAttempt).where(CallAttempt.id == attempt_id)
                  .values(created_at=NOW.replace(tzinfo=None), originated_at=NOW.replace(tzinfo=None),
                          state="done"))
    assert import_payment(rig, tmp_path, acc_id, now=NOW + dt.timedelta(hours=3)) == 1
    return acc_id, case_id


def _phone_id(rig: CallRig, account_id: int) -> int:
    with rig.db.sessions() as s:
        return s.scalar(select(PhoneNumber.id).where(PhoneNumber.account_id == account_id))  # type: ignore[return-value]


def pick_thanks(rig: CallRig, now: dt.datetime):  # type: ignore[no-untyped-def]
    with rig.db.sessions() as s:
        found = select_thanks(s, load_rules(s, rig.settings.default_timezone), now, 10)
        s.commit()
    return found


async def test_thank_you_after_a_payment_that_followed_a_robot_call(rig: CallRig, tmp_path: Path) -> None:
    acc_id, case_id = await robot_call_then_payment(rig, tmp_path, enabled=True)
    with rig.db.sessions() as s:
        row = s.scalar(select(ThankYouCall).where(ThankYouCall.debt_case_id == case_id))
        assert (row.state, row.trigger, row.attempts) == ("pending", "promise", 0)  # type: ignore[union-attr]
        assert s.get(DebtCase, case_id).state == "paid"  # type: ignore[union-attr]
    # the same day: the person was reached today already (1 answered call a day) -> waits
    later = NOW + dt.timedelta(hours=5)
    assert pick_thanks(rig, later) == []
    with rig.db.sessions() as s:
        waits = s.scalar(select(ThankYouCall.due_at).where(ThankYouCall.debt_case_id == case_id))
    # 1 answered call a day, in both readings (ivr.dialer.limits): 24 hours after Sunday's call
    assert waits == dt.datetime(2026, 11, 23, 8, 0)
    # Monday 07:00 UTC (10:00 in Moscow, window open): not yet, the daily limit still holds it
    assert pick_thanks(rig, dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)) == []
    monday = dt.datetime(2026, 11, 23, 8, 30, tzinfo=dt.UTC)  # 11:30 in Moscow
    found = pick_thanks(rig, monday)
    assert [(c.case_id, c.stage_code, c.purpose) for c in found] == [(case_id, "thanks", "thanks")]

    rig.clock.advance(monday - NOW)
    attempt_id = claim_and_send(rig, found[0], monday)
    await rig.place(attempt_id, presses("1"))
    hangup_event(rig, attempt_id, monday)

    thanks = rig.last_texts["debt_message"]
    assert thanks == "Спасибо! Мы получили вашу оплату за услугу «охранная сигнализация». Хорошего дня, до свидания!"
    words = said(rig, attempt_id)
    greeting, identity = rig.last_texts["greeting"], rig.last_texts["identity"]
    assert "Охрана-Сервис" in greeting  # says who is calling
    assert words == [greeting, identity, thanks]  # no menu, nothing else
    with rig.db.sessions() as s:
        attempt = s.get(CallAttempt, attempt_id)
        outcome = s.scalar(select(Outcome).where(Outcome.attempt_id == attempt_id))
        row = s.scalar(select(ThankYouCall).where(ThankYouCall.debt_case_id == case_id))
        steps = [st.step for st in s.scalars(select(CallStep).where(CallStep.attempt_id == attempt_id).order_by(CallStep.seq))]
        assert (attempt.purpose, attempt.stage_code, attempt.result) == ("thanks", "thanks", "answered")  # type: ignore[union-attr]
        assert (outcome.identity, outcome.kind, outcome.message_delivered) == ("confirmed", "thanked", True)  # type: ignore[union-attr]
        assert steps == ["greet", "identity", "thank_you"]
        assert (row.state, row.attempts, row.last_attempt_id, row.result) == ("done", 1, attempt_id, "answered")  # type: ignore[union-attr]
        case = s.get(DebtCase, case_id)
        assert case.state == "paid" and case.amount_owed == 0  # type: ignore[union-attr]
        assert s.get(Account, acc_id).dial_lock_owner is None  # type: ignore[union-attr]
    assert pick_thanks(rig, monday + dt.timedelta(hours=6)) == []  # once


async def test_thank_you_says_nothing_to_someone_else(rig: CallRig, tmp_path: Path) -> None:
    _acc, case_id = await robot_call_then_payment(rig, tmp_path, enabled=True)
    monday = dt.datetime(2026, 11, 23, 8, 30, tzinfo=dt.UTC)
    rig.clock.advance(monday - NOW)
    (candidate,) = pick_thanks(rig, monday)
    attempt_id = claim_and_send(rig, candidate, monday)
    await rig.place(attempt_id, presses("2"))  # "not me"
    hangup_event(rig, attempt_id, monday)
    words = said(rig, attempt_id)
    assert words == [rig.last_texts["greeting"], rig.last_texts["identity"], rig.last_texts["wrong_party"]]
    assert not any("оплат" in w.lower() for w in words)
    with rig.db.sessions() as s:
        outcome = s.scalar(select(Outcome).where(Outcome.attempt_id == attempt_id))
        row = s.scalar(select(ThankYouCall).where(ThankYouCall.debt_case_id == case_id))
        phone = s.get(PhoneNumber, candidate.phone_id)
        assert (outcome.identity, outcome.kind, outcome.message_delivered) == ("denied", "wrong_party", False)  # type: ignore[union-attr]
        assert phone.status == "wrong_party"  # type: ignore[union-attr]
        assert row.state == "done" and row.result == "wrong_party"  # type: ignore[union-attr]


async def test_thank_you_calls_off_records_the_case_and_calls_nobody(rig: CallRig, tmp_path: Path) -> None:
    _acc, case_id = await robot_call_then_payment(rig, tmp_path, enabled=False)
    with rig.db.sessions() as s:
        assert s.scalar(select(ThankYouCall.state).where(ThankYouCall.debt_case_id == case_id)) == "off"
    assert pick_thanks(rig, dt.datetime(2026, 11, 23, 8, 30, tzinfo=dt.UTC)) == []
