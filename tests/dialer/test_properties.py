"""Property tests over random populations and random times.

The oracle below is written independently of the dialer's code (direct local-time arithmetic
with zoneinfo and the holidays package), so a selection bug is not mirrored by the check. The one
exception is the escalation ladder's decision for today, which the selector applies to every due
case before checking it: the oracle takes it from `ladder.decide` (tested on its own in
test_ladder.py) and checks everything after it independently.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from decimal import Decimal
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from ivr.ami.types import CallEnded
from ivr.db.base import Base, create_all
from ivr.db.models import Account, CallAttempt, DebtCase, OptOut, PhoneNumber
from ivr.dialer.attempts import on_call_ended
from ivr.dialer.claims import claim
from ivr.dialer.ladder import CaseView, Decision, decide
from ivr.dialer.policy import Limit, Rules, Stage
from ivr.dialer.selector import Candidate, select_candidates
from ivr.phone import timezone_for_phone
from tests.dialer.conftest import make_rules

UTC = dt.UTC
ZONES = [None, "Pacific/Kiritimati", "Etc/GMT+12", "Europe/Moscow", "Asia/Vladivostok", "Europe/Kyiv",
         "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "Europe/London", "Bad/Zone"]
PHONES = ["+79161234567", "+74232000000", "+74951234567", "+380441234567", "+12125550100"]
STAGES = (Stage("reminder", 1, start_day=1, max_attempts=3), Stage("firm", 2, start_day=7, max_attempts=4))
DAYS = {**{d: [(9, 20)] for d in range(5)}, 5: [(10, 18)], 6: [(10, 18)], 7: [(11, 16)]}
LIMITS = (Limit("day", 1, "answered"), Limit("week", 2, "answered"), Limit("month", 8, "answered"),
          Limit("day", 3, "attempts"))
IN_FLIGHT = ("claimed", "dialing", "answered")
ANSWERED = ("answered", "machine")
PERIOD = {"day": dt.timedelta(days=1), "week": dt.timedelta(days=7), "month": dt.timedelta(days=31)}


@pytest.fixture
def engine() -> Iterator[Engine]:
    eng = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    create_all(eng)
    yield eng
    eng.dispose()


def clear(eng: Engine) -> None:
    with eng.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))


history_item = st.tuples(
    st.integers(min_value=1, max_value=40 * 24 * 60),  # minutes before now
    st.sampled_from(["answered", "busy", "no_answer", "machine", "wrong_party", "not_sent", "failed"]),
)
person = st.fixed_dictionaries({
    "tz": st.sampled_from(ZONES),
    "country": st.sampled_from(["RU", "UA", "US"]),
    "state": st.sampled_from(["active"] * 6 + ["promised", "paid", "closed"]),
    "owed": st.sampled_from(["1500.00"] * 4 + ["0.01", "0", "-5"]),
    "stage": st.sampled_from(["reminder"] * 6 + ["firm", "firm", None, "gone"]),
    "attempts": st.sampled_from([0, 0, 0, 1, 2, 3, 4]),
    "next_in": st.one_of(st.none(), st.integers(min_value=-3000, max_value=600)),  # minutes from now
    "lock": st.sampled_from(["none"] * 4 + ["held", "expired"]),
    "opt_out": st.sampled_from(["none"] * 6 + ["account", "phone1"]),
    "phones": st.lists(st.tuples(st.sampled_from(PHONES), st.sampled_from(["ok"] * 4 + ["invalid", "wrong_party"])),
                       min_size=1, max_size=3, unique_by=lambda p: p[0]),
    "history": st.lists(history_item, max_size=4),
})
any_moment = st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 31, 23, 59),
                          timezones=st.just(UTC))
# mostly European/Russian daytime so that many cases are inside their windows
daytime = st.builds(
    lambda day, minute: dt.datetime(2026, 1, 1, tzinfo=UTC) + dt.timedelta(days=day, minutes=minute),
    st.integers(0, 364), st.integers(5 * 60, 15 * 60),
)
moments = st.one_of(daytime, daytime, any_moment)


def build(session: Session, people: list[dict], now: dt.datetime) -> None:  # type: ignore[type-arg]
    naive_now = now.replace(tzinfo=None)
    for i, p in enumerate(people):
        account = Account(external_id=f"P{i}", holder_name="x", timezone=p["tz"], country=p["country"])
        for priority, (number, status) in enumerate(p["phones"], start=1):
            account.phones.append(PhoneNumber(number=number, priority=priority, status=status))
        if p["lock"] == "held":
            account.dial_lock_owner, account.dial_lock_until = "other", naive_now + dt.timedelta(minutes=10)
        elif p["lock"] == "expired":
            account.dial_lock_owner, account.dial_lock_until = "dead", naive_now - dt.timedelta(minutes=10)
        owed = Decimal(p["owed"])
        case = DebtCase(account=account, opened_on=dt.date(2025, 12, 1), amount_initial=owed, amount_owed=owed,
                        state=p["state"], stage_code=p["stage"], attempts_in_stage=p["attempts"],
                        next_attempt_at=None if p["next_in"] is None else naive_now + dt.timedelta(minutes=p["next_in"]))
        session.add(case)
        session.flush()
        for n, (minutes, result) in enumerate(p["history"]):
            at = naive_now - dt.timedelta(minutes=minutes)
            session.add(CallAttempt(debt_case_id=case.id, account_id=account.id, phone=p["phones"][0][0],
                                    action_id=f"h-{i}-{n}", state="done", result=result, created_at=at, originated_at=at))
        if p["lock"] == "held":  # a call in flight holds the lock
            session.add(CallAttempt(debt_case_id=case.id, account_id=account.id, phone=p["phones"][0][0],
                                    action_id=f"f-{i}", state="dialing", created_at=naive_now - dt.timedelta(minutes=1)))
        if p["opt_out"] == "account":
            session.add(OptOut(account_id=account.id))
        elif p["opt_out"] == "phone1":
            session.add(OptOut(phone=p["phones"][0][0]))


# -- the oracle --------------------------------------------------------------------------------

def oracle_window_open(local: dt.datetime, country: str, policy: str) -> bool:
    holiday = local.date() in holidays.country_holidays(country, years=local.year)
    if holiday and policy == "no_calls":
        return False
    day = 7 if holiday and policy == "as_weekend" else local.weekday()
    return any(dt.time(a) <= local.time() < dt.time(b) for a, b in DAYS[day])


def oracle_within_limits(rows: list[tuple[dt.datetime, str, str | None]], now: dt.datetime, tz: ZoneInfo) -> bool:
    local_now = now.astimezone(tz)
    for limit in LIMITS:
        calendar = rolling = 0
        for at, state, result in rows:
            if result == "not_sent":
                continue
            answered = state in IN_FLIGHT or result in ANSWERED
            if limit.counts == "answered" and not answered:
                continue
            at_utc = at.replace(tzinfo=UTC)
            local = at_utc.astimezone(tz)
            same = {
                "day": local.date() == local_now.date(),
                "week": local.isocalendar()[:2] == local_now.isocalendar()[:2],
                "month": (local.year, local.month) == (local_now.year, local_now.month),
            }[limit.period]
            calendar += same
            rolling += now - at_utc < PERIOD[limit.period]
        if calendar >= limit.max_calls or rolling >= limit.max_calls:
            return False
    return True


def check_candidate(s: Session, c: Candidate, rules: Rules, now: dt.datetime) -> None:
    case = s.get(DebtCase, c.case_id)
    account = s.get(Account, c.account_id)
    assert case is not None and account is not None
    assert case.state == "active" and case.amount_owed > 0
    assert case.stage_code in ("reminder", "firm") and case.attempts_in_stage < rules.stage(case.stage_code).max_attempts  # type: ignore[union-attr]
    assert case.next_attempt_at is None or case.next_attempt_at <= now.replace(tzinfo=None)
    naive_now = now.replace(tzinfo=None)
    assert account.dial_lock_owner is None or account.dial_lock_until < naive_now  # type: ignore[operator]
    assert s.scalar(select(func.count()).select_from(CallAttempt).where(
        CallAttempt.account_id == c.account_id, CallAttempt.state.in_(IN_FLIGHT))) == 0
    assert not s.scalar(select(func.count()).select_from(OptOut).where(
        (OptOut.account_id == c.account_id) | (OptOut.phone == c.phone)))
    phone = s.get(PhoneNumber, c.phone_id)
    assert phone is not None and phone.status == "ok" and phone.account_id == c.account_id
    expected_tz = account.timezone or timezone_for_phone(c.phone, rules.default_timezone)
    assert c.timezone == expected_tz
    tz = ZoneInfo(expected_tz)
    assert oracle_window_open(now.astimezone(tz), account.country, rules.options.holiday_policy)
    rows = [(a.originated_at or a.created_at, a.state, a.result)
            for a in s.scalars(select(CallAttempt).where(CallAttempt.account_id == c.account_id))]
    assert oracle_within_limits(rows, now, tz)


def ladder_today(case: DebtCase, account: Account, rules: Rules, now: dt.datetime) -> Decision:
    """The ladder's decision for today (the zone: the account's, else its first number's, else the
    default, as the ladder resolves it)."""
    numbers = sorted(account.phones, key=lambda p: (p.priority, p.id))
    name = account.timezone or (timezone_for_phone(numbers[0].number, rules.default_timezone) if numbers else None)
    try:
        tz = ZoneInfo(name or rules.default_timezone)
    except Exception:  # noqa: BLE001
        tz = ZoneInfo(rules.default_timezone)
    view = CaseView(state=case.state, opened_on=case.opened_on, amount_owed=case.amount_owed, block_date=account.block_date,
                    stage_code=case.stage_code, attempts_in_stage=case.attempts_in_stage,
                    next_attempt_at=case.next_attempt_at, promise_broken=case.promise_broken)
    return decide(view, rules, now.astimezone(tz).date(), tz)


def oracle_callable(s: Session, rules: Rules, now: dt.datetime) -> set[int]:
    """Every case that may be called now, by brute force over the whole population."""
    naive_now = now.replace(tzinfo=None)
    opted_numbers = {o.phone for o in s.scalars(select(OptOut)) if o.phone}
    opted_accounts = {o.account_id for o in s.scalars(select(OptOut)) if o.account_id}
    expected = set()
    for case in s.scalars(select(DebtCase)):
        account = case.account
        if case.state not in ("active", "promised") or case.amount_owed <= 0:
            continue
        if case.next_attempt_at is not None and case.next_attempt_at > naive_now:
            continue
        if account.dial_lock_owner is not None and account.dial_lock_until >= naive_now:  # type: ignore[operator]
            continue
        if account.id in opted_accounts:
            continue
        today = ladder_today(case, account, rules, now)
        stage = rules.stage(today.stage_code)
        if today.state != "active" or stage is None or today.attempts_in_stage >= stage.max_attempts:
            continue
        if today.next_attempt_at is not None and today.next_attempt_at > naive_now:
            continue
        usable = [p for p in sorted(account.phones, key=lambda p: p.priority)
                  if p.status == "ok" and p.number not in opted_numbers]
        if not usable:
            continue
        zone_name = account.timezone or timezone_for_phone(usable[0].number, rules.default_timezone)
        try:
            tz = ZoneInfo(zone_name)
        except Exception:  # noqa: BLE001
            continue
        if not oracle_window_open(now.astimezone(tz), account.country, rules.options.holiday_policy):
            continue
        rows = [(a.originated_at or a.created_at, a.state, a.result)
                for a in s.scalars(select(CallAttempt).where(CallAttempt.account_id == account.id))]
        if oracle_within_limits(rows, now, tz):
            expected.add(case.id)
    return expected


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=st.lists(person, min_size=10, max_size=25), now=moments,
       policy=st.sampled_from(["as_weekend", "no_calls", "as_weekday"]))
def test_every_selected_candidate_may_really_be_called(engine: Engine, people, now, policy) -> None:  # type: ignore[no-untyped-def]
    clear(engine)
    rules = make_rules(days=DAYS, limits=LIMITS, stages=STAGES, holiday_policy=policy)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions.begin() as s:
        build(s, people, now)
    with sessions() as s:
        expected = oracle_callable(s, rules, now)
    with sessions() as s:
        found = select_candidates(s, rules, now, 50)
        s.commit()
        event(f"selected {min(len(found), 3)}+")
        assert len({c.account_id for c in found}) == len(found)
        for cand in found:
            check_candidate(s, cand, rules, now)
    # ... and nobody who may be called is missed
    assert {c.case_id for c in found} == expected
    # and the bumps never hide a callable case: selecting again at the same instant finds the same
    with sessions() as s:
        assert {c.case_id for c in select_candidates(s, rules, now, 50)} == {c.case_id for c in found}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=st.lists(person, min_size=4, max_size=10), now=moments, seed=st.integers(0, 2**32 - 1),
       steps=st.lists(st.sampled_from(["claim", "claim", "end", "wait", "expire"]), min_size=5, max_size=30))
def test_claims_never_give_a_person_two_calls_in_flight(engine: Engine, people, now, seed, steps) -> None:  # type: ignore[no-untyped-def]
    clear(engine)
    rng = random.Random(seed)
    rules = make_rules(days={d: [(0, 24)] for d in range(8)}, limits=(Limit("day", 20, "attempts"),), stages=STAGES)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions.begin() as s:
        build(s, people, now)
    with sessions() as s:
        cands = select_candidates(s, rules, now, 50)
        s.rollback()
    live: list[str] = []
    for step in steps:
        if step == "claim" and cands:
            with sessions() as s:
                attempt = claim(s, rng.choice(cands), rng.choice(["d1", "d2"]), now,
                                dt.timedelta(minutes=rng.choice([1, 30])), rules=rules)
            if attempt is not None:
                live.append(attempt.action_id)
                event("claimed")
        elif step == "end" and live:
            action_id = live.pop(rng.randrange(len(live)))
            on_call_ended(sessions, CallEnded(action_id, "1", "x", 16, "", "no_answer"), now, rules)
        elif step == "wait":
            now += dt.timedelta(minutes=rng.choice([1, 5, 130]))
        elif step == "expire":
            now += dt.timedelta(hours=2)  # every lease has expired, calls may still be running
        with sessions() as s:
            worst = s.execute(
                select(CallAttempt.account_id, func.count()).where(CallAttempt.state.in_(IN_FLIGHT))
                .group_by(CallAttempt.account_id).order_by(func.count().desc()).limit(1)
            ).first()
        assert worst is None or worst[1] <= 1, f"account {worst[0]} has {worst[1]} calls in flight"
