import datetime as dt
from decimal import Decimal

from sqlalchemy import func, select

from ivr.db.models import Account, ContactLimit, DebtCase, LadderStage, PhoneNumber, Reason, Setting
from ivr.db.options import get_option, get_options, set_option
from ivr.db.seed import seed


def test_seed_loads_defaults_once_and_keeps_admin_edits(any_db):
    with any_db.sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(Reason)) == 8
        assert [(st.code, st.position, st.active) for st in s.scalars(select(LadderStage).order_by(LadderStage.position))] == [
            ("before_due", 0, False), ("reminder", 1, True), ("firm", 2, True), ("final_warning", 3, True),
            ("blocked", 4, True)]
        forgot = s.scalar(select(Reason).where(Reason.code == "forgot"))
        assert forgot.actionable is False and forgot.incentive_allowed is False
        forgot.norm_pct = Decimal("40")
        set_option(s, "max_menu_tries", 5)
    with any_db.sessions.begin() as s:
        created = seed(s)
        assert not any(created.values())
        assert s.scalar(select(Reason.norm_pct).where(Reason.code == "forgot")) == Decimal("40")
        assert get_option(s, "max_menu_tries") == 5
        assert get_options(s)["holiday_policy"] == "as_weekend"
        limits = {(c.period, c.counts): c.max_calls for c in s.scalars(select(ContactLimit))}
        assert limits[("day", "answered")] == 1


def test_models_round_trip(any_db):
    with any_db.sessions.begin() as s:
        acc = Account(external_id="A-1", holder_name="Иванов Иван", balance=Decimal("1800.50"),
                      due_date=dt.date(2026, 11, 10), block_date=dt.date(2026, 11, 25))
        acc.phones.append(PhoneNumber(number="+79161234567", priority=1))
        s.add(acc)
        s.flush()
        s.add(DebtCase(account_id=acc.id, opened_on=acc.due_date, amount_initial=acc.balance,
                       amount_owed=acc.balance))
    with any_db.sessions() as s:
        acc = s.scalar(select(Account).where(Account.external_id == "A-1"))
        assert acc.phones[0].number == "+79161234567"
        assert acc.cases[0].amount_owed == Decimal("1800.50")
        assert s.get(Setting, "holiday_policy").value == "as_weekend"
