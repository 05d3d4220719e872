"""The whole simulated Asterisk: an AMI listener plus the call engine behind Originate.

Channel model (one choice, kept everywhere): every Originate creates a Local-style pair, as in
the recordings. `;1` runs the dialplan of the Originate's Context (the robot, which connects to
the FastAGI server), `;2` is the callee. Names are `Local/<exten>@<context>-0000000n;1` for a
requested `Local/<exten>@<context>`, and `Local/<number>@<trunk>-0000000n;1` for any other
technology (`PJSIP/79161234567@trunk`, `SIP/trunk/79161234567`; `PJSIP/101` gives
`Local/101@pjsip-…`). Originate variables are set on both halves (VarSet on ;1 in reverse header
order, then on ;2 in header order, as recorded), so the client sees IVR_CALL_ID on every channel
it will see hang up.

The robot context (any context but CONTEXT_OPERATOR) runs what the shipped dialplan runs:
Answer, AMD() when IVR_AMD=1 (AMDSTATUS/AMDCAUSE), AGI(${IVR_AGI_URL}/${IVR_SCRIPT},${IVR_CALL_ID}),
Hangup. CONTEXT_OPERATOR (click-to-call) rings the operator and holds the call up for
`operator_call_seconds`, then hangs up normally.

Refusals: an unknown technology and a full `channel_limit` both answer `OriginateResponse`
Failure with Reason 0 and no channel events (what Asterisk does when the channel driver cannot
create the channel, e.g. a saturated trunk with a call limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence

from ivr import dialplan_vars as dv
from ivr.logsetup import mask_phone
from ivr.sim.agi_text import scan_int
from ivr.sim.ami_server import AmiConnection, AmiMessage, AmiServer
from ivr.sim.channel import Half, SimCall, SimTime
from ivr.sim.dial import dial, originate_response
from ivr.sim.dialplan import Dialplan
from ivr.sim.originate import (
    KNOWN_TECHS,
    OriginateRequest,
    is_true,
    merged,
    parse_originate,
    split_channel,
)
from ivr.sim.scenario import Callee, CallRecord, ScenarioBook
from ivr.sim.sounds import SoundLibrary

log = logging.getLogger(__name__)

REFUSALS = frozenset({"unknown_tech", "channel_limit"})  # CallRecord outcomes with no channel


class SimulatedAsterisk:
    """AMI on `host:ami_port` (0: any free port, read `ami_port` after start()) plus the calls.

    Besides the documented basics: `operator` answers click-to-call originates (default: answers
    after 1 s) and `operator_call_seconds` is how long they stay up; `channelvars` mimics
    manager.conf channelvars= (ChanVariable headers on every channel event); `agi_events` adds
    AGIExecStart/AGIExecEnd events (off by default: they are most of the AMI traffic);
    `restart_seconds` is how long AMI refuses connections during restart(). Every duration is in
    simulated seconds; `wait_idle` takes real seconds.
    """

    def __init__(
        self,
        scenarios: ScenarioBook,
        *,
        users: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        ami_port: int = 0,
        speed: float = 1.0,
        channel_limit: int | None = None,
        sound_duration: Callable[[str], float | None] | None = None,
        default_prompt_seconds: float = 2.0,
        amd_seconds: float = 2.5,
        operator: Callee | None = None,
        operator_call_seconds: float = 30.0,
        channelvars: Sequence[str] = (),
        agi_events: bool = False,
        restart_seconds: float = 0.5,
    ) -> None:
        if channel_limit is not None and channel_limit < 0:
            raise ValueError("channel_limit must not be negative")
        self.scenarios = scenarios
        self.time = SimTime(speed)
        self.speed = speed
        self.channel_limit = channel_limit
        self.sounds = SoundLibrary(sound_duration, default_prompt_seconds)
        self._dialplan = Dialplan(self.sounds, amd_seconds, operator_call_seconds, agi_events)
        self.operator = operator if operator is not None else Callee(answer_after=1.0)
        self.channelvars = tuple(channelvars)
        self.restart_seconds = restart_seconds
        self.calls: list[CallRecord] = []
        self.max_live = 0  # the most calls up at once (fault tests: the channel limit held)
        self._live: dict[str, SimCall] = {}  # ;1 uniqueid → call, until both halves are gone
        self._tasks: set[asyncio.Task[None]] = set()
        self._chan_seq = 0
        self._uid_seq = 0
        self._ami = AmiServer(
            host=host,
            port=ami_port,
            users=users if users is not None else {"ivr": "secret"},
            simtime=self.time,
            actions={
                "Originate": self._originate,
                "Status": self._status,
                "CoreShowChannels": self._core_show_channels,
                "Hangup": self._hangup_action,
            },
        )

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        await self._ami.start()
        log.info(
            "sim: Asterisk AMI listening on %s:%d (speed x%g)",
            self._ami.host,
            self._ami.port,
            self.speed,
        )

    async def stop(self) -> None:
        self._ami.close_sessions(restart=False)
        await self._drop_calls()
        await self._ami.wait_closed()

    async def restart(self, graceful: bool = False) -> None:
        """`core restart now` (calls dropped, AMI closed, refused for `restart_seconds`, then
        back with Uptime 0) or `core restart gracefully` (actions answer "Asterisk is shutting
        down" until the calls end, then the same). Returns once AMI listens again."""
        if graceful:
            self._ami.shutting_down = True
            while self._tasks:
                await asyncio.wait(set(self._tasks))
        self._ami.close_sessions(restart=True)
        await self._drop_calls()
        await self._ami.wait_closed()
        await self.time.sleep(self.restart_seconds)
        await self._ami.start()

    async def _drop_calls(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def cut_ami(self) -> None:
        """Drop every AMI connection without a word (the calls go on); clients reconnect."""
        self._ami.drop_connections()

    def live_calls(self) -> int:
        """Calls with a channel still up. A call whose two channels have both sent their Hangup
        is gone for Asterisk (and for the dialer, which frees the line then) even if its task
        here has not finished yet: counting it would see more lines than Asterisk has up."""
        return sum(1 for call in self._live.values() if not (call.one.gone and call.two.gone))

    def hangup_all(self, cause: int = 16) -> int:
        """Hang up every live call from Asterisk's side (CLI `channel request hangup all`); a
        ringing call ends unanswered. Returns how many calls were asked to hang up."""
        calls = list(self._live.values())
        for call in calls:
            call.ami_hangup(cause)
        return len(calls)

    def originates_by_number(self) -> dict[str, int]:
        """How many Originates created a channel, per called number (refusals not counted)."""
        counts: dict[str, int] = {}
        for record in self.calls:
            if record.outcome not in REFUSALS:
                counts[record.number] = counts.get(record.number, 0) + 1
        return counts

    @property
    def ami_port(self) -> int:
        return self._ami.port

    @property
    def active_calls(self) -> int:
        return len(self._tasks)

    async def wait_idle(self, timeout: float) -> bool:
        """True once every call has finished; False after `timeout` real seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._tasks:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True

    # -- AMI actions ---------------------------------------------------------------------
    async def _originate(self, conn: AmiConnection, msg: AmiMessage) -> None:
        req = parse_originate(msg)
        if isinstance(req, str):
            conn.error(msg, req)
            return
        if is_true(msg.get("Async")):
            conn.respond(msg, "Success", [("Message", "Originate successfully queued")])
            self._spawn(req, None)
            return
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._spawn(req, done)
        if await done:
            conn.respond(msg, "Success", [("Message", "Originate successfully queued")])
        else:
            conn.error(msg, "Originate failed")

    def _live_halves(self) -> list[tuple[SimCall, Half]]:
        return [(c, h) for c in self._live.values() for h in (c.one, c.two) if not h.gone]

    async def _status(self, conn: AmiConnection, msg: AmiMessage) -> None:
        wanted = msg.get("Channel")
        names = [v.strip() for v in (msg.get("Variables") or "").split(",") if v.strip()]
        halves = self._live_halves()
        if wanted:
            halves = [(c, h) for c, h in halves if h.name == wanted]
            if not halves:
                conn.error(msg, "No such channel")
                return
        conn.respond(
            msg, "Success", [("EventList", "start"), ("Message", "Channel status will follow")]
        )
        tail = [("ActionID", msg.action_id)] if msg.action_id is not None else []
        for call, half in halves:
            rows = [("Event", "Status"), ("Privilege", "Call"), *half.snapshot()]
            rows += [
                ("Type", "Local"),
                ("DNID", ""),
                ("EffectiveConnectedLineNum", half.conn_num),
                ("EffectiveConnectedLineName", half.conn_name),
                ("TimeToHangup", "0"),
                ("BridgeID", ""),
                ("Application", half.application),
                ("Data", half.app_data),
                ("Nativeformats", "(ulaw)"),
                ("Readformat", "ulaw"),
                ("Readtrans", ""),
                ("Writeformat", "ulaw"),
                ("Writetrans", ""),
                ("Callgroup", "0"),
                ("Pickupgroup", "0"),
                ("Seconds", str(int(self.time.elapsed(call.record.originated_at)))),
            ]
            rows += [("Variable", f"{n}={half.variables.get(n, '')}") for n in names]
            conn.send(rows + tail)
        conn.send(
            [
                ("Event", "StatusComplete"),
                *tail,
                ("EventList", "Complete"),
                ("ListItems", str(len(halves))),
                ("Items", str(len(halves))),
            ]
        )

    async def _core_show_channels(self, conn: AmiConnection, msg: AmiMessage) -> None:
        halves = self._live_halves()
        conn.respond(msg, "Success", [("EventList", "start"), ("Message", "Channels will follow")])
        head = [("ActionID", msg.action_id)] if msg.action_id is not None else []
        for call, half in halves:
            secs = int(self.time.elapsed(call.record.originated_at))
            conn.send(
                [("Event", "CoreShowChannel"), *head, *half.snapshot()]
                + [
                    ("Application", half.application),
                    ("ApplicationData", half.app_data),
                    ("Duration", f"{secs // 3600:02d}:{secs % 3600 // 60:02d}:{secs % 60:02d}"),
                    ("BridgeId", ""),
                ]
            )
        conn.send(
            [
                ("Event", "CoreShowChannelsComplete"),
                *head,
                ("EventList", "Complete"),
                ("ListItems", str(len(halves))),
            ]
        )

    async def _hangup_action(self, conn: AmiConnection, msg: AmiMessage) -> None:
        wanted = msg.get("Channel")
        if not wanted:
            conn.error(msg, "No channel specified")
            return
        cause = scan_int(msg.get("Cause") or "") or 16
        if len(wanted) > 2 and wanted.startswith("/") and wanted.endswith("/"):
            try:
                pattern = re.compile(wanted[1:-1])
            except re.error:
                conn.error(msg, "Invalid regex")
                return
            found = [(c, h) for c, h in self._live_halves() if pattern.search(h.name)]
        else:
            found = [(c, h) for c, h in self._live_halves() if h.name == wanted]
        if not found:
            conn.error(msg, "No such channel")
            return
        conn.respond(msg, "Success", [("Message", "Channel Hungup")])
        for call, half in found:
            if half is call.two and call.record.answered:
                call.far_end_hangup("ami")
            else:
                call.ami_hangup(cause)

    # -- calls ---------------------------------------------------------------------------
    def _emit(self, event: str, privilege: str, headers: list[tuple[str, str]]) -> None:
        self._ami.broadcast(event, privilege, headers)

    def _spawn(self, req: OriginateRequest, done: asyncio.Future[bool] | None) -> None:
        task = asyncio.get_running_loop().create_task(self._run(req, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, req: OriginateRequest, done: asyncio.Future[bool] | None) -> None:
        number, exten, local_ctx = split_channel(req.tech, req.resource)
        variables = merged(req.variables)
        record = CallRecord(
            action_id=req.action_id,
            call_id=variables.get(dv.CALL_ID),
            number=number,
            requested_channel=req.channel,
            context=req.context,
            outcome="failed",
            speed=self.speed,
            originated_at=self.time.now(),
        )
        self.calls.append(record)
        call: SimCall | None = None
        try:
            refusal = self._refusal(req)
            callee = None if refusal else self._callee(req, number)
            if refusal or callee is None:
                record.outcome = refusal or "failed"
                record.reason = 0
                if done is None:
                    originate_response(self._emit, req, False, 0, req.channel, "<unknown>")
                return
            record.outcome = callee.outcome
            call = self._new_call(req, record, callee, exten, local_ctx)
            self._live[call.one.uniqueid] = call
            self.max_live = max(self.max_live, self.live_calls())
            answered = await dial(req, call, async_=done is None)
            if done is not None and not done.done():
                done.set_result(answered)
            if answered:
                await self._dialplan.run(req, call)
        except asyncio.CancelledError:
            if call is not None:
                call.kill("restart")
            record.hangup_by = record.hangup_by or "restart"
            raise
        except Exception:
            log.exception("sim: call %s crashed", req.action_id)
            if call is not None:
                call.kill("network")
        finally:
            if done is not None and not done.done():
                done.set_result(False)
            if call is not None:
                call.agent.stop()
                self._live.pop(call.one.uniqueid, None)
            record.ended_at = self.time.now()

    def _refusal(self, req: OriginateRequest) -> str | None:
        if req.tech.lower() not in KNOWN_TECHS:
            return "unknown_tech"
        if self.channel_limit is not None and self.live_calls() >= self.channel_limit:
            log.info(
                "sim: channel limit %d reached, refusing %s",
                self.channel_limit,
                mask_phone(req.channel),
            )
            return "channel_limit"
        return None

    def _callee(self, req: OriginateRequest, number: str) -> Callee | None:
        if req.context == dv.CONTEXT_OPERATOR:
            return self.operator
        try:
            return self.scenarios(number)
        except Exception:
            log.exception("sim: scenario book failed for %s", mask_phone(number))
            return None

    def _new_call(
        self, req: OriginateRequest, record: CallRecord, callee: Callee, exten: str, ctx: str
    ) -> SimCall:
        seq = self._chan_seq
        self._chan_seq += 1
        epoch = int(time.time())
        uid1, uid2 = f"{epoch}.{self._uid_seq}", f"{epoch}.{self._uid_seq + 1}"
        self._uid_seq += 2
        base = f"Local/{exten}@{ctx}-{seq:08x}"
        language = callee.language or "en"
        one = Half(
            f"{base};1",
            uid1,
            uid1,
            ctx,
            exten,
            state=0,
            language=language,
            variables={},
            chanvars=self.channelvars,
        )
        two = Half(
            f"{base};2",
            uid2,
            uid1,
            ctx,
            exten,
            state=4,
            language=language,
            variables={},
            chanvars=self.channelvars,
        )
        one.application, one.app_data = "AppDial2", "(Outgoing Line)"
        record.channel, record.uniqueid = one.name, uid1
        return SimCall(
            record=record,
            callee=callee,
            one=one,
            two=two,
            timeout_ms=req.timeout_ms,
            exten=req.exten,
            caller_num=req.caller_num,
            caller_name=req.caller_name,
            simtime=self.time,
            emit=self._emit,
        )
