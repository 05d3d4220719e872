#!/usr/bin/env python3
"""Calls held by `ivr run` while an admin uploads a big billing file through the web UI (issue 12).

What users run: `ivr run` (FastAGI server, dialer side, the web UI in its child process, imports
in the import process), here with `--no-dialer` because the load generator plays Asterisk.

1. Prepares attempts exactly as scripts/bench_fastagi.py does (same template, same rows), and a
   billing CSV of --upload-rows new accounts (other account numbers and phones).
2. Starts `python -m ivr run --no-dialer` on that database (SQLite) with a web port, and adds an
   admin with `ivr users add`.
3. The load generator of bench_fastagi.py holds --concurrency calls on the real `debt-call`
   route (recorded bytes, --think seconds before each media reply) until --calls were made.
   With --cps N, calls after the first wave start at most N per second, 1/N apart, as the
   dialer's token bucket spaces its originates; without it, a new call replaces each one that
   ends at once (a burst of ends is then a burst of call starts).
4. Once every call slot is up plus --upload-after seconds, an admin (an HTTP client, the same
   requests a browser sends) logs in and runs the import wizard: upload (multipart), preview,
   confirm; then polls the job until the import is done.
5. Reports call turnaround and time to the first command before, during (upload start -> import
   done) and after the upload, with the generator's own loop lag, the delay from the HANGUP
   reply to the connection's close (the script closes it once the call's facts are committed)
   and the calls ended per second; checks every call's outcome and steps were stored and that
   the file's accounts are in the database.

    .venv/bin/python scripts/bench_run_upload.py --concurrency 1000 --calls 9000 --upload-rows 400000 --workdir /tmp/bru
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_fastagi as bf  # noqa: E402  (scripts/ is not a package)

ADMIN = "bench-admin"
PASSWORD = "bench-password-1"  # a throwaway user in the bench's own database
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def upload_csv(workdir: Path, rows: int) -> Path:
    """--upload-rows accounts that are not the calls' accounts (U numbers, +7917 phones)."""
    path = workdir / f"upload-{rows}.csv"
    if path.exists():
        return path
    today = dt.date.today()
    due = (today - dt.timedelta(days=3)).strftime("%d.%m.%Y")
    block = (today + dt.timedelta(days=20)).strftime("%d.%m.%Y")
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["Лицевой счёт", "ФИО", "Телефон", "Сумма долга", "Дата платежа", "Дата блокировки"])
        for i in range(rows):
            w.writerow([f"U{i:07d}", bf.NAMES[i % len(bf.NAMES)], f"+7917{i:07d}",
                        bf.AMOUNTS[i % len(bf.AMOUNTS)].replace(".", ","), due, block])
    return path


def form_of(html: str) -> dict[str, Any]:
    """The preview form as a browser sends it (the selected options)."""
    data: dict[str, Any] = {}
    for name in ("shown_encoding", "shown_delimiter"):
        m = re.search(rf'name="{name}" value="([^"]*)"', html)
        if m is None:
            raise SystemExit(f"the preview page has no {name} field")
        data[name] = m.group(1).replace("&#34;", '"')
    data["encoding"], data["delimiter"] = data["shown_encoding"], data["shown_delimiter"]
    for sel in re.finditer(r'<select name="(map_\w+)" id="[^"]*"[^>]*>(.*?)</select>', html, re.S):
        m = re.search(r'<option value="([^"]*)" selected>', sel.group(2))
        data.setdefault(sel.group(1), []).append(m.group(1) if m else "")
    return data


def wizard(web_port: int, path: Path, marks: dict[str, float]) -> dict[str, Any]:
    """Log in, upload, preview, confirm, wait for the import; `marks` gets perf_counter times."""
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{web_port}", timeout=600) as client:
        page = client.get("/login")
        m = CSRF.search(page.text)
        assert m, "no CSRF field on the login page"
        reply = client.post("/login", data={"csrf": m.group(1), "username": ADMIN, "password": PASSWORD})
        if reply.status_code != 303:
            raise SystemExit(f"login failed: {reply.status_code}")
        m = CSRF.search(client.get("/", follow_redirects=True).text)
        assert m, "no CSRF field after login"
        csrf = m.group(1)
        marks["upload_start"] = time.perf_counter()
        with path.open("rb") as f:
            reply = client.post("/admin/import", data={"csrf": csrf, "kind": "accounts"},
                                files={"file": (path.name, f, "text/csv")})
        if reply.status_code != 303:
            raise SystemExit(f"upload refused: {reply.status_code} {reply.text[:300]}")
        marks["uploaded"] = time.perf_counter()
        location = reply.headers["location"]
        preview = client.get(location)
        marks["previewed"] = time.perf_counter()
        if preview.status_code != 200 or 'id="confirm" disabled' in preview.text:
            raise SystemExit(f"the preview does not let the admin confirm ({preview.status_code})")
        reply = client.post(location, data={"csrf": csrf, **form_of(preview.text), "action": "confirm"})
        if reply.status_code != 303:
            raise SystemExit(f"confirm refused: {reply.status_code} {reply.text[:300]}")
        marks["confirmed"] = time.perf_counter()
        job_url = reply.headers["location"] + ".json"
        while True:
            status = client.get(job_url).json()
            if status["status"] in ("done", "failed"):
                break
            time.sleep(0.5)
        marks["import_done"] = time.perf_counter()
        return dict(status)


def window(values: list[float], at: list[float], start: float, end: float) -> str:
    picked = array("d", (v for v, t in zip(values, at, strict=True) if start <= t <= end))
    if not picked:
        return "no samples"
    return (f"p50={bf.pct(picked, 0.5) * 1e3:.2f} ms  p99={bf.pct(picked, 0.99) * 1e3:.2f} ms  "
            f"max={max(picked) * 1e3:.1f} ms  (n={len(picked)})")


def count_uploaded(db_url: str) -> int:
    from sqlalchemy import create_engine, func, select

    from ivr.db.models import Account

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(Account).where(Account.external_id.like("U%"))) or 0)
    finally:
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=1000, help="calls held at once (default 1000)")
    parser.add_argument("--calls", type=int, default=9000, help="calls in all (default 9000)")
    parser.add_argument("--attempts", type=int, default=0, help="attempts to prepare (default --calls)")
    parser.add_argument("--think", type=float, default=3.0, help="seconds before each media reply (default 3)")
    parser.add_argument("--cps", type=float, default=0.0,
                        help="after the first wave, start calls at most this many per second, as the dialer's "
                             "token bucket does (IVR_CALLS_PER_SECOND); default 0: a call replaces each one "
                             "that ends at once")
    parser.add_argument("--upload-rows", type=int, default=400_000, help="rows of the uploaded file (default 400000)")
    parser.add_argument("--upload-after", type=float, default=20.0,
                        help="seconds after all calls are held before the admin uploads (default 20)")
    parser.add_argument("--workdir", help="keep the prepared database, audio and file here and reuse them")
    parser.add_argument("--pg", metavar="URL", help="PostgreSQL URL (its public schema is dropped!) instead of SQLite")
    args = parser.parse_args()
    args.ramp = args.think * sum(v in bf.THINK_VERBS for v in bf.VERBS)  # one call length

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-run-upload-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db_url, call_ids = bf.prepared_database(args, workdir, args.calls)
    call_ids = call_ids[:args.calls]
    for leftover in ("var",):  # the web UI's secret and uploads of an earlier run
        subprocess.run(["rm", "-rf", str(workdir / leftover)], check=True)
    path = upload_csv(workdir, args.upload_rows)
    print(f"upload file: {path} ({path.stat().st_size / 2**20:.1f} MiB, {args.upload_rows} rows)", flush=True)
    from zoneinfo import ZoneInfo

    promised = dt.datetime.now(ZoneInfo("Europe/Moscow")).date() + dt.timedelta(days=5)
    args.promise_digits = promised.strftime("%d%m")
    nofile = bf.raise_nofile(args.concurrency * 2 + 512)

    port, web_port = bf.free_port(), bf.free_port()
    env = {**os.environ, **bf.bench_environ(workdir, db_url, port), "IVR_WEB_PORT": str(web_port),
           "IVR_WEB_HOST": "127.0.0.1"}
    added = subprocess.run([sys.executable, "-m", "ivr", "users", "add", ADMIN, "--role", "admin", "--password-stdin"],
                           input=PASSWORD + "\n", text=True, cwd=workdir, env=env, capture_output=True)
    if added.returncode != 0 and "exists" not in added.stderr:
        raise SystemExit(f"ivr users add failed: {added.stderr}")
    log_path = workdir / "ivr-run.log"
    result: dict[str, Any] = {}
    marks: dict[str, float] = {}
    with log_path.open("wb") as log_file:
        server = subprocess.Popen([sys.executable, "-m", "ivr", "run", "--no-dialer", "--grace", "10"], cwd=workdir,
                                  env={**env, "PYTHONPATH": str(bf.REPO)}, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            bf.wait_listening(port, server)
            bf.wait_listening(web_port, server)
            print(f"`ivr run --no-dialer` (pid {server.pid}) FastAGI port {port}, web port {web_port}; "
                  f"RLIMIT_NOFILE={nofile}; {len(call_ids)} calls, {args.concurrency} held at once", flush=True)

            def load() -> None:
                result.update(bf.drive(port, call_ids, args, [server.pid]))

            loader = threading.Thread(target=load)
            t0 = time.perf_counter()
            loader.start()
            time.sleep(args.ramp + args.upload_after)  # a benchmark's schedule, not a synchronisation
            print("uploading through the import wizard ...", flush=True)
            status = wizard(web_port, path, marks)
            print(f"  import {status['status']}: upload {marks['uploaded'] - marks['upload_start']:.1f}s, preview "
                  f"{marks['previewed'] - marks['uploaded']:.1f}s, import {marks['import_done'] - marks['confirmed']:.1f}s",
                  flush=True)
            loader.join()
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    bf.show(f"FastAGI, real `debt-call` route in `ivr run` ({'PostgreSQL' if args.pg else 'SQLite'}), whole run", result, len(call_ids))
    turn, turn_at = result["turnaround"], result["turn_at"]
    first, first_at = result["first"], result["first_at"]
    start, end = marks["upload_start"], marks["import_done"]
    ramp_end = t0 + args.ramp
    print(f"  turnaround before the upload (all calls held): {window(turn, turn_at, ramp_end, start)}")
    print(f"  turnaround DURING the upload and import ({end - start:.1f}s): {window(turn, turn_at, start, end)}")
    print(f"  turnaround after: {window(turn, turn_at, end, float('inf'))}")
    lag, lag_at = result["lag"], result["lag_at"]
    print(f"  load generator's own loop lag before / DURING / after: {window(lag, lag_at, ramp_end, start)} / "
          f"{window(lag, lag_at, start, end)} / {window(lag, lag_at, end, float('inf'))}")
    # close_delay has one value per completed call, in the order of completed_at
    closes = [t for t in result["completed_at"]][-len(result["close_delay"]):]
    print(f"  HANGUP reply -> connection closed (the call's facts committed) before / DURING / after: "
          f"{window(result['close_delay'], closes, ramp_end, start)} / {window(result['close_delay'], closes, start, end)} / "
          f"{window(result['close_delay'], closes, end, float('inf'))}")
    per_s: dict[int, int] = {}
    for t in result["completed_at"]:
        if start <= t <= end:
            per_s[int(t - start)] = per_s.get(int(t - start), 0) + 1
    if per_s:
        counts = [per_s.get(i, 0) for i in range(int(end - start))]
        print(f"  calls ended per second DURING: min {min(counts)}, max {max(counts)}, "
              f"seconds with none: {sum(1 for c in counts if c == 0)} of {len(counts)}")
    steps = result["turn_step"]
    for step in sorted(set(steps)):
        picked = [(v, t) for v, t, s in zip(turn, turn_at, steps, strict=True) if s == step]
        print(f"    during, before command {step + 1} ({bf.VERBS[step]}): "
              f"{window([v for v, _ in picked], [t for _, t in picked], start, end)}")
    print(f"  first command before: {window(first, first_at, ramp_end, start)}")
    print(f"  first command DURING: {window(first, first_at, start, end)}")
    stored, problems = bf.verify_stored(db_url, call_ids, promised.isoformat())
    print(f"  stored: {stored} of {len(call_ids)} calls with outcome 'promise' and the {len(bf.STEPS)} steps")
    for prob in problems[:5]:
        print(f"  not stored: {prob}")
    uploaded = count_uploaded(db_url)
    print(f"  uploaded accounts in the database: {uploaded} of {args.upload_rows}")
    log_lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if "WARNING" in ln or "ERROR" in ln]
    print(f"  `ivr run` log: {len(log_lines)} warning/error line(s) ({log_path})")
    for ln in log_lines[:5]:
        print(f"    {ln[:200]}")
    failed = bool(result["errors"]) or stored != len(call_ids) or uploaded != args.upload_rows
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
