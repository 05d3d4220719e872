"""The dialer loop with fake Originators on a FixedClock."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter

from sqlalchemy import func, select

from ivr import dialplan_vars as dv
from ivr.ami.types import CallEnded, OriginateRequest
from ivr.clock import FixedClock
from ivr.config import AsteriskServer, Settings
from ivr.db.models import Account, CallAttempt, DebtCase
from ivr.dialer.attempts import on_call_ended
from ivr.dialer.engine import Dialer
from ivr.dialer.policy import Limit, Rules
from ivr.wiring import Database
from tests.dialer.conftest import add_case, make_rules

UTC = dt.UTC
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 12:00 MSK
RULES = make_rules(limits=[Limit("day", 4, "attempts")], retry_no_answer_minutes=120)
SERVERS = (
    AsteriskServer("ast1", "127.0.0.1", 5038, "u", "s", 2, "PJSIP/{number}@trunk"),
    AsteriskServer("ast2", "127.0.0.1", 5039, "u", "s", 3, "SIP/{number}@other"),
)
SETTINGS = Settings(asterisk_servers=SERVERS, calls_per_second=2.0, dialer_tick_seconds=5.0,
                    agi_public_url="agi://10.0.0.5:4573", dialplan_context="ivr-robot", dialplan_exten="s")


class FakeOriginator:
    """Records requests with the clock's time; refuses numbers listed in `refuse`."""

    def __init__(self, clock: FixedClock, journal: list[str], refuse: tuple[str, ...] = (), connected: bool = True) -> None:
        self.clock = clock
        self.journal = journal
        self.refuse = refuse
        self.connected = connected
        self.requests: list[OriginateRequest] = []
        self.times: list[dt.datetime] = []

    async def originate(self, request: OriginateRequest) -> None:
        self.journal.append(f"originate:{request.action_id}")
        self.requests.append(request)
        self.times.append(self.clock.now())
        if any(number in request.channel for number in self.refuse):
            raise RuntimeError("Response: Error (Originate failed)")


def make_dialer(db: Database, clock: FixedClock, *, refuse: tuple[str, ...] = (), ast2_connected: bool = True,
                rules: Rules = RULES, prepare=None, find_calls=None) -> tuple[Dialer, dict[str, FakeOriginator], list[str]]:  # type: ignore[no-untyped-def]
    journal: list[str] = []
    originators = {
        "ast1": FakeOriginator(clock, journal, refuse),
        "ast2": FakeOriginator(clock, journal, refuse, connected=ast2_connected),
    }
    dialer = Dialer(sessions=db.sessions, rules_loader=lambda s: rules, clock=clock, settings=SETTINGS,
                    originators=originators, dialer_id="dial-1", prepare_audio=prepare, find_calls=find_calls)
    return dialer, originators, journal


def populate(db: Database, n: int) -> list[str]:
    numbers = [f"+7916555{i:04d}" for i in range(n)]
    with db.sessions.begin() as s:
        for number in numbers:
            add_case(s, phones=[number])
    return numbers


def all_requests(originators: dict[str, FakeOriginator]) -> list[tuple[dt.datetime, str, OriginateRequest]]:
    return sorted((t, name, r) for name, o in originators.items() for t, r in zip(o.times, o.requests, strict=True))


async def test_channel_limits_and_calls_per_second(db: Database) -> None:
    populate(db, 10)
    clock = FixedClock(START)
    dialer, originators, _ = make_dialer(db, clock)
    assert await dialer.run_once() == 5  # 2 + 3 lines
    assert len(originators["ast1"].requests) == 2 and len(originators["ast2"].requests) == 3
    times = [t for t, _, _ in all_requests(originators)]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert all(gap >= 0.5 for gap in gaps), gaps  # 2 calls per second
    assert await dialer.run_once() == 0  # all lines busy
    req = originators["ast1"].requests[0]
    with db.sessions() as s:
        attempt = s.scalar(select(CallAttempt).where(CallAttempt.action_id == req.action_id))
        assert attempt is not None and attempt.originated_at is not None and attempt.state == "dialing"
    assert req.channel == f"PJSIP/{attempt.phone.lstrip('+')}@trunk"
    assert (req.context, req.exten, req.timeout_ms, req.caller_id) == ("ivr-robot", "s", 30000, SETTINGS.caller_id)
    assert req.variables == {dv.CALL_ID: req.action_id, dv.AGI_URL: "agi://10.0.0.5:4573",
                             dv.SCRIPT: dv.ROUTE_DEBT_CALL, dv.LANGUAGE: "ru", dv.AMD_ENABLED: "1"}
    assert originators["ast2"].requests[0].channel.startswith("SIP/7916555")


async def test_lines_are_refilled_when_a_call_ends(db: Database) -> None:
    populate(db, 10)
    clock = FixedClock(START)
    dialer, originators, _ = make_dialer(db, clock)
    await dialer.run_once()
    first = originators["ast1"].requests[0]
    update = await dialer.handle_call_ended(CallEnded(first.action_id, "1.1", "PJSIP/x-1", 17, "Busy", "busy"))
    assert update is not None and update.finished
    await dialer.settle()  # the refill pass started by the event
    assert len(originators["ast1"].requests) == 3  # the freed line was used at once
    assert len(originators["ast2"].requests) == 3  # and no server went over its limit
    with db.sessions() as s:
        in_flight = Counter(s.scalars(select(CallAttempt.server).where(CallAttempt.state.in_(("claimed", "dialing", "answered")))))
    assert in_flight == Counter({"ast1": 2, "ast2": 3})


async def test_a_refused_originate_frees_the_line_and_the_person(db: Database) -> None:
    numbers = populate(db, 3)
    clock = FixedClock(START)
    refused = numbers[0].lstrip("+")
    dialer, originators, _ = make_dialer(db, clock, refuse=(refused,), ast2_connected=False)
    assert await dialer.run_once() == 2  # the refused one's line went to the next candidate
    assert len(originators["ast2"].requests) == 0  # disconnected server gets nothing
    with db.sessions() as s:
        bad = s.scalar(select(CallAttempt).where(CallAttempt.phone == numbers[0]))
        assert bad is not None and (bad.state, bad.result, bad.originated_at) == ("done", "refused", None)
        account = s.get(Account, bad.account_id)
        assert account is not None and account.dial_lock_owner is None
        case = s.get(DebtCase, bad.debt_case_id)
        assert case is not None and case.last_result == "refused" and case.attempts_in_stage == 0


async def test_prepare_audio_runs_before_the_originate(db: Database) -> None:
    populate(db, 2)
    clock = FixedClock(START)
    journal_ref: list[list[str]] = []

    async def prepare(session, attempt: CallAttempt) -> None:  # type: ignore[no-untyped-def]
        assert session.get(CallAttempt, attempt.id) is not None  # committed before preparing
        journal_ref[0].append(f"prepare:{attempt.action_id}")

    dialer, originators, journal = make_dialer(db, clock, prepare=prepare)
    journal_ref.append(journal)
    await dialer.run_once()
    ids = [r.action_id for _, _, r in all_requests(originators)]
    assert len(ids) == 2
    for action_id in ids:
        assert journal.index(f"prepare:{action_id}") < journal.index(f"originate:{action_id}")


async def test_failed_audio_preparation_dials_nothing_and_frees_everything(db: Database) -> None:
    populate(db, 1)
    clock = FixedClock(START)

    def prepare(session, attempt) -> None:  # type: ignore[no-untyped-def]
        raise OSError("tts engine missing")

    dialer, originators, _ = make_dialer(db, clock, prepare=prepare)
    assert await dialer.run_once() == 0
    assert not any(o.requests for o in originators.values())
    with db.sessions() as s:
        attempt = s.scalar(select(CallAttempt))
        assert attempt is not None and (attempt.state, attempt.result) == ("done", "not_sent")
        assert s.scalar(select(func.count()).select_from(Account).where(Account.dial_lock_owner.is_not(None))) == 0
        case = s.scalar(select(DebtCase))
        assert case is not None and case.next_attempt_at is not None  # no hot loop
    assert await dialer.run_once() == 0


async def test_a_lost_originate_is_reconciled_and_not_redialled_at_once(db: Database) -> None:
    populate(db, 1)
    clock = FixedClock(START)
    live: dict[str, set[str]] = {"ast1": set(), "ast2": set()}

    async def find_calls() -> dict[str, set[str]]:
        return live

    dialer, originators, _ = make_dialer(db, clock, find_calls=find_calls)
    assert await dialer.run_once() == 1
    clock.advance(dt.timedelta(minutes=5))  # no event ever came back (AMI reconnect)
    first = await dialer.reconcile()
    assert len(first.missing) == 1 and first.lost == []  # its Hangup may still be on its way
    report = await dialer.reconcile()  # still no channel at the second look: lost
    assert len(report.lost) == 1
    await dialer.settle()
    assert await dialer.run_once() == 0  # not redialled now
    assert sum(len(o.requests) for o in originators.values()) == 1
    clock.advance(dt.timedelta(minutes=121))
    assert await dialer.run_once() == 1  # but at the normal interval


async def test_run_loop_reconciles_fills_and_stops(db: Database) -> None:
    populate(db, 4)
    clock = FixedClock(START)
    dialer, originators, _ = make_dialer(db, clock)
    stop = asyncio.Event()
    task = asyncio.create_task(dialer.run(stop))
    # until the loop has placed all four (the deadline only bounds a hang: on a busy machine the
    # loop's database work in threads takes far longer than on an idle one)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while sum(len(o.requests) for o in originators.values()) < 4 and loop.time() < deadline:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert sum(len(o.requests) for o in originators.values()) == 4


async def test_a_call_finished_by_another_process_frees_our_line(db: Database) -> None:
    populate(db, 8)
    clock = FixedClock(START)
    dialer, originators, _ = make_dialer(db, clock, ast2_connected=False)
    assert await dialer.run_once() == 2  # ast1 is full
    first = originators["ast1"].requests[0]
    # another dialer connected to the same Asterisk handled the Hangup event
    on_call_ended(db.sessions, CallEnded(first.action_id, "1.1", "PJSIP/x-1", 17, "Busy", "busy"), clock.now(), RULES)
    assert await dialer.run_once() == 1
    assert len(originators["ast1"].requests) == 3


async def test_an_originate_whose_reply_was_lost_keeps_the_person_locked_until_reconciled(db: Database) -> None:
    from ivr.ami.client import OriginateUnknown

    numbers = populate(db, 1)
    clock = FixedClock(START)
    live: dict[str, set[str]] = {"ast1": set(), "ast2": set()}

    async def find_calls() -> dict[str, set[str]]:
        return live

    dialer, originators, _ = make_dialer(db, clock, find_calls=find_calls, ast2_connected=False)

    async def lost(request: OriginateRequest) -> None:
        originators["ast1"].requests.append(request)
        live["ast1"].add(request.action_id)  # Asterisk did queue it: the phone is ringing
        raise OriginateUnknown(request.action_id, "connection lost before the reply")

    originators["ast1"].originate = lost  # type: ignore[method-assign]
    assert await dialer.run_once() == 1
    with db.sessions() as s:
        attempt = s.scalar(select(CallAttempt).where(CallAttempt.phone == numbers[0]))
        assert attempt is not None and attempt.state != "done" and attempt.result is None
        assert s.get(Account, attempt.account_id).dial_lock_owner is not None  # type: ignore[union-attr]
    clock.advance(dt.timedelta(hours=3))
    assert await dialer.run_once() == 0  # never resent, and the person is still in flight
    report = await dialer.reconcile()  # after the reconnect: the channel is live
    assert report.lost == []
    assert await dialer.run_once() == 0
    assert len(originators["ast1"].requests) == 1
