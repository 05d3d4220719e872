"""Back-pressure (issue 12): the dialer's window follows the FastAGI side's measured delays.

Unit tests drive the pure `Window` with time as an argument; the last test pushes more calls
than a deliberately slow FastAGI server can carry (lines for 40 calls at once, a server that
saturates at about 15) through the real Dialer, the real FastAGIServer and its LoadMeter, with
a small Asterisk stand-in that rings, connects to FastAGI like Asterisk does and reports the
hang-up back to the dialer."""

from __future__ import annotations

import asyncio
import threading
import time

from ivr.agi.channel import AGIChannel
from ivr.agi.load import LoadMeter, LoadSnapshot
from ivr.agi.server import FastAGIServer
from ivr.ami.types import CallEnded, OriginateRequest
from ivr.clock import FastClock
from ivr.config import AsteriskServer, Settings
from ivr.dialer.backpressure import AgiGate, GateSettings, Window, combine
from ivr.dialer.engine import Dialer
from ivr.wiring import Database
from tests.dialer.conftest import add_case, make_rules
from tests.dialer.test_engine import START

SETTINGS = GateSettings(max_calls=100, target_ms=100.0, start_window=10, min_window=2, step=2, interval=1.0)


def load(in_flight: int, p99_ms: float, samples: int = 100) -> LoadSnapshot:
    return LoadSnapshot(in_flight=in_flight, p99_ms=p99_ms, max_ms=p99_ms, samples=samples)


def test_the_window_grows_while_the_server_is_fast_and_is_capped() -> None:
    w = Window(SETTINGS, now=0.0)
    assert w.allowance(load(0, 0.0, 0), calls_up=0) == 10
    for i in range(1, 40):
        w.observe(load(w.size, 5.0), calls_up=w.size, now=float(i))
    assert w.size == 100  # max_calls
    assert w.allowance(load(100, 5.0), calls_up=100) == 0


def test_the_window_does_not_grow_when_it_is_not_used() -> None:
    w = Window(SETTINGS, now=0.0)
    for i in range(1, 10):
        w.observe(load(3, 5.0), calls_up=3, now=float(i))
    assert w.size == 10  # 3 calls up of 10 allowed: no evidence the server carries more


def test_a_slow_server_shrinks_the_window_below_the_calls_up() -> None:
    w = Window(SETTINGS, now=0.0)
    w.size = 60
    w.observe(load(60, 450.0), calls_up=60, now=1.0)
    assert w.size == 42 and w.decreases == 1
    assert w.allowance(load(60, 450.0), calls_up=60) == 0  # no new call until 18 of them end
    w.observe(load(60, 450.0), calls_up=60, now=1.5)  # within the interval: no second cut
    assert w.size == 42
    for i in range(2, 30):
        w.observe(load(60, 450.0), calls_up=60, now=float(i))
    assert w.size == SETTINGS.min_window  # never zero: the dialer keeps measuring


def test_the_server_calls_count_even_when_this_dialer_has_fewer_up() -> None:
    w = Window(SETTINGS, now=0.0)
    assert w.allowance(load(8, 5.0), calls_up=2) == 2  # another dialer's 6 calls use the same robot


def test_combine_adds_calls_and_keeps_the_worst_delay() -> None:
    both = combine([load(10, 5.0), load(20, 80.0, 7)])
    assert both == LoadSnapshot(in_flight=30, p99_ms=80.0, max_ms=80.0, samples=107)
    assert combine([]) is None


def test_load_meter_forgets_samples_older_than_its_horizon() -> None:
    now = [100.0]
    meter = LoadMeter(lambda: 4, horizon=5.0, clock=lambda: now[0])
    meter.record(0.9, at=90.0)
    meter.record(0.002, at=99.0)
    snap = meter.snapshot()
    assert snap.in_flight == 4 and snap.samples == 1 and snap.p99_ms == 2.0


async def test_no_measurement_only_the_hard_cap_applies() -> None:
    gate = AgiGate(SETTINGS, lambda: None, now=0.0)
    assert await gate.allowance(calls_up=30, now=1.0) == 70


# --- the whole loop, overloaded -----------------------------------------------------------------
LINES = 40
THINK = 1.0  # seconds of "subscriber" before each reply
COMMANDS = 3
COST_PER_CALL = 0.004  # each command blocks the event loop this long per call up: CPU-bound model
BOUND = 1.0  # seconds: no call may wait longer than this for its first command


class SimulatedAsterisk:
    """Rings for a moment, runs the dialplan's AGI(agi://.../debt-call,<call id>) against the
    FastAGI server as Asterisk does (environment block, replies after the subscriber's think
    time, HANGUP), then reports the hang-up to the dialer."""

    connected = True

    def __init__(self, port: int) -> None:
        self.port = port
        self.dialer: Dialer | None = None
        self.first_command: list[float] = []
        self.up = 0
        self.peak = 0
        self.originated: list[float] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.ended = 0
        self.errors: list[str] = []

    async def originate(self, request: OriginateRequest) -> None:
        self.originated.append(time.monotonic())
        task = asyncio.create_task(self._call(request.variables["IVR_CALL_ID"]))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _call(self, call_id: str) -> None:
        await asyncio.sleep(0.02)  # ringing
        self.up += 1
        self.peak = max(self.peak, self.up)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(f"agi_network: yes\nagi_network_script: debt-call\nagi_request: agi://127.0.0.1/debt-call\n"
                         f"agi_channel: Local/s@sim;1\nagi_uniqueid: 1.{call_id}\nagi_arg_1: {call_id}\n\n".encode())
            sent = time.monotonic()
            first = True
            while True:
                line = await reader.readline()
                if not line:
                    break
                if first:
                    self.first_command.append(time.monotonic() - sent)
                    first = False
                if line.startswith(b"HANGUP"):
                    writer.write(b"200 result=1\nHANGUP\n")
                    continue
                await asyncio.sleep(THINK)
                writer.write(b"200 result=0 endpos=11234\n")
            writer.close()
        except OSError as exc:
            self.errors.append(repr(exc))
        finally:
            self.up -= 1
        assert self.dialer is not None
        await self.dialer.handle_call_ended(CallEnded(call_id, f"1.{call_id}", "Local/s@sim;1", 16,
                                                      "Normal Clearing", "answered"))
        self.ended += 1


class ServerThread:
    """The FastAGI server on its own event loop in a thread, as `ivr agi-server` runs apart from
    the dialer: its CPU-bound stalls do not slow the dialer down by themselves."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: FastAGIServer | None = None
        self._stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        assert self.ready.wait(30)
        assert self.server is not None
        self.port = self.server.port

    async def _main(self) -> None:
        async def costly_route(channel: AGIChannel) -> None:
            # the cost of a command grows with the calls the server carries; the loop is blocked
            # (as by CPU work), so every call's delays grow together
            assert self.server is not None
            for _ in range(COMMANDS):
                time.sleep(COST_PER_CALL * self.server.active_calls)
                await channel.stream_file("hello-world")
            await channel.hangup()

        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.server = FastAGIServer({"debt-call": costly_route}, "127.0.0.1", 0)
        await self.server.start()
        self.ready.set()
        await self._stop.wait()
        await self.server.stop(grace=5)

    async def _snapshot(self) -> LoadSnapshot:
        assert self.server is not None
        return self.server.load.snapshot()

    async def snapshot(self) -> LoadSnapshot:
        """Read on the server's own loop (what its heartbeat would publish)."""
        assert self.loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._snapshot(), self.loop))

    def stop(self) -> None:
        assert self.loop is not None and self._stop is not None
        self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(30)


async def push_calls(db: Database, gate_settings: GateSettings | None, calls: int = LINES) -> tuple[SimulatedAsterisk, AgiGate | None]:
    """Dial `calls` cases over LINES lines through the real Dialer into the costly server."""
    with db.sessions.begin() as s:
        for _ in range(calls):
            add_case(s)

    server = ServerThread()
    sim = SimulatedAsterisk(server.port)
    gate = AgiGate(gate_settings, server.snapshot, now=time.monotonic()) if gate_settings else None
    settings = Settings(calls_per_second=200.0, dialer_tick_seconds=0.1, agi_public_url="agi://127.0.0.1:4573")
    ast = AsteriskServer("sim", "127.0.0.1", 5038, "u", "s", LINES, "PJSIP/{number}@trunk")
    rules = make_rules(days={d: [(0, 24)] for d in range(7)})
    dialer = Dialer(sessions=db.sessions, rules_loader=lambda _s: rules, clock=FastClock(START, 1.0), settings=settings,
                    originators={"sim": sim}, servers=(ast,), dialer_id="bp", agi_gate=gate)
    sim.dialer = dialer
    stop = asyncio.Event()
    loop_task = asyncio.create_task(dialer.run(stop))
    try:
        async with asyncio.timeout(120):
            while sim.ended < calls:
                await asyncio.sleep(0.1)
    finally:
        stop.set()
        await loop_task
        server.stop()
    assert sim.errors == []
    assert len(sim.first_command) == calls
    return sim, gate


async def test_overload_slows_the_dialer_and_no_call_waits_for_its_first_command(db: Database) -> None:
    # the control: without back-pressure the same push fills the lines and calls wait for
    # their first command well past the bound
    free, _ = await push_calls(db, None)
    assert max(free.first_command) > BOUND
    gated, gate = await push_calls(db, GateSettings(max_calls=1000, target_ms=150.0, start_window=5, step=2,
                                                    interval=0.3))
    assert gate is not None
    # with it, no call waited for its first command longer than the bound
    assert max(gated.first_command) <= BOUND, sorted(gated.first_command)[-5:]
    # and the dialer slowed down: far fewer calls up at once than without it, though as many
    # lines were free: its window stopped growing (or was cut) where the delays neared the target
    assert gated.peak <= free.peak / 2, (gated.peak, free.peak)
    assert gate.window.size < LINES / 2


def test_by_default_nothing_is_held_back_until_an_overload_is_measured() -> None:
    w = Window(GateSettings(max_calls=300), now=0.0)
    assert w.allowance(None, calls_up=0) == 300
    w.observe(load(250, 400.0), calls_up=250, now=2.0)
    assert w.size == 175  # cut to 70 % of the calls up at the first measured overload
