"""Classic AGI in process on the real debt-call route: the spawned entry point plays exactly the
files the dialer prepared, reading its manifest, without importing the renderer or Alembic; both
when in process is asked for (IVR_CLASSIC_RELAY=off) and when the default relay finds no FastAGI
server at the address the settings name and the call falls back to running here."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.call.audio_source import CallAudioSource
from ivr.clock import SystemClock
from ivr.config import load_settings
from ivr.db.models import Account, CallAttempt, CallStep, DebtCase, Outcome, PhoneNumber
from ivr.prompts.render import PromptStore
from ivr.voice.audio import AudioSegment
from ivr.voice.cache import AudioCache
from ivr.voice.prepare import AudioPreparer
from ivr.wiring import Database
from tests.agi.replay import load
from tests.voice.helpers import tone_pcm

REPO = Path(__file__).resolve().parents[2]


class ToneEngine:
    """Stands in for espeak-ng while the test stages: only file names matter here."""

    name = "tone"
    options = ""

    def voice_for(self, language: str) -> str:
        return language

    def synthesize(self, text: str, language: str) -> AudioSegment:
        return AudioSegment(data=tone_pcm(440 + len(text), 8000, 0.3), sample_width=2, frame_rate=8000, channels=1)


def stage(db: Database, env: dict[str, str]) -> tuple[str, dict[str, str]]:
    settings = load_settings(None, environ=env)
    today = dt.date.today()
    with db.sessions.begin() as s:
        acc = Account(external_id="C-1", holder_name="Иванов Иван Иванович", service_name="охрана",
                      balance=Decimal("1800.50"), currency="RUB", due_date=today - dt.timedelta(days=12),
                      block_date=today + dt.timedelta(days=3), timezone="Europe/Moscow", language="ru")
        acc.phones.append(PhoneNumber(number="+79161234567", priority=1))
        s.add(acc)
        s.flush()
        case = DebtCase(account_id=acc.id, opened_on=acc.due_date, amount_initial=acc.balance,
                        amount_owed=acc.balance, stage_code="reminder")
        s.add(case)
        s.flush()
        attempt = CallAttempt(debt_case_id=case.id, account_id=acc.id, phone_number_id=acc.phones[0].id,
                              phone="+79161234567", stage_code="reminder", language="ru", action_id="dialer-0123abcd",
                              server="sim", state="dialing", originated_at=dt.datetime.now(dt.UTC).replace(tzinfo=None))
        s.add(attempt)
        s.flush()
        attempt_id = attempt.id
    preparer = AudioPreparer(PromptStore(settings.prompts_dir, db.sessions),
                             AudioCache(settings.audio_cache_dir, ToneEngine()), settings)  # type: ignore[arg-type]
    source = CallAudioSource(db.sessions, preparer, SystemClock(), settings)
    import asyncio

    asyncio.run(source.prepare_attempt(attempt_id))
    return "dialer-0123abcd", dict(source._ready["dialer-0123abcd"].audio.phrases)


@pytest.mark.parametrize("mode", ["off", "fallback"])
def test_in_process_call_reads_the_manifest_and_imports_no_renderer(db: Database, tmp_path: Path,
                                                                     transcripts: Path, mode: str) -> None:
    env = {"IVR_DATABASE_URL": str(db.engine.url), "IVR_AUDIO_CACHE_DIR": str(tmp_path / "audio"),
           "IVR_PROMPTS_DIR": str(REPO / "prompts"), "IVR_LOG_LEVEL": "WARNING"}
    call_id, files = stage(db, env)
    # this checkout's code (the editable install may point elsewhere), run outside it
    child_env = {k: v for k, v in os.environ.items() if k != "IVR_CLASSIC_RELAY" and not k.startswith("IVR_AGI_")}
    child_env |= env | {"PYTHONPATH": str(REPO)}
    closed = socket.socket()  # bound, not listening: the settings' server refuses, and the port stays ours
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    if mode == "off":
        child_env["IVR_CLASSIC_RELAY"] = "off"
        child_env["IVR_ENV_FILE"] = str(tmp_path / "no-such.env")
    else:  # the robot's .env names a FastAGI server that is not running
        (tmp_path / "robot.env").write_text(f"IVR_AGI_HOST=0.0.0.0\nIVR_AGI_PORT={port}\n")
        child_env["IVR_ENV_FILE"] = str(tmp_path / "robot.env")
    err_path = tmp_path / "stderr.txt"
    with open(err_path, "wb") as err:  # a file: the import report could fill a pipe nobody reads yet
        proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "ivr.agi.classic", "debt-call", call_id],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, cwd=tmp_path, env=child_env)
    assert proc.stdin is not None and proc.stdout is not None
    keys = ["1", "2"]  # identity confirmed, then "I have paid"
    commands = []
    try:
        t = load(transcripts, "agi-env")
        proc.stdin.write(("".join(f"{line}\n" for line in t.env_lines) + f"agi_arg_1: {call_id}\n\n").encode())
        proc.stdin.flush()
        while line := proc.stdout.readline().decode().rstrip("\n"):
            commands.append(line)
            if line.startswith("GET VARIABLE"):
                reply = "200 result=0"  # not set (recorded: GET VARIABLE NO_SUCH_VARIABLE)
            elif line.startswith("STREAM FILE") and not line.endswith('""') and keys:
                reply = f"200 result={ord(keys.pop(0))} endpos=17760"  # agi-stream-digit.txt's shape
            elif line.startswith("STREAM FILE"):
                reply = "200 result=0 endpos=11234"
            else:
                reply = "200 result=1"
            proc.stdin.write(reply.encode() + b"\n")
            proc.stdin.flush()
            if line == "HANGUP":
                proc.stdin.close()
                break
        proc.wait(timeout=60)
    finally:
        closed.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    stderr = err_path.read_bytes()
    assert proc.returncode == 0, stderr.decode()[-2000:]
    warnings = [line for line in stderr.decode().splitlines() if line.startswith("ivr classic AGI")]
    if mode == "off":
        assert warnings == []
    else:
        assert warnings == [f"ivr classic AGI: FastAGI server at 127.0.0.1:{port} not reachable (Connection refused): "
                            "running this call in process (slow start)"]
    assert b"79161234567" not in stderr
    streamed = [c.split(" ")[2] for c in commands if c.startswith("STREAM FILE")]
    assert streamed == [files[p] for p in ("greeting", "identity", "debt_message", "menu", "paid_thanks", "closing")]
    imported = {line.split("|")[-1].strip() for line in stderr.decode().splitlines() if line.startswith("import time:")}
    assert "sqlalchemy" in imported  # the importtime report is there ...
    for heavy in ("jinja2", "ivr.voice.prepare", "ivr.prompts.render", "pydub", "alembic"):
        assert heavy not in imported, heavy  # ... and these are not in it
    with db.sessions() as s:
        attempt_id = s.scalar(select(CallAttempt.id).where(CallAttempt.action_id == call_id))
        assert s.scalar(select(Outcome.kind).where(Outcome.attempt_id == attempt_id)) == "paid_claim"
        assert len(list(s.scalars(select(CallStep.id).where(CallStep.attempt_id == attempt_id)))) >= 3
