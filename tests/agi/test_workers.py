"""`ivr agi-server --workers 2`: two processes on one port (SO_REUSEPORT), both serving calls,
each publishing its calls in progress in its own heartbeat row (what the dialer's back-pressure
reads)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from ivr.db.base import make_engine, make_session_factory
from ivr.dialer.backpressure import AGI_ROLE, read_agi_loads

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="SO_REUSEPORT is Linux/BSD only")


def fresh_loads(sessions):  # type: ignore[no-untyped-def]
    try:
        with sessions() as s:
            return read_agi_loads(s, dt.datetime.now(dt.UTC))
    except OperationalError:  # the server has not migrated the new database yet
        return []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def open_call(port: int, i: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A call as Asterisk opens it; the first command is read and left unanswered, so the call
    stays in progress on whichever worker took it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"agi_network: yes\nagi_network_script: ping\nagi_request: agi://127.0.0.1:{port}/ping\n"
                 f"agi_channel: Local/s@w-{i};1\nagi_uniqueid: 9.{i}\n\n".encode())
    line = await asyncio.wait_for(reader.readline(), 30)
    assert line == b'VERBOSE "ivr: pong" 1\n'
    return reader, writer


async def test_two_workers_share_the_port_and_both_serve_calls(tmp_path: Path) -> None:
    port = free_port()
    db_url = f"sqlite:///{tmp_path / 'w.sqlite3'}"
    env = {**os.environ, "IVR_DATABASE_URL": db_url, "IVR_AUDIO_CACHE_DIR": str(tmp_path / "audio"),
           "IVR_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "ivr", "--env-file", "/dev/null", "agi-server", "--port", str(port),
                             "--workers", "2", "--grace", "2"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    calls = []
    try:
        async with asyncio.timeout(60):
            while True:  # both workers listening: each wrote its first heartbeat
                if len(fresh_loads(sessions)) == 2:
                    break
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else b""
                await asyncio.sleep(0.2)
            calls = [await open_call(port, i) for i in range(24)]
            # the kernel spread the 24 connections over both workers: both report calls up
            while True:
                with sessions() as s:
                    loads = read_agi_loads(s, dt.datetime.now(dt.UTC))
                if len(loads) == 2 and sum(x.in_flight for x in loads) == 24:
                    break
                await asyncio.sleep(0.2)
        assert all(x.in_flight > 0 for x in loads), loads
        # every call is served to its end by its worker
        for reader, writer in calls:
            writer.write(b"200 result=1\n")
            assert await asyncio.wait_for(reader.read(), 30) == b""  # the worker closed the call
            writer.close()
        calls = []
    finally:
        for _reader, writer in calls:
            writer.close()
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
        engine.dispose()
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
    with sessions() as s:
        from ivr import heartbeat

        rows = [p for p in heartbeat.read(s, dt.datetime.now(dt.UTC)) if p.role == AGI_ROLE]
    assert len({p.pid for p in rows}) == 2 and all(p.stopped for p in rows)  # each stopped cleanly
