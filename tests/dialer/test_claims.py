"""Claims: atomic, re-checked, multi-dialer safe (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import Counter

from sqlalchemy import func, select

from ivr.ami.types import CallEnded
from ivr.db.models import Account, CallAttempt, DebtCase, OptOut, PhoneNumber
from ivr.dialer.attempts import on_call_ended
from ivr.dialer.claims import claim
from ivr.dialer.policy import Limit, Stage
from ivr.dialer.selector import Candidate, select_candidates
from ivr.wiring import Database
from tests.dialer.conftest import add_case, make_rules

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 12:00 MSK
RULES = make_rules(limits=[Limit("day", 4, "attempts")])


def candidate_for(db: Database, case_id: int) -> Candidate:
    with db.sessions() as s:
        found = [c for c in select_candidates(s, RULES, NOW, 100) if c.case_id == case_id]
        s.rollback()
    assert found, "the case should be a candidate"
    return found[0]


def try_claim(db: Database, cand: Candidate, dialer: str = "d1", now: dt.datetime = NOW,
              lease: dt.timedelta = dt.timedelta(minutes=30)) -> CallAttempt | None:
    with db.sessions() as s:
        return claim(s, cand, dialer, now, lease, rules=RULES, server="ast1")


def test_claim_locks_the_person_and_writes_the_attempt_first(any_db: Database) -> None:
    with any_db.sessions.begin() as s:
        case_id = add_case(s).id
    cand = candidate_for(any_db, case_id)
    attempt = try_claim(any_db, cand)
    assert attempt is not None
    assert attempt.action_id.startswith("d1-") and attempt.state == "claimed" and attempt.originated_at is None
    with any_db.sessions() as s:
        account = s.get(Account, cand.account_id)
        assert account is not None and account.dial_lock_owner == attempt.action_id
        assert account.dial_lock_until == (NOW + dt.timedelta(minutes=30)).replace(tzinfo=None)
        stored = s.scalar(select(CallAttempt))
        assert stored is not None and (stored.phone, stored.stage_code, stored.server) == (cand.phone, "reminder", "ast1")
    assert try_claim(any_db, cand, "d2") is None  # the person is taken


def test_an_expired_lease_still_never_gives_two_calls_in_flight(any_db: Database) -> None:
    with any_db.sessions.begin() as s:
        case_id = add_case(s).id
    cand = candidate_for(any_db, case_id)
    assert try_claim(any_db, cand, lease=dt.timedelta(minutes=1)) is not None
    later = NOW + dt.timedelta(minutes=5)
    assert try_claim(any_db, cand, "d2", now=later) is None
    with any_db.sessions() as s:  # the failed claim left nothing behind
        account = s.get(Account, cand.account_id)
        assert account is not None and account.dial_lock_owner.startswith("d1-")  # type: ignore[union-attr]
        assert s.scalar(select(func.count()).select_from(CallAttempt)) == 1


CHANGES = ["paid", "promised", "opt_out_account", "opt_out_phone", "wrong_party", "stage", "called_meanwhile",
           "limit", "exhausted"]


def _change(s, case_id: int, cand: Candidate, change: str) -> None:  # type: ignore[no-untyped-def]
    case = s.get(DebtCase, case_id)
    if change == "paid":
        case.amount_owed = 0
    elif change == "promised":
        case.state = "promised"
    elif change == "opt_out_account":
        s.add(OptOut(account_id=case.account_id))
    elif change == "opt_out_phone":
        s.add(OptOut(phone=cand.phone))
    elif change == "wrong_party":
        s.get(PhoneNumber, cand.phone_id).status = "wrong_party"
    elif change == "stage":
        case.stage_code = "firm"
    elif change == "called_meanwhile":  # another dialer called and finished
        case.next_attempt_at = (NOW + dt.timedelta(minutes=20)).replace(tzinfo=None)
    elif change == "exhausted":
        case.attempts_in_stage = 3
    elif change == "limit":
        for i in range(4):
            s.add(CallAttempt(debt_case_id=case_id, account_id=case.account_id, phone=cand.phone,
                              action_id=f"x-{case_id}-{i}", state="done", result="busy",
                              created_at=(NOW - dt.timedelta(minutes=10 + i)).replace(tzinfo=None)))


def test_claim_rechecks_everything_under_the_lock(any_db: Database) -> None:
    """A payment, an opt-out, ... between selection and claim: no claim, nothing left behind."""
    with any_db.sessions.begin() as s:
        case_ids = {change: add_case(s).id for change in CHANGES}
    cands = {change: candidate_for(any_db, case_id) for change, case_id in case_ids.items()}
    with any_db.sessions.begin() as s:
        for change, case_id in case_ids.items():
            _change(s, case_id, cands[change], change)
    for change, cand in cands.items():
        assert try_claim(any_db, cand) is None, change
    with any_db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Account).where(Account.dial_lock_owner.is_not(None))) == 0
        assert s.scalar(select(func.count()).select_from(CallAttempt).where(CallAttempt.state == "claimed")) == 0


FREE_RULES = make_rules(
    days={d: [(0, 24)] for d in range(8)},
    stages=(Stage(code="reminder", position=1, max_attempts=100, retry_minutes=30),),
    limits=[Limit("day", 50, "attempts")],
)


class Race:
    """Shared state of the two dialer threads; `in_flight` mirrors the DB locks in memory."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.clock = NOW
        self.barrier = threading.Barrier(2, action=self._advance, timeout=60)
        self.guard = threading.Lock()
        self.in_flight: dict[int, str] = {}
        self.log: list[tuple[int, int, str]] = []
        self.violations: list[str] = []

    def _advance(self) -> None:
        self.clock += dt.timedelta(hours=1)  # the busy retry (20 min) has passed: all due again


def _dialer_thread(db: Database, name: str, race: Race, seed: int) -> None:
    rng = random.Random(seed)
    try:
        for rnd in range(race.rounds):
            race.barrier.wait()
            now = race.clock
            with db.sessions() as s:
                # no coordination between dialers: both try every account, in different orders
                cands = select_candidates(s, FREE_RULES, now, 200)
                s.commit()
            rng.shuffle(cands)
            held: list[tuple[CallAttempt, int]] = []
            for cand in cands:
                with db.sessions() as s:
                    attempt = claim(s, cand, name, now, rules=FREE_RULES, server="ast1")
                if attempt is None:
                    continue
                with race.guard:
                    if cand.account_id in race.in_flight:
                        race.violations.append(f"round {rnd}: account {cand.account_id} twice")
                    race.in_flight[cand.account_id] = name
                    race.log.append((rnd, cand.account_id, name))
                held.append((attempt, cand.account_id))
                if rng.random() < 0.5:  # end some calls at once, others later in the round
                    _end(db, race, held.pop(), now)
            for item in held:
                _end(db, race, item, now)
    except Exception as exc:  # noqa: BLE001 - surfaced by the test
        race.violations.append(f"{name} crashed: {exc!r}")
        race.barrier.abort()


def _end(db: Database, race: Race, item: tuple[CallAttempt, int], now: dt.datetime) -> None:
    attempt, account_id = item
    with race.guard:  # cleared before the DB releases the lock, so any overlap seen is real
        race.in_flight.pop(account_id, None)
    event = CallEnded(call_id=attempt.action_id, uniqueid="1.1", channel="PJSIP/x", cause=17, cause_txt="Busy", result="busy")
    on_call_ended(db.sessions, event, now, FREE_RULES)


def test_two_dialers_never_double_dial(any_db: Database) -> None:
    accounts, rounds = 20, 4
    with any_db.sessions.begin() as s:
        for _ in range(accounts):
            add_case(s)
    race = Race(rounds)
    threads = [threading.Thread(target=_dialer_thread, args=(any_db, name, race, seed))
               for name, seed in (("dA", 1), ("dB", 2))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not race.violations, race.violations
    per_round = Counter((rnd, account) for rnd, account, _ in race.log)
    assert all(n == 1 for n in per_round.values()), "an account was dialled twice in one round"
    assert len(per_round) == accounts * rounds  # and nobody was skipped
    assert {name for _, _, name in race.log} == {"dA", "dB"}
    with any_db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(CallAttempt)) == accounts * rounds
        assert s.scalar(select(func.count()).select_from(CallAttempt).where(CallAttempt.state != "done")) == 0
        assert s.scalar(select(func.count()).select_from(Account).where(Account.dial_lock_owner.is_not(None))) == 0
