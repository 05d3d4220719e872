#!/usr/bin/env python3
"""FastAGI and classic-AGI benchmark: N concurrent calls in one server process.

Phase 1 (FastAGI): one server process (this script with --serve, running ivr.agi.FastAGIServer
with the built-in ``bench`` route: ANSWER, SET VARIABLE, STREAM FILE with escape digits, GET DATA,
GET VARIABLE, SAY NUMBER, GET FULL VARIABLE, VERBOSE, NOOP, HANGUP). This process plays Asterisk
for --calls connections over loopback, ramped in over the first quarter of --seconds; the media
commands (STREAM FILE, GET DATA, SAY NUMBER) are answered after a simulated playback so every call
lasts about 60% of --seconds and all calls are in progress at once. Measured:

* turnaround: from this process writing a reply to it receiving the next command (so it includes
  this driver's own scheduling delay: a conservative number for the server);
* calls held at once (peak), server RSS (VmRSS peak sampled, VmHWM), server CPU per command.

Phase 2 (classic AGI): ``python -m ivr.agi.classic bench`` spawned per call over stdin/stdout pipes
(--classic-calls, --classic-concurrency at a time); per-call CPU and max RSS from wait4(), the
time from spawn to the first command, and turnaround as above.

Everything is bounded in time; run:  .venv/bin/python scripts/bench_fastagi.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import gc
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import time
from array import array
from pathlib import Path

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
    proc = subprocess.Popen([sys.executable, "-m", "ivr.agi.classic", "bench"], stdin=subprocess.PIPE,
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="concurrent FastAGI calls (default 2000)")
    parser.add_argument("--seconds", type=float, default=30.0, help="FastAGI phase length (default 30)")
    parser.add_argument("--classic-calls", type=int, default=50, help="classic AGI calls (default 50, 0 skips)")
    parser.add_argument("--classic-concurrency", type=int, default=4, help="classic processes at a time (default 4)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve_main()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, event loop: asyncio default, "
          f"load average before start: {os.getloadavg()[0]:.2f}")
    result = run_fastagi(args.calls, args.seconds)
    if args.classic_calls > 0:
        run_classic(args.classic_calls, args.classic_concurrency)
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
