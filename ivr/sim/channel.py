"""One simulated call: a Local-style channel pair, its variables, and the callee's keypad.

Asterisk's Local channel gives two halves: `;1` runs the robot's dialplan (and the FastAGI
script), `;2` is the callee's side. Digits the callee sends reach `;1` when each digit ends
(DTMFEnd), and only a command that is listening for that digit gets it; every other digit is lost
(agi-dtmf-while-idle.txt, agi-stream-digit-not-escape.txt).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ivr.sim.callee_agent import CalleeAgent
from ivr.sim.scenario import Callee, CallRecord

log = logging.getLogger(__name__)

HANGUP = "hangup"  # what InputWindow.next() returns once the channel is gone
STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}
CAUSE_TXT = {
    0: "Unknown",
    16: "Normal Clearing",
    17: "User busy",
    19: "User alerting, no answer",
    34: "Circuit/channel congestion",
}
Emit = Callable[[str, str, list[tuple[str, str]]], None]  # (event, privilege, headers)


_C_ESCAPES = {
    "\a": "a", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t", "\v": "v",
    "\\": "\\", "'": "'", '"': '"', "?": "?",
}  # fmt: skip


def ami_escape(value: str) -> str:
    """VarSet values go out through Asterisk's ast_escape_c(): the recordings show `\\"` and
    `\\\\` (agi-calls-ami/agi-basic-commands.ami.txt, callfile-success.ami.txt)."""
    if not any(c in _C_ESCAPES for c in value):
        return value
    return "".join("\\" + _C_ESCAPES[c] if c in _C_ESCAPES else c for c in value)


class SimTime:
    """Every wait the simulator makes, in simulated seconds, runs `speed` times faster."""

    def __init__(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed

    def real(self, seconds: float) -> float:
        return seconds / self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) / self.speed)

    def later(self, seconds: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(max(seconds, 0.0) / self.speed, callback)

    @staticmethod
    def at(when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        """`callback` at loop time `when` (a time computed from an earlier schedule)."""
        return asyncio.get_running_loop().call_at(when, callback)

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    def elapsed(self, since: float) -> float:
        """Simulated seconds since the loop time `since`."""
        return (self.now() - since) * self.speed


@dataclass
class Half:
    """One half of the Local pair, as AMI snapshots show it."""

    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    state: int = 0
    priority: int = 1
    cid_num: str = "<unknown>"
    cid_name: str = "<unknown>"
    conn_num: str = "<unknown>"
    conn_name: str = "<unknown>"
    language: str = "en"
    variables: dict[str, str] = field(default_factory=dict)
    chanvars: Sequence[str] = ()
    created: float = field(default_factory=time.time)
    application: str = ""
    app_data: str = ""
    gone: bool = False  # its Hangup event was sent

    def snapshot(self, prefix: str = "") -> list[tuple[str, str]]:
        head = "Channel" if not prefix else prefix + "Channel"
        rows = [
            (head, self.name),
            (prefix + "ChannelState", str(self.state)),
            (prefix + "ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (prefix + "CallerIDNum", self.cid_num),
            (prefix + "CallerIDName", self.cid_name),
            (prefix + "ConnectedLineNum", self.conn_num),
            (prefix + "ConnectedLineName", self.conn_name),
            (prefix + "Language", self.language),
            (prefix + "AccountCode", ""),
            (prefix + "Context", self.context),
            (prefix + "Exten", self.exten),
            (prefix + "Priority", str(self.priority)),
            (prefix + "Uniqueid", self.uniqueid),
            (prefix + "Linkedid", self.linkedid),
        ]
        # manager.conf channelvars= adds these to every snapshot
        rows.extend(
            (prefix + "ChanVariable", f"{n}={self.variables.get(n, '')}") for n in self.chanvars
        )
        return rows


class InputWindow:
    """The digits one running command listens for. Created per command, closed when it ends.

    `digit_due` tells when (event-loop time, as scheduled) the next digit the callee is sending
    will land, or None. A time-out never overtakes a digit that was due before it: on a busy
    machine the loop runs late, and the sender's chain of timers (press → digit start → digit
    end) would otherwise lose a race that the simulated clock says it wins."""

    def __init__(self, accept: str, digit_due: Callable[[], float | None] | None = None) -> None:
        self.accept = accept
        self._digit_due = digit_due
        self._buf: deque[str] = deque()
        self._waiter: asyncio.Future[bool] | None = None
        self.dead = False
        self.closed = False

    def offer(self, digit: str) -> bool:
        if self.closed or self.dead or digit not in self.accept:
            self._wake()  # a time-out held back for this digit may go now
            return False
        self._buf.append(digit)
        self._wake()
        return True

    def hangup(self) -> None:
        self.dead = True
        self._wake()

    def recheck(self) -> None:
        """The callee's plans changed: a held time-out looks at `digit_due` again."""
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(False)

    async def next(self, timeout: float | None) -> str | None:
        """A digit, None on timeout (real seconds; None waits forever), or HANGUP."""
        if self._buf:
            return self._buf.popleft()
        if self.dead:
            return HANGUP
        if timeout is not None and timeout <= 0:
            return None
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        expired = False
        while True:
            waiter: asyncio.Future[bool] = loop.create_future()
            self._waiter = waiter
            handle = None
            if deadline is not None and not expired:
                handle = loop.call_at(deadline, _settle, waiter)
            try:
                expired = await waiter or expired
            finally:
                self._waiter = None
                if handle is not None:
                    handle.cancel()
            if self._buf:
                return self._buf.popleft()
            if self.dead:
                return HANGUP
            if not expired or deadline is None:
                continue  # woken by a digit this command does not take: keep listening
            due = self._digit_due() if self._digit_due is not None else None
            if due is None or due > deadline:
                return None


def _settle(fut: asyncio.Future[bool]) -> None:
    if not fut.done():
        fut.set_result(True)


class SimCall:
    """State shared by the call engine, the AGI peer and the callee agent."""

    def __init__(
        self,
        *,
        record: CallRecord,
        callee: Callee,
        one: Half,
        two: Half,
        timeout_ms: int,
        exten: str,
        caller_num: str,
        caller_name: str,
        simtime: SimTime,
        emit: Emit,
    ) -> None:
        self.record = record
        self.callee = callee
        self.one = one
        self.two = two
        self.timeout_ms = timeout_ms
        self.robot_exten = exten
        self.caller_num = caller_num
        self.caller_name = caller_name
        self.time = simtime
        self.emit = emit
        self.dead = False
        self.hung_up_by: str | None = None
        self.hangup_cause = 16
        self.window: InputWindow | None = None
        self._hangup_listeners: list[Callable[[], None]] = []
        self._hangup_event = asyncio.Event()
        self.agent = CalleeAgent(self)

    # -- variables -----------------------------------------------------------------------
    @property
    def variables(self) -> dict[str, str]:
        return self.one.variables

    @property
    def language(self) -> str:
        return self.one.language

    def set_var(self, name: str, value: str) -> None:
        """SET VARIABLE / Set(): functions change the channel (no VarSet event, as recorded)."""
        upper = name.upper()
        if upper == "CHANNEL(LANGUAGE)":
            self.one.language = value
        elif upper == "CALLERID(NUM)":
            self.one.cid_num = value
        elif upper == "CALLERID(NAME)":
            self.one.cid_name = value
        elif name.endswith(")"):
            log.debug("sim: ignoring write to unsupported function %s", name)
        else:
            self.set_plain(self.one, name, value)

    def set_plain(self, half: Half, name: str, value: str) -> None:
        half.variables[name] = value
        self.emit_half(
            "VarSet", "dialplan,all", half, [("Variable", name), ("Value", ami_escape(value))]
        )

    def get_var(self, name: str) -> str | None:
        """GET VARIABLE semantics: functions, a few built-ins, then channel variables."""
        one = self.one
        upper = name.upper()
        functions = {
            "CHANNEL(LANGUAGE)": one.language,
            "CHANNEL(NAME)": one.name,
            "CHANNEL(UNIQUEID)": one.uniqueid,
            "CHANNEL(LINKEDID)": one.linkedid,
            "CHANNEL(STATE)": STATE_DESC.get(one.state, "Unknown"),
            "CALLERID(NUM)": one.cid_num,
            "CALLERID(NAME)": one.cid_name,
            "CALLERID(ALL)": f'"{one.cid_name}" <{one.cid_num}>',
        }
        if upper in functions:
            return functions[upper]
        if upper.startswith("LEN(") and name.endswith(")"):
            return str(len(name[4:-1]))
        if name.endswith(")"):
            return None
        builtins = {
            "CHANNEL": one.name,
            "UNIQUEID": one.uniqueid,
            "CONTEXT": one.context,
            "EXTEN": one.exten,
            "PRIORITY": str(one.priority),
            "EPOCH": str(int(time.time())),
        }
        if name in one.variables:
            return one.variables[name]
        return builtins.get(name)

    # -- events --------------------------------------------------------------------------
    def emit_half(
        self, event: str, privilege: str, half: Half, extra: Sequence[tuple[str, str]] = ()
    ) -> None:
        self.emit(event, privilege, half.snapshot() + list(extra))

    def emit_hangup(self, half: Half, cause: int) -> None:
        if half.gone:
            return
        half.gone = True
        self.emit_half(
            "Hangup",
            "call,all",
            half,
            [("Cause", str(cause)), ("Cause-txt", CAUSE_TXT.get(cause, "Unknown"))],
        )

    # -- hang-up -------------------------------------------------------------------------
    def add_hangup_listener(self, callback: Callable[[], None]) -> None:
        self._hangup_listeners.append(callback)

    def remove_hangup_listener(self, callback: Callable[[], None]) -> None:
        if callback in self._hangup_listeners:
            self._hangup_listeners.remove(callback)

    def mark_dead(self, by: str, cause: int) -> bool:
        if self.dead:
            return False
        self.dead = True
        self.hung_up_by = by
        self.hangup_cause = cause
        self.record.hangup_by = by
        self.agent.stop()
        if self.window is not None:
            self.window.hangup()
        self._hangup_event.set()
        for callback in list(self._hangup_listeners):
            callback()
        return True

    def far_end_hangup(self, by: str = "callee") -> None:
        """The callee (or an AMI Hangup of ;2) ends the call: ;2 goes at once, ;1 when its
        dialplan (the AGI script) finishes, as in agi-hangup-*.ami.txt."""
        if self.dead:
            return
        two, one = self.two, self.one
        self.emit_half("SoftHangupRequest", "call,all", two, [("Cause", "16")])
        self.emit_half("HangupRequest", "call,all", one, [("Cause", "16")])
        self.emit_hangup(two, 16)
        self.mark_dead(by, 16)

    def script_hangup(self) -> None:
        """AGI HANGUP: a soft hang-up of ;1 (cause 32); both Hangup events come when AGI ends."""
        if self.dead:
            return
        self.emit_half("SoftHangupRequest", "call,all", self.one, [("Cause", "32")])
        self.mark_dead("script", 0)

    def ami_hangup(self, cause: int = 16) -> None:
        if self.dead:
            return
        self.emit_half("SoftHangupRequest", "call,all", self.one, [("Cause", str(cause))])
        self.mark_dead("ami", cause)

    def kill(self, by: str) -> None:
        """Gone without a trace on AMI (core restart now)."""
        self.one.gone = self.two.gone = True
        self.mark_dead(by, 0)

    async def wait_hangup(self, seconds: float | None) -> bool:
        """Wait `seconds` simulated (None: forever); True if the call was hung up meanwhile."""
        if self.dead:
            return True
        if seconds is None:
            await self._hangup_event.wait()
            return True
        try:
            await asyncio.wait_for(self._hangup_event.wait(), self.time.real(seconds))
        except TimeoutError:
            return False
        return True

    # -- input ---------------------------------------------------------------------------
    def open_input(self, accept: str) -> InputWindow:
        """Start listening for `accept` digits. A non-empty list is an input opportunity."""
        window = InputWindow(accept, self.agent.digit_due)
        if self.dead:
            window.hangup()
        self.window = window
        if not self.dead:
            self.agent.on_media()
        if accept and not self.dead:
            self.record.input_opportunities += 1
            self.agent.on_opportunity(window, self.record.input_opportunities)
        return window

    def close_input(self, window: InputWindow) -> None:
        window.closed = True
        if self.window is window:
            self.window = None
        self.agent.on_window_closed(window)

    def dtmf_begin(self, digit: str) -> None:
        self.emit_half(
            "DTMFBegin", "dtmf,all", self.one, [("Digit", digit), ("Direction", "Received")]
        )

    def dtmf_end(self, digit: str) -> None:
        if self.dead:
            return
        self.emit_half(
            "DTMFEnd",
            "dtmf,all",
            self.one,
            [("Digit", digit), ("DurationMs", "100"), ("Direction", "Received")],
        )
        if self.window is not None and self.window.offer(digit):
            self.record.digits_delivered += digit
        else:
            self.record.digits_lost += digit
