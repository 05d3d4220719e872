#!/usr/bin/env python3
"""FastAGI benchmark of the REAL call path: `ivr agi-server` running the `debt-call` route.

1. Prepares attempts with the product's own code in a fresh SQLite file (or --pg): a billing CSV
   of N accounts through `ivr import accounts`' importer, the ladder's staging, the dialer's
   select/claim, the dialer's audio prepare hook, then marks them sent and dialing as the dialer
   does around the Originate. With --workdir the prepared file is kept as a template and copied
   for every run, so each run starts from the same untouched attempts.
2. Starts `python -m ivr agi-server` (the real command, a subprocess) on that database.
3. Starts a load generator (a separate process) that plays Asterisk's side of FastAGI with the
   bytes of the recorded sessions (shared/asterisk-transcripts: the agi-env-args.txt environment
   block with the route and the call id as argument 1, the recorded replies): the subscriber
   presses 1 at the identity question, 1 ("promise") at the menu, enters a date 5 days ahead and
   confirms it: 9 commands a call (GET VARIABLE, 6 STREAM FILE, GET DATA, HANGUP), with --think
   seconds (default 3, +-20 %) before each of the 7 media replies, so ~21 s a call. It holds
   --concurrency calls at once (the first wave ramped in over one call length, then a new call
   for each that ends) until --calls calls were made.
4. Reports turnaround p50/p99 (load generator writes a reply -> reads the next command), time to
   the first command (connect -> first command), calls/s completed with all calls held, errors,
   server CPU per call (/proc of the server process(es)), and reads the database back: every
   call must have stored outcome 'promise' with the date and its 7 steps in order.

--panoramisk also runs the same 9 commands (captured from the real run) from a minimal panoramisk
FastAGI server with the same load generator, for comparison (pip install '.[bench]').
--protocol-only runs the old protocol-only baseline instead: the built-in `bench` route (no
database, no audio, no call script), in-process server, optionally classic AGI (--classic-calls).

    .venv/bin/python scripts/bench_fastagi.py --concurrency 100 --panoramisk
    .venv/bin/python scripts/bench_fastagi.py --concurrency 2000 --workdir /tmp/bf   # reuse prepared rows
    .venv/bin/python scripts/bench_fastagi.py --concurrency 500 --pg postgresql+psycopg://... --workers 2
    .venv/bin/python scripts/bench_fastagi.py --protocol-only --concurrency 2000 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import csv
import datetime as dt
import gc
import json
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Replies a real Asterisk gives to the bench route's commands (see shared/asterisk-transcripts/).
REPLIES = {
    "ANSWER": "200 result=0",
    "SET VARIABLE": "200 result=1",
    "STREAM FILE": "200 result=0 endpos=11234",
    "GET DATA": "200 result=1234",
    "GET VARIABLE": "200 result=1 (started)",
    "SAY NUMBER": "200 result=0",
    "GET FULL VARIABLE": "200 result=1 (en)",
    "VERBOSE": "200 result=1",
    "NOOP": "200 result=0",
    "HANGUP": "200 result=1",
}
EXPECTED = [
    "ANSWER",
    'SET VARIABLE IVR_BENCH "started"',
    'STREAM FILE beep "0123456789*#"',
    "GET DATA beep 3000 4",
    "GET VARIABLE IVR_BENCH",
    'SAY NUMBER 1800 "#"',
    "GET FULL VARIABLE ${CHANNEL(language)}",
    'VERBOSE "ivr: bench call done" 1',
    "NOOP",
    "HANGUP",
]
MEDIA = ("STREAM FILE", "GET DATA", "SAY NUMBER")


def env_block(i: int, port: int) -> bytes:
    lines = [
        "agi_network: yes",
        "agi_network_script: bench",
        f"agi_request: agi://127.0.0.1:{port}/bench",
        f"agi_channel: Local/s@debtor-sim-{i:08x};1",
        "agi_language: en",
        "agi_type: Local",
        f"agi_uniqueid: 1795370949.{i}",
        "agi_version: 22.10.1",
        "agi_callerid: 79161234567",
        "agi_calleridname: Ivanov Ivan",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        "agi_dnid: unknown",
        "agi_rdnis: unknown",
        "agi_context: robot",
        "agi_extension: s",
        "agi_priority: 4",
        "agi_enhanced: 0.0",
        "agi_accountcode: ",
        "agi_threadid: 140445776074432",
    ]
    return ("\n".join(lines) + "\n\n").encode()


def reply_for(command: str) -> str:
    for prefix, reply in REPLIES.items():
        if command.startswith(prefix):
            return reply
    return "510 Invalid or unknown command"


def pct(values: list[float] | array, q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def proc_status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0])  # kB
    except OSError:
        pass
    return out


def proc_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def raise_nofile(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = need if hard == resource.RLIM_INFINITY else min(max(soft, need), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# =================================================================================================
# PROTOCOL-ONLY BASELINE (--protocol-only): the built-in `bench` route, no database, no call script.
# =================================================================================================

# --- server process ------------------------------------------------------------------------------
def serve_main() -> int:
    import logging

    import ivr.agi.server as server_module
    from ivr.agi.channel import AGIChannel
    from ivr.agi.routing import builtin_routes
    from ivr.agi.server import FastAGIServer, freeze_startup_objects

    logging.basicConfig(level=logging.WARNING)
    inside = array("d")  # server-side turnaround: reply line in -> next command written
    lag = array("d")  # event-loop lateness of a 10 ms ticker

    class TimedChannel(AGIChannel):
        """Measures the server's own share of the turnaround (bench only)."""

        def __init__(self, env, write, **kw):  # type: ignore[no-untyped-def]
            self._t_in = 0.0

            def timed_write(data: bytes) -> None:
                if self._t_in:
                    inside.append(time.perf_counter() - self._t_in)
                write(data)

            super().__init__(env, timed_write, **kw)

        def feed_line(self, line: str) -> None:
            if line != "HANGUP":
                self._t_in = time.perf_counter()
            super().feed_line(line)

    server_module.AGIChannel = TimedChannel  # type: ignore[misc]

    gc_pauses = array("d")  # CPU time of each collection (wall time would include preemption)
    gc_start = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_start[0] = time.thread_time()
        else:
            gc_pauses.append(time.thread_time() - gc_start[0])

    gc.callbacks.append(on_gc)

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            lag.append(time.perf_counter() - t - 0.01)

    async def run() -> None:
        server = FastAGIServer(builtin_routes(), "127.0.0.1", 0, ("127.0.0.1",), close_timeout=5.0)
        await server.start()
        freeze_startup_objects()  # as `ivr agi-server` does
        print(server.port, flush=True)
        tick_stop = asyncio.Event()
        tick = asyncio.create_task(ticker(tick_stop))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        # also stop when the bench process goes away (stdin closes)
        loop.add_reader(sys.stdin.fileno(), stop.set)
        await stop.wait()
        tick_stop.set()
        await tick
        await server.stop(grace=2.0)
        print(f"{pct(inside, 0.5)} {pct(inside, 0.99)} {max(inside, default=0.0)} {pct(lag, 0.99)} "
              f"{max(lag, default=0.0)} {len(gc_pauses)} {max(gc_pauses, default=0.0)}", flush=True)

    profile_to = os.environ.get("BENCH_PROFILE")
    if profile_to:  # BENCH_PROFILE=/tmp/x.prof: cProfile the server process
        import cProfile

        cProfile.runctx("asyncio.run(run())", globals(), locals(), profile_to)
    else:
        asyncio.run(run())
    return 0


# --- FastAGI load driver --------------------------------------------------------------------------
class Stats:
    def __init__(self) -> None:
        self.turnaround = array("d")
        self.active = 0
        self.peak = 0
        self.completed = 0
        self.errors: list[str] = []
        self.commands = 0


class FakeAsterisk(asyncio.Protocol):
    """One call, Asterisk's side."""

    def __init__(self, stats: Stats, media_delay: float, done: asyncio.Future[None]) -> None:
        self.stats = stats
        self.media_delay = media_delay
        self.done = done
        self.buf = b""
        self.step = 0
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buf += data
        while b"\n" in self.buf:
            raw, _, self.buf = self.buf.partition(b"\n")
            self.on_command(raw.decode(), now)

    def on_command(self, line: str, now: float) -> None:
        st = self.stats
        if self.step == 0:
            st.active += 1
            st.peak = max(st.peak, st.active)
        else:
            st.turnaround.append(now - self.sent_at)
        if self.step >= len(EXPECTED) or line != EXPECTED[self.step]:
            st.errors.append(f"step {self.step}: got {line!r}")
        self.step += 1
        st.commands += 1
        reply = reply_for(line)
        if line.startswith(MEDIA):
            delay = self.media_delay * random.uniform(0.8, 1.2)
            self.loop.call_later(delay, self.reply, reply, line == "HANGUP")
        else:
            self.reply(reply, line == "HANGUP")

    def reply(self, reply: str, hangup: bool) -> None:
        assert self.transport is not None
        if self.transport.is_closing():
            return
        self.sent_at = time.perf_counter()
        self.transport.write(reply.encode() + (b"\nHANGUP\n" if hangup else b"\n"))

    def eof_received(self) -> bool:
        # the script half-closed: like Asterisk, a last HANGUP and close
        assert self.transport is not None
        self.transport.write(b"HANGUP\n")
        self.transport.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        st = self.stats
        if self.step > 0:
            st.active -= 1
        if self.step == len(EXPECTED):
            st.completed += 1
        else:
            st.errors.append(f"call ended after {self.step} commands ({exc})")
        if not self.done.done():
            self.done.set_result(None)


async def drive_fastagi(port: int, calls: int, seconds: float, server_pid: int) -> dict[str, float]:
    # This process stands in for Asterisk (C, no garbage collector): its own GC pauses would be
    # charged to the server's turnaround, so it runs without one (the garbage is a few MB).
    gc.collect()
    gc.freeze()
    gc.disable()
    loop = asyncio.get_running_loop()
    stats = Stats()
    ramp = seconds * 0.25
    media_delay = seconds * 0.6 / len(MEDIA)
    dones: list[asyncio.Future[None]] = []
    rss_peak = 0
    sampling = True

    async def sample() -> None:
        nonlocal rss_peak
        while sampling:
            rss_peak = max(rss_peak, proc_status(server_pid).get("VmRSS", 0))
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample())
    cpu0 = proc_cpu(server_pid)
    t0 = time.perf_counter()
    for i in range(calls):
        target = t0 + ramp * i / calls
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        done: asyncio.Future[None] = loop.create_future()
        dones.append(done)
        try:
            transport, _ = await loop.create_connection(
                lambda d=done: FakeAsterisk(stats, media_delay, d), "127.0.0.1", port)  # type: ignore[misc]
        except OSError as exc:
            stats.errors.append(f"connect {i}: {exc}")
            done.set_result(None)
            continue
        transport.write(env_block(i, port))
    await asyncio.wait(dones, timeout=seconds + 30)
    elapsed = time.perf_counter() - t0
    sampling = False
    await sampler
    status = proc_status(server_pid)
    user1, sys1 = proc_cpu(server_pid)
    user, system = user1 - cpu0[0], sys1 - cpu0[1]
    cpu = user + system
    turn = stats.turnaround
    print(f"FastAGI: {calls} calls over {elapsed:.1f}s, completed={stats.completed}, "
          f"errors={len(stats.errors)}, commands={stats.commands}")
    for err in stats.errors[:5]:
        print(f"  error: {err}")
    print(f"  calls held at once (peak): {stats.peak}")
    print(f"  turnaround: p50={pct(turn, 0.50) * 1e3:.2f} ms  p99={pct(turn, 0.99) * 1e3:.2f} ms  "
          f"max={max(turn, default=0) * 1e3:.2f} ms  (n={len(turn)})")
    print(f"  server RSS: peak sampled VmRSS={rss_peak / 1024:.1f} MiB, VmHWM={status.get('VmHWM', 0) / 1024:.1f} MiB")
    print(f"  server CPU: {cpu:.2f} s ({user:.2f} user + {system:.2f} system), "
          f"{cpu / max(stats.commands, 1) * 1e6:.0f} us per command incl. connect/close")
    return {"p99_ms": pct(turn, 0.99) * 1e3, "peak": stats.peak, "errors": len(stats.errors)}


def run_fastagi(calls: int, seconds: float) -> dict[str, float]:
    nofile = raise_nofile(calls * 2 + 256)
    print(f"RLIMIT_NOFILE={nofile}")
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, cwd=REPO)
    assert server.stdout is not None and server.stdin is not None
    try:
        port = int(server.stdout.readline())
        return asyncio.run(asyncio.wait_for(drive_fastagi(port, calls, seconds, server.pid), seconds + 60))
    finally:
        server.stdin.close()
        try:
            server.wait(timeout=10)
            numbers = server.stdout.read().split()
            if len(numbers) == 7:
                p50, p99, mx, lag99, lagmax, _, gcmax = (float(x) * 1e3 for x in numbers)
                print(f"  server-side share (reply in -> next command out): p50={p50:.3f} ms  p99={p99:.3f} ms  "
                      f"max={mx:.2f} ms")
                print(f"  server event-loop lag (10 ms ticker): p99={lag99:.2f} ms  max={lagmax:.2f} ms; "
                      f"GC runs={numbers[5].decode()}, longest GC (CPU)={gcmax:.2f} ms")
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --- classic AGI driver -----------------------------------------------------------------------------
def classic_call(i: int) -> dict[str, object]:
    t_spawn = time.perf_counter()
    # in process: this row compares a process per call running the script with one FastAGI process
    # (the default relay would hand the call to whatever FastAGI server the settings name)
    proc = subprocess.Popen([sys.executable, "-m", "ivr.agi.classic", "--in-process", "bench"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO, bufsize=0)
    assert proc.stdin is not None and proc.stdout is not None
    turn: list[float] = []
    errors: list[str] = []
    first = 0.0
    sent_at = 0.0
    try:
        proc.stdin.write(env_block(i, 0))
        for step, expected in enumerate(EXPECTED):
            line = proc.stdout.readline()
            now = time.perf_counter()
            if step == 0:
                first = now - t_spawn
            else:
                turn.append(now - sent_at)
            command = line.decode().rstrip("\n")
            if command != expected:
                errors.append(f"step {step}: got {command!r}")
                break
            sent_at = time.perf_counter()
            proc.stdin.write(reply_for(command).encode() + b"\n")
        proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    except (OSError, ValueError) as exc:
        errors.append(str(exc))
        proc.kill()
        proc.wait()
        usage = None
    proc.stdout.close()
    return {
        "turn": turn,
        "first": first,
        "cpu": (usage.ru_utime + usage.ru_stime) if usage else float("nan"),
        "maxrss_kib": usage.ru_maxrss if usage else 0,
        "errors": errors,
        "rc": proc.returncode,
    }


def run_classic(calls: int, concurrency: int) -> None:
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(classic_call, range(calls), timeout=120))
    elapsed = time.perf_counter() - t0
    turn = [t for r in results for t in r["turn"]]  # type: ignore[attr-defined]
    cpu = [float(r["cpu"]) for r in results]  # type: ignore[arg-type]
    rss = [int(r["maxrss_kib"]) / 1024 for r in results]  # type: ignore[call-overload]
    first = [float(r["first"]) for r in results]  # type: ignore[arg-type]
    errors = [e for r in results for e in r["errors"]]  # type: ignore[attr-defined]
    bad_rc = sum(1 for r in results if r["rc"] != 0)
    print(f"Classic AGI: {calls} calls, {concurrency} at a time, {elapsed:.1f}s, errors={len(errors)}, "
          f"non-zero exits={bad_rc}")
    for err in errors[:5]:
        print(f"  error: {err}")
    print(f"  per-call CPU: p50={statistics.median(cpu) * 1e3:.0f} ms  max={max(cpu) * 1e3:.0f} ms")
    print(f"  per-call RSS (max RSS): p50={statistics.median(rss):.1f} MiB  max={max(rss):.1f} MiB")
    print(f"  spawn to first command: p50={statistics.median(first) * 1e3:.0f} ms  p99={pct(first, 0.99) * 1e3:.0f} ms")
    print(f"  turnaround: p50={pct(turn, 0.50) * 1e3:.2f} ms  p99={pct(turn, 0.99) * 1e3:.2f} ms  (n={len(turn)})")


# =================================================================================================
# The real call path: `ivr agi-server` running the `debt-call` route on prepared database rows.
# =================================================================================================

TRANSCRIPTS = Path(os.environ.get("IVR_TRANSCRIPTS", str(REPO.parent.parent / "shared" / "asterisk-transcripts")))
ROUTE = "debt-call"
# The promise path of the call script (ivr/call/script.py): 9 commands, 7 stored steps.
VERBS = ["GET VARIABLE", "STREAM FILE", "STREAM FILE", "STREAM FILE", "STREAM FILE", "GET DATA", "STREAM FILE",
         "STREAM FILE", "HANGUP"]
STEPS = ["greet", "identity", "debt_message", "menu", "promise_date", "promise_confirm", "close"]
THINK_VERBS = ("STREAM FILE", "GET DATA")  # the subscriber listens (and presses keys) before these replies


def recorded_env_template() -> list[str]:
    """The agi_ environment block Asterisk 22 sent in agi-env-args.txt (a FastAGI call with
    arguments), as lines; the route, request, channel, uniqueid and arguments are filled per call."""
    path = TRANSCRIPTS / "agi-env-args.txt"
    lines = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("<< agi_"):
            lines.append(raw[3:])
    if not lines:
        raise SystemExit(f"{path}: no agi_ environment block found (set IVR_TRANSCRIPTS)")
    return lines


def recorded_replies() -> dict[str, str]:
    """Reply lines exactly as the recorded Asterisk sent them (shared/asterisk-transcripts)."""

    def reply_after(name: str, command: str) -> str:
        lines = (TRANSCRIPTS / name).read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if line == f">> {command}":
                for nxt in lines[i + 1:]:
                    if nxt.startswith("<< "):
                        return nxt[3:]
        raise SystemExit(f"{name}: no reply to {command!r} recorded")

    return {
        # GET VARIABLE of a variable that is not set (no AMD on the channel): the script goes on
        "unset": reply_after("agi-basic-commands.txt", "GET VARIABLE LAB_C"),
        # STREAM FILE played to the end without a key
        "played": reply_after("agi-stream-digit.txt", 'STREAM FILE hello-world ""'),
        # STREAM FILE interrupted by a key: the recording pressed '5' (result=53); the subscriber
        # here presses '1' (identity yes, menu "promise", confirm), so only the digit code differs
        "key": reply_after("agi-stream-digit.txt", 'STREAM FILE demo-congrats "0123456789*#"').replace("=53 ", "=49 "),
        # GET DATA with 4 digits: the recorded 1234 becomes the promised date as DDMM
        "digits": reply_after("agi-getdata-digits.txt", "GET DATA beep 5000 4"),
        "hangup": reply_after("agi-script-hangup.txt", "HANGUP"),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- preparing attempts through the product's own code ------------------------------------------
NAMES = ("Иванов Иван Иванович", "Петрова Анна Сергеевна", "Сидоров Пётр Алексеевич", "Кузнецова Мария Ильинична")
AMOUNTS = ("1800.50", "2450", "990.10", "3200")
DAY_MINUTES = 24 * 60


def bench_environ(workdir: Path, db_url: str, port: int) -> dict[str, str]:
    return {
        "IVR_DATABASE_URL": db_url,
        "IVR_AUDIO_CACHE_DIR": str(workdir / "audio"),
        "IVR_AGI_HOST": "127.0.0.1",
        "IVR_AGI_PORT": str(port),
        "IVR_LOG_LEVEL": "WARNING",
    }


def prepare_attempts(workdir: Path, db_url: str, n: int) -> tuple[list[str], dict[str, float]]:
    """N accounts imported from a billing CSV (`ivr import accounts`' code), staged by the ladder,
    claimed by the dialer's claim code, audio prepared by the dialer's prepare hook, then marked
    sent and dialing as the dialer does around the Originate. Returns the call ids (IVR_CALL_ID)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from sqlalchemy import delete, update

    from ivr.billing.importer import import_accounts
    from ivr.call.routes import build_call_parts
    from ivr.config import load_settings
    from ivr.db.models import CallWindow, ContactLimit, LadderStage
    from ivr.db.options import set_option
    from ivr.dialer.claims import claim, mark_dialing, mark_originating
    from ivr.dialer.policy import load_rules
    from ivr.dialer.selector import select_candidates
    from ivr.dialer.staging import stage_new_cases
    from ivr.wiring import open_database

    timing: dict[str, float] = {}
    settings = load_settings(None, environ=bench_environ(workdir, db_url, 4573))
    db = open_database(settings)
    tz = ZoneInfo(settings.default_timezone)
    now = dt.datetime.now(dt.UTC)
    today = now.astimezone(tz).date()
    if not 10 <= now.astimezone(tz).hour < 19:
        # the legal hours (ivr.dialer.legal) cut every window: outside them the dialer claims
        # nothing, so claim as at today's local noon (the calls' audio is still staged for today)
        now = dt.datetime.combine(today, dt.time(12, 0), tz).astimezone(dt.UTC)
    with db.sessions.begin() as session:
        # compliance rules opened wide (every day 00:00-24:00, high contact limits): the bench
        # measures the call path, not the hour it happens to run at
        session.execute(delete(CallWindow))
        for weekday in range(8):
            session.add(CallWindow(profile="default", weekday=weekday, start_time=dt.time(0, 0), end_time=dt.time(0, 0)))
        session.execute(update(ContactLimit).values(max_calls=1000))
        session.execute(update(LadderStage).values(window_profile="default", retry_minutes=DAY_MINUTES))
        for key in ("retry_busy_minutes", "retry_no_answer_minutes", "retry_hangup_minutes"):
            set_option(session, key, DAY_MINUTES)

    t = time.perf_counter()
    csv_path = workdir / "accounts.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["Лицевой счёт", "ФИО", "Телефон", "Сумма долга", "Дата платежа", "Дата блокировки",
                    "Часовой пояс", "Язык", "Услуга", "Тариф"])
        for i in range(n):
            w.writerow([f"B{i:07d}", NAMES[i % len(NAMES)], f"+7916{i:07d}", AMOUNTS[i % len(AMOUNTS)].replace(".", ","),
                        (today - dt.timedelta(days=3)).strftime("%d.%m.%Y"),
                        (today + dt.timedelta(days=20)).strftime("%d.%m.%Y"), "Europe/Moscow", "ru",
                        "охранная сигнализация", "Базовый"])
    report = import_accounts(db.sessions, csv_path, settings=settings, today=today)
    timing["import"] = time.perf_counter() - t
    print(f"  import: {report.summary().splitlines()[0]}", flush=True)

    t = time.perf_counter()
    stage_new_cases(db.sessions, settings.default_timezone, now)
    timing["stage"] = time.perf_counter() - t

    t = time.perf_counter()
    attempt_ids: list[int] = []
    call_ids: list[str] = []
    with db.sessions() as session:
        rules = load_rules(session, settings.default_timezone)
        while len(attempt_ids) < n:
            found = select_candidates(session, rules, now, min(500, n - len(attempt_ids)))
            session.commit()
            if not found:
                break
            for cand in found:
                attempt = claim(session, cand, "bench", now, rules=rules, server="bench")
                if attempt is not None:
                    attempt_ids.append(attempt.id)
                    call_ids.append(attempt.action_id)
    timing["claim"] = time.perf_counter() - t
    if len(call_ids) < n:
        raise SystemExit(f"only {len(call_ids)} of {n} cases could be claimed")

    t = time.perf_counter()
    _recorder, audio = build_call_parts(settings, db)

    async def prepare_all() -> None:
        for attempt_id in attempt_ids:
            await audio.prepare_attempt(attempt_id)  # the dialer's prepare hook, before the Originate

    asyncio.run(prepare_all())
    timing["audio"] = time.perf_counter() - t

    with db.sessions() as session:
        for attempt_id in attempt_ids:
            mark_originating(session, attempt_id, now)
            mark_dialing(session, attempt_id)
    db.engine.dispose()
    return call_ids, timing


def verify_stored(db_url: str, call_ids: list[str], promised: str) -> tuple[int, list[str]]:
    """Every call's outcome (promise, with the date) and its 7 steps in order, read back from the
    database. Returns (calls fully stored, problems)."""
    from sqlalchemy import select

    from ivr.db.base import make_engine
    from ivr.db.models import CallAttempt, CallStep, Outcome, Promise

    engine = make_engine(db_url)
    problems: list[str] = []
    ok = 0
    with engine.connect() as conn:
        rows = conn.execute(select(CallAttempt.id, CallAttempt.action_id, Outcome.kind, Outcome.promise_date)
                            .join(Outcome, Outcome.attempt_id == CallAttempt.id, isouter=True)
                            .where(CallAttempt.action_id.in_(call_ids))).all()
        steps: dict[int, list[str]] = {}
        for attempt_id, step in conn.execute(select(CallStep.attempt_id, CallStep.step).order_by(CallStep.attempt_id, CallStep.seq)):
            steps.setdefault(attempt_id, []).append(step)
        promises = {a for (a,) in conn.execute(select(Promise.attempt_id))}
    engine.dispose()
    for attempt_id, action_id, kind, promise_date in rows:
        got = steps.get(attempt_id, [])
        if kind != "promise" or str(promise_date) != promised or got != STEPS:
            problems.append(f"{action_id}: outcome={kind} date={promise_date} steps={got}")
        elif attempt_id not in promises:
            problems.append(f"{action_id}: no promise row")
        else:
            ok += 1
    missing = len(call_ids) - len(rows)
    if missing:
        problems.append(f"{missing} call id(s) not found in the database")
    return ok, problems


# --- the load generator: a separate process playing Asterisk -----------------------------------
class AsteriskSide(asyncio.Protocol):
    """One call as Asterisk plays it over FastAGI: the recorded environment block, then the
    recorded reply to each command, after the subscriber's think time for the media commands."""

    def __init__(self, gen: LoadGen, call_id: str, index: int) -> None:
        self.gen = gen
        self.call_id = call_id
        self.index = index
        self.buf = b""
        self.step = 0
        self.sent_at = 0.0
        self.started = 0.0
        self.commands: list[str] = []
        self.transport: asyncio.Transport | None = None
        self.finished = False
        self.hung_up_at = 0.0  # when the reply to HANGUP went out: the channel is gone from here

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.started = time.perf_counter()
        transport.write(self.gen.env_block(self.call_id, self.index))

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buf += data
        while b"\n" in self.buf:
            raw, _, self.buf = self.buf.partition(b"\n")
            self.on_command(raw.decode("utf-8", "replace"), now)

    def on_command(self, line: str, now: float) -> None:
        gen = self.gen
        if self.step == 0:
            gen.first.append(now - self.started)
            gen.first_at.append(now)
        else:
            gen.turnaround.append(now - self.sent_at)
            gen.turn_at.append(now)  # perf_counter is CLOCK_MONOTONIC: comparable across processes
            gen.turn_step.append(self.step)  # the command that came (1 = the one after the first)
        if self.step >= len(VERBS) or not line.startswith(VERBS[self.step]):
            gen.errors.append(f"{self.call_id} step {self.step}: got {line[:80]!r}")
            assert self.transport is not None
            self.transport.abort()
            return
        if gen.capture is not None and self.index == 0:
            gen.capture.append(line)
        self.step += 1
        gen.commands += 1
        r = gen.replies
        if line.startswith("GET VARIABLE"):
            self.reply(r["unset"])
        elif line.startswith("HANGUP"):
            # as recorded: the reply, then Asterisk's HANGUP notice
            self.reply(r["hangup"] + "\nHANGUP")
            self.hung_up_at = time.perf_counter()
        elif line.startswith("GET DATA"):
            self.later(r["digits"].replace("1234", gen.promise_digits))
        elif line.endswith('""'):
            self.later(r["played"])
        else:
            self.later(r["key"])

    def later(self, reply: str) -> None:
        think = self.gen.think * random.uniform(0.8, 1.2)
        asyncio.get_running_loop().call_later(think, self.reply, reply)

    def reply(self, reply: str) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.sent_at = time.perf_counter()
        self.transport.write(reply.encode() + b"\n")

    def eof_received(self) -> bool:
        # the script half-closed after its last command: a last HANGUP and close (as recorded)
        assert self.transport is not None
        self.transport.write(b"HANGUP\n")
        self.transport.close()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.call_done(self, exc)


class LoadGen:
    def __init__(self, spec: dict[str, object]) -> None:
        self.port = int(spec["port"])  # type: ignore[call-overload]
        self.call_ids: list[str] = list(spec["call_ids"])  # type: ignore[call-overload]
        self.concurrency = int(spec["concurrency"])  # type: ignore[call-overload]
        self.think = float(spec["think"])  # type: ignore[arg-type]
        self.ramp = float(spec["ramp"])  # type: ignore[arg-type]
        self.promise_digits = str(spec["promise_digits"])
        # like the dialer's token bucket (IVR_CALLS_PER_SECOND, burst 1): after the first wave,
        # call starts at least 1/cps apart; 0 = a call replaces each one that ends at once
        self.cps = float(spec.get("cps") or 0.0)  # type: ignore[arg-type]
        self.capture: list[str] | None = [] if spec.get("capture") else None
        self.replies = recorded_replies()
        self.env_lines = recorded_env_template()
        self.turnaround = array("d")
        self.first = array("d")
        self.turn_at = array("d")  # when each turnaround / first command was read (time.perf_counter)
        self.first_at = array("d")
        self.turn_step = array("b")
        # the generator's own lateness (a 10 ms ticker): a turnaround is read when this loop gets
        # to it, so a late generator inflates the server's figure by as much
        self.lag = array("d")
        self.lag_at = array("d")
        self.errors: list[str] = []
        self.commands = 0
        self.active = 0
        self.peak = 0
        self.started = 0
        self.completed_at = array("d")
        self.close_delay = array("d")
        self.all_done = asyncio.Event()
        self.slots = asyncio.Semaphore(self.concurrency)

    def env_block(self, call_id: str, i: int) -> bytes:
        out = []
        for line in self.env_lines:
            key = line.split(":", 1)[0]
            if key == "agi_network_script":
                line = f"agi_network_script: {ROUTE}"
            elif key == "agi_request":
                line = f"agi_request: agi://127.0.0.1:{self.port}/{ROUTE}"
            elif key == "agi_channel":
                line = f"agi_channel: Local/s@debtor-sim-{i:08x};1"
            elif key == "agi_uniqueid":
                line = f"agi_uniqueid: 1795370953.{i}"
            elif key.startswith("agi_arg_"):
                continue
            out.append(line)
        out.append(f"agi_arg_1: {call_id}")  # the dialplan's AGI(${IVR_AGI_URL}/debt-call,${IVR_CALL_ID})
        return ("\n".join(out) + "\n\n").encode()

    def call_done(self, call: AsteriskSide, exc: Exception | None) -> None:
        if call.finished:
            return
        call.finished = True
        self.active -= 1
        if call.step == len(VERBS):
            now = time.perf_counter()
            self.completed_at.append(now)
            if call.hung_up_at:
                # the script closes the connection once the call's facts are committed (its
                # final write waits for them): from outside, the durability delay
                self.close_delay.append(now - call.hung_up_at)
        elif not any(e.startswith(call.call_id) for e in self.errors[-3:]):
            self.errors.append(f"{call.call_id}: ended after {call.step} commands ({exc})")
        self.slots.release()
        if self.started == len(self.call_ids) and self.active == 0:
            self.all_done.set()

    async def ticker(self) -> None:
        while not self.all_done.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            self.lag.append(now - t - 0.01)
            self.lag_at.append(now)

    async def run(self) -> dict[str, object]:
        gc.collect()
        gc.freeze()
        gc.disable()  # stands in for Asterisk (C): its own GC pauses must not count as the server's
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        ticker = asyncio.create_task(self.ticker())
        first_wave = min(self.concurrency, len(self.call_ids))
        last_start = t0
        for i, call_id in enumerate(self.call_ids):
            await self.slots.acquire()
            if i < first_wave and self.ramp > 0:  # the first C calls come in over `ramp` seconds
                delay = t0 + self.ramp * i / first_wave - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif self.cps > 0:
                delay = last_start + 1.0 / self.cps - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            last_start = time.perf_counter()
            self.started += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
            try:
                await loop.create_connection(lambda c=call_id, i=i: AsteriskSide(self, c, i), "127.0.0.1", self.port)  # type: ignore[misc]
            except OSError as exc:
                self.errors.append(f"{call_id}: connect: {exc}")
                self.active -= 1
                self.slots.release()
        last_start = time.perf_counter()
        if self.active == 0:
            self.all_done.set()
        try:
            await asyncio.wait_for(self.all_done.wait(), self.think * len(VERBS) * 3 + 60)
        except TimeoutError:
            self.errors.append(f"{self.active} call(s) still up at the end")
        t_end = time.perf_counter()
        self.all_done.set()
        await ticker
        ramp_end = t0 + self.ramp  # the first wave is in (the ramp is one call length): C calls held from here
        steady = [t for t in self.completed_at if ramp_end <= t <= last_start]
        steady_rate = len(steady) / (last_start - ramp_end) if last_start - ramp_end > 5 else float("nan")
        return {
            "elapsed": t_end - t0, "completed": len(self.completed_at), "errors": self.errors,
            "commands": self.commands, "peak": self.peak, "turnaround": list(self.turnaround),
            "first": list(self.first), "steady_rate": steady_rate,
            "turn_at": list(self.turn_at), "first_at": list(self.first_at), "turn_step": list(self.turn_step),
            "lag": list(self.lag), "lag_at": list(self.lag_at), "completed_at": list(self.completed_at),
            "close_delay": list(self.close_delay),
            "overall_rate": len(self.completed_at) / max(t_end - t0, 1e-9), "capture": self.capture,
            "cpu": sum(proc_cpu(os.getpid())),
        }


def load_main() -> int:
    spec = json.loads(sys.stdin.read())
    raise_nofile(int(spec["concurrency"]) * 2 + 256)
    result = asyncio.run(LoadGen(spec).run())
    print(json.dumps(result))
    return 0


# --- a minimal panoramisk FastAGI server, for comparison -----------------------------------------
def panoramisk_main(port: int) -> int:
    """The same 9 commands (as captured from the real route) sent by panoramisk's FastAGI
    `Application`, with no database and no call script: what the protocol alone costs there."""
    from panoramisk.fast_agi import Application

    commands = json.loads(sys.stdin.readline())

    async def debt_call(request) -> None:  # type: ignore[no-untyped-def]
        for command in commands:
            await request.send_command(command)

    async def run() -> None:
        app = Application()
        app.add_route(ROUTE, debt_call)
        server = await asyncio.start_server(app.handler, "127.0.0.1", port, backlog=4096)
        print("ready", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        server.close()

    logging_off()
    raise_nofile(8192)
    asyncio.run(run())
    return 0


def logging_off() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)


# --- orchestration -----------------------------------------------------------------------------
def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return  # closed at once: the server logs nothing for a connection with no bytes
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"nothing listening on port {port} after {timeout:.0f}s")


def drive(port: int, call_ids: list[str], args: argparse.Namespace, server_pids: list[int], *,
          capture: bool = False) -> dict[str, object]:
    spec = {"port": port, "call_ids": call_ids, "concurrency": args.concurrency, "think": args.think,
            "ramp": args.ramp, "promise_digits": args.promise_digits, "capture": capture,
            "cps": getattr(args, "cps", 0.0)}
    cpu0 = sum(sum(proc_cpu(pid)) for pid in server_pids)
    load = subprocess.run([sys.executable, __file__, "--load"], input=json.dumps(spec).encode(),
                          stdout=subprocess.PIPE, cwd=REPO, check=True)
    cpu1 = sum(sum(proc_cpu(pid)) for pid in server_pids)
    result: dict[str, object] = json.loads(load.stdout)
    result["server_cpu"] = cpu1 - cpu0
    return result


def show(label: str, r: dict[str, object], calls: int) -> None:
    turn = array("d", r["turnaround"])  # type: ignore[arg-type]
    first = array("d", r["first"])  # type: ignore[arg-type]
    errors: list[str] = r["errors"]  # type: ignore[assignment]
    completed = int(r["completed"])  # type: ignore[call-overload]
    cpu = float(r["server_cpu"])  # type: ignore[arg-type]
    print(f"{label}: {calls} calls, {r['peak']} held at once (peak), {float(r['elapsed']):.1f}s, "  # type: ignore[arg-type]
          f"completed={completed}, errors={len(errors)}")
    for err in errors[:5]:
        print(f"  error: {err}")
    print(f"  turnaround (reply written -> next command read, load generator side): p50={pct(turn, 0.5) * 1e3:.2f} ms  "
          f"p99={pct(turn, 0.99) * 1e3:.2f} ms  max={max(turn, default=0) * 1e3:.1f} ms  (n={len(turn)})")
    print(f"  time to first command (connect -> first command): p50={pct(first, 0.5) * 1e3:.1f} ms  "
          f"p99={pct(first, 0.99) * 1e3:.1f} ms  max={max(first, default=0) * 1e3:.1f} ms")
    lag = array("d", r.get("lag", []))  # type: ignore[arg-type]
    print(f"  load generator's own event-loop lag (10 ms ticker, part of every turnaround it reads): "
          f"p99={pct(lag, 0.99) * 1e3:.2f} ms  max={max(lag, default=0) * 1e3:.1f} ms")
    print(f"  calls/s completed: {float(r['steady_rate']):.1f} with all calls held (steady), "  # type: ignore[arg-type]
          f"{float(r['overall_rate']):.1f} over the whole run incl. ramp and drain")  # type: ignore[arg-type]
    print(f"  server CPU: {cpu:.2f} s, {cpu / max(completed, 1) * 1e3:.1f} ms per call; "
          f"load generator CPU {float(r['cpu']):.2f} s")  # type: ignore[arg-type]


def _moscow_today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/Moscow")).date()


def prepared_database(args: argparse.Namespace, workdir: Path, calls: int) -> tuple[str, list[str]]:
    """The database URL and the call ids of `calls` prepared attempts (see `prepare_attempts`);
    on SQLite a fresh copy of the work dir's template, prepared once."""
    template = workdir / "template.sqlite3"
    ids_file = workdir / "call_ids.json"
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average before start: "
          f"{os.getloadavg()[0]:.2f}; work dir {workdir}")
    if args.pg:
        db_url = args.pg
        print("preparing attempts in PostgreSQL (fresh schema) ...", flush=True)
        reset_pg(db_url)
        call_ids, timing = prepare_attempts(workdir, db_url, args.attempts or calls)
    else:
        db_file = workdir / "bench.sqlite3"
        db_url = f"sqlite:///{db_file}"
        # the dialer staged each call's audio manifest for the subscriber's local date: on
        # another day (Europe/Moscow) every call start would prepare its audio instead
        staged_today = (workdir / "audio" / "calls" / _moscow_today().isoformat()).is_dir()
        if not (staged_today and template.exists() and ids_file.exists()
                and len(json.loads(ids_file.read_text())) >= calls):
            print(f"preparing {args.attempts or calls} attempts in a fresh SQLite file ...", flush=True)
            for f in (template, ids_file, db_file):
                f.unlink(missing_ok=True)
            call_ids, timing = prepare_attempts(workdir, f"sqlite:///{template}", max(args.attempts, calls))
            ids_file.write_text(json.dumps(call_ids))
            print("  prepared in " + ", ".join(f"{k} {v:.1f}s" for k, v in timing.items()), flush=True)
        call_ids = json.loads(ids_file.read_text())
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db_file}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(template, db_file)  # every run starts from the same untouched attempts
        db_file.chmod(0o600)
    return db_url, call_ids


def real_main(args: argparse.Namespace) -> int:
    import datetime as dt
    from zoneinfo import ZoneInfo

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-fastagi-"))
    workdir.mkdir(parents=True, exist_ok=True)
    calls = args.calls or args.concurrency * 2
    db_url, call_ids = prepared_database(args, workdir, calls)
    call_ids = call_ids[:calls]
    today = dt.datetime.now(ZoneInfo("Europe/Moscow")).date()
    promised = today + dt.timedelta(days=5)
    args.promise_digits = promised.strftime("%d%m")
    nofile = raise_nofile(args.concurrency * 2 + 512)

    port = free_port()
    env = {**os.environ, **bench_environ(workdir, db_url, port)}
    cmd = [sys.executable, "-m", "ivr", "agi-server", "--grace", "10"]
    if args.workers > 1:
        cmd += ["--workers", str(args.workers)]
    log_path = workdir / "agi-server.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_listening(port, server)
            pids = settled_pids(server.pid)
            print(f"`ivr agi-server` (pid {server.pid}, {len(pids)} process(es)) on port {port}; "
                  f"RLIMIT_NOFILE={nofile}; {calls} calls, {args.concurrency} held at once, think time "
                  f"{args.think:.1f}s before each of the {sum(v in THINK_VERBS for v in VERBS)} media replies", flush=True)
            result = drive(port, call_ids, args, pids, capture=True)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    show(f"FastAGI, real `{ROUTE}` route (`ivr agi-server`, {'PostgreSQL' if args.pg else 'SQLite'}"
         f"{f', {args.workers} workers' if args.workers > 1 else ''})", result, calls)
    completed_ids = call_ids  # every call was offered; the store must hold each one
    stored, problems = verify_stored(db_url, completed_ids, promised.isoformat())
    print(f"  stored: {stored} of {len(completed_ids)} calls with outcome 'promise' on {promised} and the "
          f"{len(STEPS)} steps {','.join(STEPS)}")
    for prob in problems[:5]:
        print(f"  not stored: {prob}")
    log_lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if "WARNING" in ln or "ERROR" in ln]
    print(f"  server log: {len(log_lines)} warning/error line(s) ({log_path})")
    for ln in log_lines[:5]:
        print(f"    {ln[:200]}")
    failed = bool(result["errors"]) or stored != len(completed_ids)

    if args.panoramisk:
        captured: list[str] = result["capture"]  # type: ignore[assignment]
        port2 = free_port()
        pserver = subprocess.Popen([sys.executable, __file__, "--panoramisk-serve", str(port2)], cwd=REPO,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert pserver.stdin is not None and pserver.stdout is not None
        try:
            pserver.stdin.write((json.dumps(captured) + "\n").encode())
            pserver.stdin.flush()
            pserver.stdout.readline()
            presult = drive(port2, call_ids, args, [pserver.pid])
        finally:
            pserver.send_signal(signal.SIGTERM)
            pserver.wait(timeout=30)
        show("FastAGI, panoramisk 1.4 `Application` sending the same 9 commands (no database, no call script)",
             presult, calls)
        failed = failed or bool(presult["errors"])
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def child_pids(pid: int) -> list[int]:
    """Every descendant of `pid` (the workers of `--workers` and each one's facts writer process),
    as started by any thread."""
    out: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as f:
                    kids = [int(x) for x in f.read().split()]
            except OSError:
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def settled_pids(pid: int, *, quiet: float = 1.0, limit: float = 15.0) -> list[int]:
    """`pid` and its descendants once no process was added for `quiet` seconds (workers and
    their writer processes start after the first worker listens)."""
    pids, since, deadline = [pid, *child_pids(pid)], time.monotonic(), time.monotonic() + limit
    while time.monotonic() < deadline and time.monotonic() - since < quiet:
        time.sleep(0.2)
        now = [pid, *child_pids(pid)]
        if sorted(now) != sorted(pids):
            pids, since = now, time.monotonic()
    return pids


def reset_pg(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=500, help="calls held at once (default 500)")
    parser.add_argument("--calls", type=int, default=0, help="calls in all (default twice --concurrency)")
    parser.add_argument("--attempts", type=int, default=0, help="attempts to prepare (default --calls)")
    parser.add_argument("--think", type=float, default=3.0,
                        help="seconds of subscriber time before each media reply (default 3.0, ~21 s a call)")
    parser.add_argument("--cps", type=float, default=0.0,
                        help="after the first wave, start calls at most this many per second, as the dialer's "
                             "token bucket does; default 0: a call replaces each one that ends at once")
    parser.add_argument("--ramp", type=float, default=0.0,
                        help="seconds over which the first --concurrency calls come in (default: one call length)")
    parser.add_argument("--workdir", help="keep the prepared database and audio here and reuse them")
    parser.add_argument("--pg", metavar="URL", help="PostgreSQL URL (its public schema is dropped!) instead of SQLite")
    parser.add_argument("--workers", type=int, default=1, help="`ivr agi-server --workers N` (default 1)")
    parser.add_argument("--panoramisk", action="store_true",
                        help="also run the same commands against a minimal panoramisk server (pip install '.[bench]')")
    parser.add_argument("--protocol-only", action="store_true",
                        help="the old baseline instead: the built-in `bench` route, no database, no call script")
    parser.add_argument("--seconds", type=float, default=30.0, help="--protocol-only: phase length (default 30)")
    parser.add_argument("--classic-calls", type=int, default=0, help="--protocol-only: classic AGI calls (0 skips)")
    parser.add_argument("--classic-concurrency", type=int, default=4, help="--protocol-only: classic processes at a time")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--panoramisk-serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve_main()
    if args.load:
        return load_main()
    if args.panoramisk_serve:
        return panoramisk_main(args.panoramisk_serve)
    if args.ramp <= 0:
        args.ramp = args.think * sum(v in THINK_VERBS for v in VERBS)
    if args.protocol_only:
        print("PROTOCOL-ONLY BASELINE: the built-in `bench` route (no database, no audio, no call script)")
        result = run_fastagi(args.concurrency, args.seconds)
        if args.classic_calls > 0:
            run_classic(args.classic_calls, args.classic_concurrency)
        return 0 if result["errors"] == 0 else 1
    return real_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
