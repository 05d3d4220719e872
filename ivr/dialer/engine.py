"""The dialer loop: fill free lines with due candidates, one Originate at a time.

One fill pass (`run_once`):
  1. reload the rules (at most once per tick) and count lines in flight per server (all
     dialers), in one trip to the database;
  2. select up to as many candidates as there are free lines on connected servers;
  3. for each: reserve a line, claim the person (commit), prepare the prompt audio, wait for
     the calls-per-second token, stamp originated_at (commit), send the Originate.

Results come back through `handle_originate_result` / `handle_call_ended` (wired to the AMI
client's events by the caller); they record the attempt, free the line and wake the loop at
once, so a freed line is refilled without waiting for the next tick.

Database work runs in a worker thread (`asyncio.to_thread`) so the event loop that also serves
FastAGI and AMI is never blocked by a query.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ivr import dialplan_vars as dv
from ivr.ami.client import OriginateUnknown
from ivr.ami.types import CallEnded, OriginateRequest, OriginateResult
from ivr.clock import Clock
from ivr.config import AsteriskServer, Settings
from ivr.db.models import CallAttempt
from ivr.dialer import attempts as attempts_mod
from ivr.dialer import lines as line_leases
from ivr.dialer import pauses as pauses_mod
from ivr.dialer.attempts import AttemptUpdate, Sessions
from ivr.dialer.backpressure import AgiGate
from ivr.dialer.claims import DEFAULT_LEASE, ServerFull, claim, mark_dialing, mark_originating
from ivr.dialer.health import AgiHealth, HealthState
from ivr.dialer.pacing import LinePool, TokenBucket
from ivr.dialer.policy import Rules
from ivr.dialer.reconcile import Ownership, ReconcileReport, reconcile
from ivr.dialer.retry import ROBOT_FAILED
from ivr.dialer.selector import IN_FLIGHT, Candidate, SelectionStats, select_candidates
from ivr.dialer.thanks_store import select_thanks
from ivr.logsetup import mask_phone

log = logging.getLogger(__name__)

T = TypeVar("T")
PREPARE_FAILED_RETRY = dt.timedelta(minutes=10)
# How often (clock seconds) Dialer.run reconciles against the live channels: with the 10 s
# grace of reconcile.DEFAULT_SAFE_AGE and the second look for our own attempts, an attempt
# without a channel is settled well within the originate time-out plus a margin.
DEFAULT_RECONCILE_SECONDS = 10.0
LEASE_MIN_REAL = dt.timedelta(seconds=10)


class Originator(Protocol):
    """One Asterisk server's AMI client (or the simulator): raises when the Originate is refused."""

    @property
    def connected(self) -> bool: ...

    async def originate(self, request: OriginateRequest) -> Any: ...


RulesLoader = Callable[[Session], Rules]
PrepareAudio = Callable[[Session, CallAttempt], Awaitable[None] | None]
FindCalls = Callable[[], Awaitable[Mapping[str, Collection[str]]]]


def build_request(settings: Settings, server: AsteriskServer, attempt: CallAttempt) -> OriginateRequest:
    return OriginateRequest(
        action_id=attempt.action_id,
        channel=server.channel_template.format(number=attempt.phone.lstrip("+")),
        context=settings.dialplan_context,
        exten=settings.dialplan_exten,
        priority=1,
        timeout_ms=settings.originate_timeout_ms,
        caller_id=settings.caller_id,
        variables={
            dv.CALL_ID: attempt.action_id,
            dv.AGI_URL: settings.agi_public_url,
            dv.SCRIPT: dv.ROUTE_DEBT_CALL,
            dv.LANGUAGE: attempt.language,
            dv.AMD_ENABLED: "1",
        },
    )


class Dialer:
    def __init__(
        self,
        *,
        sessions: Sessions,
        rules_loader: RulesLoader,
        clock: Clock,
        settings: Settings,
        originators: Mapping[str, Originator],
        dialer_id: str,
        prepare_audio: PrepareAudio | None = None,
        servers: Sequence[AsteriskServer] | None = None,
        find_calls: FindCalls | None = None,
        lease: dt.timedelta = DEFAULT_LEASE,
        run_db: Callable[..., Awaitable[Any]] | None = None,
        agi_health: AgiHealth | None = None,
        reconcile_seconds: float = DEFAULT_RECONCILE_SECONDS,
        line_ttl: dt.timedelta = line_leases.LEASE_TTL,
        agi_gate: AgiGate | None = None,
    ) -> None:
        self.sessions = sessions
        self.rules_loader = rules_loader
        self.clock = clock
        self.settings = settings
        self.originators = originators
        self.dialer_id = dialer_id or "dialer"
        self.prepare_audio = prepare_audio
        self.find_calls = find_calls
        self.lease = lease
        server_list = tuple(servers if servers is not None else settings.asterisk_servers)
        self.servers = {s.name: s for s in server_list}
        unknown = set(originators) - set(self.servers)
        if unknown:
            raise ValueError(f"originators for servers without settings: {sorted(unknown)}")
        self.lines = LinePool({s.name: s.channel_limit for s in server_list})
        self.bucket = TokenBucket(settings.calls_per_second, clock)
        self._run_db = run_db or asyncio.to_thread
        self._pass_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._loop_running = False
        self._kick_task: asyncio.Task[int] | None = None
        self._rules: Rules | None = None
        self._rules_at: dt.datetime | None = None  # clock time of the last load by a pass
        self.last_stats = SelectionStats()
        self.sent = 0
        # Without a probe (tests, callers that do not pass one) only the AGISTATUS signal counts.
        self.agi_health = agi_health or AgiHealth(None, clock)
        # issue 12: no more calls up than the FastAGI side carries well (ivr.dialer.backpressure)
        self.agi_gate = agi_gate
        self.reconcile_seconds = reconcile_seconds
        # At least LEASE_MIN_REAL real seconds: a fast clock (demo, tests) must not let a live
        # dialer's leases lapse between two passes.
        self.line_ttl = max(line_ttl, LEASE_MIN_REAL * max(clock.speed, 1.0))
        self._reconciled_at: dt.datetime | None = None
        self._restarts_seen: dict[str, int] = {}
        self._missing: set[str] = set()
        self.stopped = False  # set by stop_dialing(): no new Originate from here on
        # issue 13: admins' pauses (global, per stage, per server), read once per fill pass
        self.pauses: pauses_mod.Active = pauses_mod.NOTHING

    @property
    def health(self) -> HealthState:
        """Whether the dialer may dial: `.ok`, `.reason` (empty when ok) and `.since` (when the
        state last changed). Paused while the FastAGI side does not answer (ivr.dialer.health)."""
        return self.agi_health.state

    # -- helpers ---------------------------------------------------------------------------

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        result: T = await self._run_db(fn, *args, **kwargs)
        return result

    def _load_rules(self) -> Rules:
        with self.sessions() as session:
            return self.rules_loader(session)

    async def rules(self) -> Rules:
        if self._rules is None:
            self._rules = await self._db(self._load_rules)
        return self._rules

    def connected_servers(self) -> list[str]:
        """Servers a new call may go to: connected and not paused by an admin (issue 13)."""
        return [name for name, o in self.originators.items() if o.connected and name not in self.pauses.servers]

    def _rules_stale(self, now: dt.datetime) -> bool:
        """A pass reloads the rules at most once per tick (of the clock): the passes that refill
        freed lines, one or more per call under load, reuse them, and an admin's edit still
        takes effect within one tick."""
        if self._rules is None or self._rules_at is None:
            return True
        age = (now - self._rules_at).total_seconds()
        return age < 0 or age >= self.settings.dialer_tick_seconds

    def _pass_snapshot(self, reload_rules: bool) -> tuple[Rules | None, dict[str | None, int], set[str]]:
        """What a pass starts from: the rules (None unless reloaded), the lines in flight and
        (issue 13) the admins' active pauses, stored on `self.pauses`."""
        rules = self._load_rules() if reload_rules else None
        counts, ours = self._in_flight_snapshot()
        # issue 13: one indexed query per pass, so a pause or resume takes effect at the next pass
        with self.sessions() as session:
            self.pauses = pauses_mod.active(session)
        return rules, counts, ours

    def _in_flight_snapshot(self) -> tuple[dict[str | None, int], set[str]]:
        """Lines in use per server (all dialers: the larger of the leased slots and the attempts
        in flight) and which of our attempts are still in flight. Renews our line leases."""
        now = self.clock.now()
        with self.sessions.begin() as session:
            rows = session.execute(
                select(CallAttempt.server, func.count()).where(CallAttempt.state.in_(IN_FLIGHT)).group_by(CallAttempt.server)
            ).all()
            ours = set(session.scalars(
                select(CallAttempt.action_id).where(CallAttempt.state.in_(IN_FLIGHT), CallAttempt.dialer_id == self.dialer_id)
            ))
            line_leases.renew(session, ours, now, self.line_ttl)
            leased = line_leases.in_use(session, now)
        counts: dict[str | None, int] = {server: int(count) for server, count in rows}
        for server, held in leased.items():
            counts[server] = max(counts.get(server, 0), held)
        return counts, ours

    def _select(self, rules: Rules, now: dt.datetime, limit: int) -> list[Candidate]:
        stats = SelectionStats()
        with self.sessions() as session:
            try:
                found = select_candidates(session, rules, now, limit, stats=stats,
                                          paused_stages=self.pauses.stages)  # issue 13
                if len(found) < limit:  # issue 16: thank-you calls take lines debt calls leave free
                    found += select_thanks(session, rules, now, limit - len(found),
                                           paused_stages=self.pauses.stages)
                session.commit()  # the window/limit bumps
            except Exception:
                session.rollback()
                raise
        self.last_stats = stats
        return found

    def _claim(self, candidate: Candidate, server: str, now: dt.datetime, rules: Rules) -> CallAttempt | None:
        with self.sessions() as session:
            return claim(session, candidate, self.dialer_id, now, self.lease, rules=rules, server=server,
                         line_limit=self.servers[server].channel_limit, line_ttl=self.line_ttl)

    def _mark_originating(self, attempt_id: int, now: dt.datetime) -> bool:
        with self.sessions() as session:
            return mark_originating(session, attempt_id, now)

    def _mark_dialing(self, attempt_id: int) -> None:
        with self.sessions() as session:
            mark_dialing(session, attempt_id)

    # -- the fill pass -----------------------------------------------------------------------

    def stop_dialing(self) -> None:
        """No new call from now on (shutdown): events still finish the calls in progress, but a
        freed line is not refilled."""
        self.stopped = True
        self._wake.set()

    def calls_in_progress(self) -> int:
        """Our attempts still in flight (claimed, ringing or answered) by this process's count."""
        return sum(self.lines.ours(name) for name in self.servers)

    async def run_once(self) -> int:
        """Fill free lines once; returns how many Originates were sent."""
        if self.stopped:
            return 0
        async with self._pass_lock:
            self._wake.clear()
            if not (await self.agi_health.check()).ok:
                return 0  # the robot side does not answer: no silent calls (logged by AgiHealth)
            now = self.clock.now()
            loaded, counts, ours = await self._db(self._pass_snapshot, self._rules_stale(now))
            if loaded is not None:
                self._rules, self._rules_at = loaded, now
            rules = loaded or self._rules
            if rules is None:  # only when never loaded, which _rules_stale rules out
                raise RuntimeError("dialer rules were never loaded")
            # An attempt finished by another process (its event went elsewhere) frees our line too.
            self.lines.forget_except(ours)
            self.lines.sync(counts)
            if self.pauses.everything:  # issue 13: a global pause sends nothing
                return 0
            free = self.lines.total_free(self.connected_servers())
            if free > 0 and self.agi_gate is not None:
                # real time, not the clock: the FastAGI delays it reads are real-time delays
                free = min(free, await self.agi_gate.allowance(self.calls_in_progress(), time.monotonic()))
            if free <= 0:
                return 0
            # Twice the free lines: claims lost to other dialers or refused originates leave lines
            # that the rest of the batch can fill in the same pass.
            candidates = await self._db(self._select, rules, self.clock.now(), free * 2)
            sent = 0
            for candidate in candidates:
                if self.stopped:
                    break
                server = self.lines.reserve(self.connected_servers())
                if server is None:
                    break
                try:
                    attempt = await self._db(self._claim, candidate, server, self.clock.now(), rules)
                except ServerFull:
                    # other dialers hold the server's remaining lines: count it full for this pass
                    self.lines.cancel(server)
                    self.lines.sync({**counts, server: self.lines.limits.get(server, 0)})
                    continue
                except Exception:
                    self.lines.cancel(server)
                    log.exception("claim of case %s failed", candidate.case_id)
                    continue
                if attempt is None:
                    self.lines.cancel(server)
                    continue
                self.lines.attach(server, attempt.action_id)
                sent += await self._send(attempt, server, rules)
            self.sent += sent
            return sent

    async def _prepare(self, attempt: CallAttempt) -> None:
        if self.prepare_audio is None:
            return
        with self.sessions() as session:
            maybe = self.prepare_audio(session, attempt)
            if inspect.isawaitable(maybe):
                await maybe
            session.commit()

    async def _send(self, attempt: CallAttempt, server: str, rules: Rules) -> int:
        try:
            await self._prepare(attempt)
        except Exception:
            log.exception("audio preparation for attempt %s failed; not dialing", attempt.action_id)
            await self._db(attempts_mod.release_unsent, self.sessions, attempt.id, self.clock.now(),
                           retry_after=PREPARE_FAILED_RETRY)
            self.lines.release(attempt.action_id)
            return 0
        await self.bucket.take()
        if not self.agi_health.ok:
            # paused while this pass ran (a FastAGI failure was just seen): not sent, free again
            await self._db(attempts_mod.release_unsent, self.sessions, attempt.id, self.clock.now())
            self.lines.release(attempt.action_id)
            return 0
        if not await self._db(self._mark_originating, attempt.id, self.clock.now()):
            log.warning("attempt %s was released before sending; not dialing", attempt.action_id)
            self.lines.release(attempt.action_id)
            return 0
        originator = self.originators[server]
        request = build_request(self.settings, self.servers[server], attempt)
        try:
            await originator.originate(request)
        except OriginateUnknown:
            # The Originate was written but its reply was lost with the connection: the call may
            # be ringing. Keep the line and the person locked; reconciliation after the reconnect
            # decides from the live channels. Never resend it.
            log.warning("originate %s: reply lost in a disconnect; left for reconciliation", attempt.action_id)
            return 1
        except Exception as exc:  # noqa: BLE001 - any refusal frees the line and the person
            await self._db(attempts_mod.on_originate_error, self.sessions, attempt.action_id,
                           self.clock.now(), rules, repr(exc))
            self.lines.release(attempt.action_id)  # the rest of this pass may use it
            return 0
        await self._db(self._mark_dialing, attempt.id)
        log.info("originated %s to %s via %s", attempt.action_id, mask_phone(attempt.phone), server)
        return 1

    # -- events from Asterisk --------------------------------------------------------------------

    def _done(self, update: AttemptUpdate | None) -> None:
        if update is not None and update.finished and self.lines.release(update.action_id) is not None:
            self._kick()

    async def handle_originate_result(self, result: OriginateResult) -> AttemptUpdate | None:
        update = await self._db(attempts_mod.on_originate_result, self.sessions, result, self.clock.now(), await self.rules())
        self._done(update)
        return update

    async def handle_call_ended(self, event: CallEnded) -> AttemptUpdate | None:
        update = await self._db(attempts_mod.on_call_ended, self.sessions, event, self.clock.now(), await self.rules())
        if event.agi_status is not None and update is not None:
            # AGI() ran, so the call was answered: did the script run? (the health gate)
            self.agi_health.record_call(event.agi_status, update.result != ROBOT_FAILED)
        self._done(update)
        return update

    def _kick(self) -> None:
        """A line was freed: refill now (wake the loop, or run a pass if no loop runs)."""
        self._wake.set()
        if self._loop_running:
            return
        if self._kick_task is None or self._kick_task.done():
            try:
                self._kick_task = asyncio.get_running_loop().create_task(self.run_once())
            except RuntimeError:
                pass  # no loop (sync caller): the next tick refills

    async def settle(self) -> None:
        """Wait for a refill pass started by an event (tests, orderly shutdown)."""
        while self._kick_task is not None and not self._kick_task.done():
            await self._kick_task

    # -- reconciliation and the loop --------------------------------------------------------------

    def _restarted_servers(self, now: dt.datetime) -> dict[str, dt.datetime]:
        """Servers whose Asterisk restarted since our last look (AMIClient.restarts grew)."""
        restarted: dict[str, dt.datetime] = {}
        for name, originator in self.originators.items():
            count = int(getattr(originator, "restarts", 0) or 0)
            if count > self._restarts_seen.get(name, 0):
                restarted[name] = now
            self._restarts_seen[name] = count
        return restarted

    async def reconcile(self, find_calls: FindCalls | None = None) -> ReconcileReport:
        """On start, after an AMI reconnect and every `reconcile_seconds` (Dialer.run). Servers
        whose channels cannot be listed are left alone; claims never sent are released in any
        case (see ivr.dialer.reconcile)."""
        finder = find_calls or self.find_calls
        live: Mapping[str, Collection[str]] = {}
        now = self.clock.now()
        self._reconciled_at = now
        restarted = self._restarted_servers(now)
        if finder is not None:
            try:
                live = await finder()
            except Exception:  # noqa: BLE001 - without the list we only release unsent claims
                log.exception("listing live calls failed; reconciling unsent claims only")
        owner = Ownership(dialer_id=self.dialer_id, ours_in_memory=self.lines.our_ids(),
                          previously_missing=frozenset(self._missing), lease_ttl=self.line_ttl)
        report = await self._db(reconcile, self.sessions, await self.rules(), self.clock.now(), live,
                                restarted_at=restarted, owner=owner)
        self._missing = set(report.missing)
        for action_id in (*report.lost, *report.not_sent, *report.settled):
            self.lines.release(action_id)
            forget = getattr(self.originators.get(self._server_of(action_id) or "", None), "forget", None)
            if forget is not None:
                forget(action_id)
        if report.lost or report.not_sent or report.settled:
            self._kick()
        return report

    def _server_of(self, action_id: str) -> str | None:
        return self.lines.server_of(action_id)

    def _reconcile_due(self) -> bool:
        if self._reconciled_at is None:
            return True
        age = (self.clock.now() - self._reconciled_at).total_seconds()
        return age < 0 or age >= self.reconcile_seconds

    async def wait_for_work(self, stop: asyncio.Event, timeout: float) -> None:
        """Until a line is freed, the tick elapses (on the clock) or `stop` is set."""
        waiters = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self.clock.sleep(timeout)),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile, then fill passes on every freed line and every tick until `stop` is set."""
        self._loop_running = True
        try:
            await self.reconcile()
            while not stop.is_set():
                try:
                    if self._reconcile_due():  # issue 15: in every process that dials
                        await self.reconcile()
                    await self.run_once()
                except Exception:  # noqa: BLE001 - a bad pass must not stop the dialer
                    log.exception("dialer pass failed")
                wait = min(self.settings.dialer_tick_seconds, self.reconcile_seconds)
                await self.wait_for_work(stop, wait)
        finally:
            self._loop_running = False
