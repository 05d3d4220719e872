#!/usr/bin/env python3
"""Classic AGI on the real `debt-call` route: CPU and time to the first command per call.

What it does, all in a temporary directory (SQLite database, audio cache):

1. Stage --calls attempts the way the dialer does before an Originate: account, debt case and a
   `dialing` attempt row, then `CallAudioSource.prepare_attempt` (renders and synthesises every
   phrase and writes the call's audio manifest). With --no-manifest the manifests are deleted
   again, which measures the fall-back (the call start prepares the audio itself, as every call
   did before manifests existed).
2. For each attempt, spawn ``python -m ivr.agi.classic debt-call <call id>`` exactly as Asterisk's
   ``AGI()`` does: the recorded environment block of shared/asterisk-transcripts/agi-env.txt
   (uniqueid and channel made unique per call) on stdin, then a reply to every command the script
   sends. The replies are lines recorded from a real Asterisk in the same transcripts (see
   REPLY_SOURCES); the key presses the subscriber makes (identity "1", then menu "2" = "I have
   paid") reuse the recorded `200 result=<ascii> endpos=<n>` shape of agi-stream-digit.txt with
   that key's code.
3. Report per call: CPU (user+sys of the child, from wait4), time from spawn to the first command
   on stdout, wall time, and check the call's outcome and steps were stored.

--mode says how the AGI processes are set up:

* ``default``: as a site runs it with nothing but the robot's settings: the AGI process gets only
  IVR_ENV_FILE, a .env holding the staged settings and IVR_AGI_HOST=0.0.0.0 / IVR_AGI_PORT of a
  real `ivr agi-server` started here (free port, same database and audio cache), and relays to it
  by default. The call runs in that warm server, whose CPU per call (from /proc/<pid>/stat across
  the calls) is reported beside the AGI process's; then as many other staged calls are placed
  straight over FastAGI (this script as Asterisk's FastAGI client, no AGI process), whose connect
  -> first command is the server's share of the relayed figure;
* ``relay`` (also --relay): the same with IVR_CLASSIC_RELAY=agi://127.0.0.1:PORT set explicitly;
* ``fallback``: the same .env, but its port is bound and not listening: every relay is refused
  and the call falls back to running in the AGI process (what a call costs when the server is down);
* ``in-process``: IVR_CLASSIC_RELAY=off, the call runs in the AGI process.

Run from the checkout:  .venv/bin/python scripts/bench_classic_agi.py [--calls 20] [--no-manifest] [--mode default]
(IVR_BENCH_REPO=<other checkout> runs that checkout's code instead, staging included.)
Bounded: --calls at most 200, each call one process, calls run one after the other.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

# IVR_BENCH_REPO=/path/to/another/checkout measures that checkout's code (e.g. before a change)
REPO = Path(os.environ.get("IVR_BENCH_REPO") or Path(__file__).resolve().parent.parent).resolve()
sys.path.insert(0, str(REPO))

TRANSCRIPTS = Path(os.environ.get("IVR_TRANSCRIPTS", "/work/shared/asterisk-transcripts"))

# command verb -> (transcript, the recorded reply line to that verb in it)
REPLY_SOURCES = {
    "GET VARIABLE": ("agi-basic-commands.txt", "200 result=0"),  # GET VARIABLE NO_SUCH_VARIABLE: no AMD
    "STREAM FILE": ("agi-stream-nodigit.txt", "200 result=0 endpos="),  # played to the end, no key
    "WAIT FOR DIGIT": ("agi-waitdigit.txt", "200 result="),
    "HANGUP": ("agi-script-hangup.txt", "200 result=1"),
    "VERBOSE": ("agi-basic-commands.txt", "200 result=1"),
}
KEY_SHAPE = ("agi-stream-digit.txt", re.compile(r"^<< (200 result=\d+ endpos=\d+)$"))
# what the simulated subscriber presses: identity "yes", then "I have paid" in the menu
KEYS = ["1", "2"]


def recorded_replies() -> tuple[dict[str, str], str]:
    """Replies copied from the recordings (not typed here), and the key-press reply shape."""
    out: dict[str, str] = {}
    for verb, (name, prefix) in REPLY_SOURCES.items():
        lines = (TRANSCRIPTS / name).read_text(encoding="utf-8").splitlines()
        pending = False
        for line in lines:
            if line.startswith(">> "):
                pending = line[3:].startswith(verb)
            elif pending and line.startswith("<< ") and line[3:].startswith(prefix):
                out[verb] = line[3:]
                break
        if verb not in out:
            raise SystemExit(f"no recorded reply to {verb} starting {prefix!r} in {name}")
    name, shape = KEY_SHAPE
    for line in (TRANSCRIPTS / name).read_text(encoding="utf-8").splitlines():
        m = shape.match(line)
        if m:
            key_reply = re.sub(r"result=\d+", "result={code}", m.group(1))
            return out, key_reply
    raise SystemExit(f"no recorded key press in {name}")


def env_block(i: int, call_id: str) -> bytes:
    """The recorded environment block of a real Asterisk, one call's ids made unique."""
    lines = []
    for line in (TRANSCRIPTS / "agi-env.txt").read_text(encoding="utf-8").splitlines():
        if not line.startswith("<< "):
            continue
        text = line[3:]
        if text == "":
            break
        if text.startswith("agi_uniqueid:"):
            text = f"agi_uniqueid: 1795370949.{1000 + i}"
        elif text.startswith("agi_network:"):
            text = "agi_network: no"  # classic AGI: spawned, not connected
        lines.append(text)
    lines.append(f"agi_arg_1: {call_id}")
    return ("\n".join(lines) + "\n\n").encode()


def stage(workdir: Path, calls: int) -> tuple[dict[str, str], list[str]]:
    """Database, prompts and audio as the dialer leaves them just before it originates."""
    from ivr.call.routes import build_call_parts
    from ivr.clock import SystemClock
    from ivr.config import load_settings
    from ivr.db.models import Account, CallAttempt, DebtCase, PhoneNumber
    from ivr.wiring import open_database

    env = {
        "IVR_DATABASE_URL": f"sqlite:///{workdir / 'ivr.sqlite3'}",
        "IVR_AUDIO_CACHE_DIR": str(workdir / "audio"),
        "IVR_PROMPTS_DIR": str(REPO / "prompts"),
        "IVR_LOG_LEVEL": "WARNING",
    }
    settings = load_settings(None, environ=env)
    db = open_database(settings)  # migrations + seed, once (the classic process does neither)
    _recorder, audio = build_call_parts(settings, db, SystemClock())
    call_ids = []
    with db.sessions.begin() as s:
        for i in range(calls):
            acc = Account(external_id=f"B-{i}", holder_name="Иванов Иван Иванович",
                          service_name="охранная сигнализация", tariff="Базовый", balance=Decimal("1800.50"),
                          currency="RUB", due_date=dt.date.today() - dt.timedelta(days=12),
                          block_date=dt.date.today() + dt.timedelta(days=3), timezone="Europe/Moscow", language="ru")
            acc.phones.append(PhoneNumber(number=f"+7916{1000000 + i}", priority=1))
            s.add(acc)
            s.flush()
            case = DebtCase(account_id=acc.id, opened_on=acc.due_date, amount_initial=acc.balance,
                            amount_owed=acc.balance, stage_code="reminder")
            s.add(case)
            s.flush()
            call_id = f"bench-{uuid.uuid4().hex}"
            s.add(CallAttempt(debt_case_id=case.id, account_id=acc.id, phone_number_id=acc.phones[0].id,
                              phone=acc.phones[0].number, stage_code="reminder", language="ru", action_id=call_id,
                              server="sim", state="dialing", originated_at=dt.datetime.now(dt.UTC).replace(tzinfo=None)))
            call_ids.append(call_id)

    async def prepare_all() -> None:
        from sqlalchemy import select

        with db.sessions() as s:
            ids = list(s.scalars(select(CallAttempt.id).where(CallAttempt.action_id.in_(call_ids))))
        for attempt_id in ids:
            await audio.prepare_attempt(attempt_id)

    started = time.monotonic()
    asyncio.run(prepare_all())
    print(f"staged {calls} attempt(s) (dialer-side preparation) in {time.monotonic() - started:.1f}s", file=sys.stderr)
    db.engine.dispose()
    return env, call_ids


@dataclasses.dataclass
class CallResult:
    cpu: float
    first_command: float
    wall: float
    commands: list[str]
    status: int
    fell_back: bool  # the process said it ran the call itself because no FastAGI server took it


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_agi_server(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """The real `ivr agi-server` on a free port, waited for until it accepts connections."""
    import socket

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ivr", "agi-server", "--port", str(port)], cwd=REPO,
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"agi-server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("agi-server did not start within 60 s")


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def converse(call_id: str, read_line: Any, write: Any, replies: dict[str, str], key_reply: str,
             started: float) -> tuple[list[str], float | None]:
    """Play Asterisk's side until HANGUP; returns the commands and the time of the first one."""
    keys = list(KEYS)
    first = None
    commands: list[str] = []
    while True:
        raw = read_line()
        if not raw:
            break
        if first is None:
            first = time.monotonic() - started
        line = raw.decode().rstrip("\n")
        commands.append(line)
        verb = next((v for v in sorted(replies, key=len, reverse=True) if line.startswith(v)), None)
        if verb is None:
            raise SystemExit(f"call {call_id}: unexpected command {line!r}")
        reply = replies[verb]
        if verb == "STREAM FILE" and not line.endswith('""') and keys:
            reply = key_reply.format(code=ord(keys.pop(0)))
        write(reply.encode() + b"\n")
        if verb == "HANGUP":
            break
    return commands, first


def run_call(i: int, call_id: str, env: dict[str, str], replies: dict[str, str], key_reply: str,
             python_args: list[str] | None = None) -> CallResult:
    # nothing of this shell's own robot settings: only what the mode gives (`env`)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")} | env
    child_env.pop("PYTHONPATH", None)
    err_path = Path(tempfile.gettempdir()) / f"bench-classic-{os.getpid()}-{i}.err"
    started = time.monotonic()
    with open(err_path, "wb") as err:  # a file: -X importtime could fill a pipe read only at the end
        proc = subprocess.Popen([sys.executable, *(python_args or []), "-m", "ivr.agi.classic", "debt-call", call_id],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, cwd=REPO, env=child_env)
    stdin, stdout = proc.stdin, proc.stdout
    assert stdin is not None and stdout is not None

    def write(data: bytes) -> None:
        stdin.write(data)
        stdin.flush()

    try:
        write(env_block(i, call_id))
        commands, first = converse(call_id, stdout.readline, write, replies, key_reply, started)
        stdin.close()
    finally:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.close()
        if not stdin.closed:
            stdin.close()
    wall = time.monotonic() - started
    fell_back = b"running this call in process" in err_path.read_bytes()
    err_path.unlink()
    return CallResult(usage.ru_utime + usage.ru_stime, first if first is not None else float("nan"), wall,
                      commands, proc.returncode, fell_back)


def run_direct(i: int, call_id: str, port: int, replies: dict[str, str], key_reply: str) -> float:
    """The same call as Asterisk's FastAGI client would place it, straight to the server (no AGI
    process): the server's own share of the time to the first command."""
    import socket

    from ivr.agi.relay import network_env

    lines = [line for line in env_block(i, call_id).split(b"\n") if line]
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock, sock.makefile("rb") as f:
        sock.sendall(network_env(lines, "debt-call", [call_id], "127.0.0.1", port))
        _commands, first = converse(call_id, f.readline, sock.sendall, replies, key_reply, started)
        sock.shutdown(socket.SHUT_WR)
        f.read()
    return first if first is not None else float("nan")


def check_stored(env: dict[str, str], call_ids: list[str]) -> tuple[int, int]:
    """Attempts whose outcome was stored as "paid_claim" (what the subscriber keyed), and call steps stored."""
    from sqlalchemy import create_engine, func, select

    from ivr.db.models import CallAttempt, CallStep, Outcome

    engine = create_engine(env["IVR_DATABASE_URL"])
    with engine.connect() as c:
        done = c.scalar(select(func.count()).select_from(CallAttempt).join(Outcome, Outcome.attempt_id == CallAttempt.id)
                        .where(CallAttempt.action_id.in_(call_ids), CallAttempt.result == "answered",
                               Outcome.kind == "paid_claim"))
        steps = c.scalar(select(func.count()).select_from(CallStep).join(CallAttempt, CallAttempt.id == CallStep.attempt_id)
                         .where(CallAttempt.action_id.in_(call_ids)))
    engine.dispose()
    return int(done or 0), int(steps or 0)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--no-manifest", action="store_true",
                        help="delete the manifests after staging: measures the call-start fall-back")
    parser.add_argument("--mode", choices=["default", "relay", "fallback", "in-process"],
                        help="how the AGI processes run the call (see above); default: in-process, "
                             "as before --mode existed")
    parser.add_argument("--relay", action="store_true", help="the same as --mode relay")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--python-args", default="",
                        help="extra interpreter options for the AGI processes, e.g. '-X importtime' or "
                             "'-m cProfile -o /tmp/classic.prof' (profiles the call, not only the start)")
    args = parser.parse_args()
    if not 1 <= args.calls <= 200:
        parser.error("--calls: 1..200")
    if args.relay and args.mode not in (None, "relay"):
        parser.error("--relay is --mode relay")
    mode = "relay" if args.relay else args.mode or "in-process"
    relayed = mode in ("default", "relay")
    replies, key_reply = recorded_replies()
    workdir = Path(tempfile.mkdtemp(prefix="bench-classic-"))
    try:
        stage_env, call_ids = stage(workdir, args.calls * 2 if relayed else args.calls)
        env = stage_env
        direct_ids: list[str] = []
        if relayed:  # the second half is called straight over FastAGI, for the server's share
            call_ids, direct_ids = call_ids[:args.calls], call_ids[args.calls:]
        if args.no_manifest:
            shutil.rmtree(workdir / "audio" / "calls", ignore_errors=True)
        manifests = len(list((workdir / "audio" / "calls").glob("*/*.json")))
        extra = args.python_args.split()
        server: subprocess.Popen[bytes] | None = None
        server_cpu = 0.0
        refusing: socket.socket | None = None
        if relayed:
            server, port = start_agi_server(stage_env)
            server_cpu = proc_cpu(server.pid)
        if mode == "in-process":
            # a checkout from before the relay became the default (IVR_BENCH_REPO) runs in process
            # unasked, and would take "off" for a relay URL
            knows_off = "--in-process" in (REPO / "ivr" / "agi" / "classic.py").read_text(encoding="utf-8")
            env = {**stage_env, "IVR_CLASSIC_RELAY": "off"} if knows_off else stage_env
        elif mode == "relay":
            env = {**stage_env, "IVR_CLASSIC_RELAY": f"agi://127.0.0.1:{port}"}
        else:  # the robot's .env names the server (a port nobody listens on for "fallback")
            if mode == "fallback":
                refusing = socket.socket()
                refusing.bind(("127.0.0.1", 0))
                port = refusing.getsockname()[1]
            env_file = workdir / "robot.env"
            settings = {**stage_env, "IVR_AGI_HOST": "0.0.0.0", "IVR_AGI_PORT": str(port)}
            env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()), encoding="utf-8")
            env = {"IVR_ENV_FILE": str(env_file)}
        try:
            results = [run_call(i, cid, env, replies, key_reply, extra) for i, cid in enumerate(call_ids)]
            if server is not None:
                server_cpu = proc_cpu(server.pid) - server_cpu
                direct = [run_direct(len(call_ids) + i, cid, port, replies, key_reply)
                          for i, cid in enumerate(direct_ids)]
        finally:
            if refusing is not None:
                refusing.close()
            if server is not None:
                server.terminate()
                server.wait(timeout=60)
        failed = [r for r in results if r.status != 0]
        done, steps = check_stored(stage_env, call_ids + direct_ids)
        cpu = [r.cpu for r in results]
        first = [r.first_command for r in results]
        wall = [r.wall for r in results]
        what = f"{manifests} manifest(s) for {len(call_ids) + len(direct_ids)} staged calls" + (" (deleted: --no-manifest)" if args.no_manifest else "")
        what += {"default": ", relayed by default to the `ivr agi-server` of the .env",
                 "relay": ", relayed to `ivr agi-server` (IVR_CLASSIC_RELAY)",
                 "fallback": ", the .env's FastAGI server refuses: fall-back, call run in the AGI process",
                 "in-process": ", call run in the AGI process (IVR_CLASSIC_RELAY=off)"}[mode]
        load = os.getloadavg()
        print(f"classic AGI, real debt-call route, code of {REPO}, {what}, {len(results)} calls, "
              f"{len(results[0].commands)} commands in the first call; load average {load[0]:.1f} / {load[1]:.1f} "
              f"on {os.cpu_count()} cores")
        print(f"  CPU per call           median {statistics.median(cpu):.3f}s  p90 {pct(cpu, 90):.3f}s  max {max(cpu):.3f}s")
        print(f"  spawn -> first command median {statistics.median(first):.3f}s  p90 {pct(first, 90):.3f}s  max {max(first):.3f}s")
        print(f"  wall per call          median {statistics.median(wall):.3f}s")
        if relayed:
            print(f"  agi-server CPU per call (mean over the calls) {server_cpu / len(results):.4f}s")
            print(f"  the same calls straight over FastAGI (no AGI process): connect -> first command "
                  f"median {statistics.median(direct):.3f}s  p90 {pct(direct, 90):.3f}s")
        print(f"  fell back to running in the AGI process: {sum(r.fell_back for r in results)}/{len(results)}")
        print(f"  exit status != 0: {len(failed)};  outcomes stored (paid_claim): {done}/{len(call_ids) + len(direct_ids)};  "
              f"steps stored: {steps}")
        print(f"  commands of the first call: {results[0].commands}")
        # a relayed figure that silently fell back (or a fall-back that relayed) measured the wrong thing
        wrong_path = sum(r.fell_back for r in results) != (len(results) if mode == "fallback" else 0)
        if wrong_path:
            print("  ERROR: not every call took the path this mode measures", file=sys.stderr)
        return 1 if failed or wrong_path or done != len(call_ids) + len(direct_ids) else 0
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
