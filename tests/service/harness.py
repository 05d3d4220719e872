"""Run the product as a user does: the installed `ivr` command as a separate process, on the real
clock, with its own .env and SQLite file in a temporary folder.

`Service` starts `ivr run`, reads its log lines on a thread and lets a test wait for a line (an
event, never a sleep); `ivr(...)` runs another `ivr` command (import, status) against the same
.env; `stop()` sends a signal and waits for the exit. Every wait has a generous deadline that only
bounds a hang (the CI machine is often busy); the real-time bounds a test asserts are its own.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

IVR = str(Path(sys.executable).with_name("ivr"))  # the console script installed with the package


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def daytime_zone(now: dt.datetime | None = None, hour: int = 13) -> str:
    """An Etc/GMT zone in which it is about `hour` o'clock now (inside every default window)."""
    now = now or dt.datetime.now(dt.UTC)
    offset = hour - now.hour
    if offset > 14:
        offset -= 24
    if offset < -12:
        offset += 24
    # POSIX sign convention: Etc/GMT-3 is UTC+3
    return "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def accounts_csv(path: Path, n: int, *, prefix: str = "R", phone_base: int = 5550000, tz: str | None = None,
                 today: dt.date | None = None) -> list[str]:
    """A billing file of `n` accounts 3 days late, due to be blocked in 10 days, in a zone where it
    is daytime; returns the E.164 numbers."""
    today = today or dt.date.today()
    tz = tz or daytime_zone()
    due = (today - dt.timedelta(days=3)).strftime("%d.%m.%Y")
    block = (today + dt.timedelta(days=10)).strftime("%d.%m.%Y")
    rows = ["account;name;phone;balance;currency;due_date;block_date;timezone;language"]
    numbers = []
    for i in range(n):
        number = f"+7916{phone_base + i:07d}"
        numbers.append(number)
        rows.append(f"{prefix}{i:04d};Абонент Тестовый {i};{number};1800,00;RUB;{due};{block};{tz};ru")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return numbers


@dataclass
class Line:
    at: float  # time.monotonic() when it was read
    text: str


@dataclass
class Service:
    """One `ivr run` process with its own folder (.env, SQLite file, audio cache)."""

    folder: Path
    args: Sequence[str] = ()
    env_extra: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None
    lines: list[Line] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _readers: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.agi_port = free_port()
        self.web_port = free_port()
        self.db_path = self.folder / "ivr.sqlite3"
        settings = {
            "IVR_DATABASE_URL": f"sqlite:///{self.db_path}",
            "IVR_AGI_PORT": str(self.agi_port),
            "IVR_AGI_PUBLIC_URL": f"agi://127.0.0.1:{self.agi_port}",
            "IVR_WEB_PORT": str(self.web_port),
            "IVR_AUDIO_CACHE_DIR": str(self.folder / "audio"),
            "IVR_RECORDINGS_DIR": str(self.folder / "recordings"),
            **self.env_extra,
        }
        self.env_file = self.folder / ".env"
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()), encoding="utf-8")

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IVR_")}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def start(self) -> Service:
        self.proc = subprocess.Popen(
            [IVR, "--env-file", str(self.env_file), "run", *self.args], cwd=self.folder, env=self.environ(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, bufsize=1,
        )
        for stream in (self.proc.stdout, self.proc.stderr):
            reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
            reader.start()
            self._readers.append(reader)
        return self

    def _read(self, stream: object) -> None:
        for raw in stream:  # type: ignore[attr-defined]
            with self._cond:
                self.lines.append(Line(time.monotonic(), raw.rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def log(self) -> str:
        with self._cond:
            return "\n".join(line.text for line in self.lines)

    def wait_for(self, pattern: str, timeout: float = 120.0, *, after: int = 0, count: int = 1) -> list[Line]:
        """Wait until `count` lines (from index `after` on) match `pattern`; fail with the log."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [line for line in self.lines[after:] if regex.search(line.text)]
                if len(found) >= count:
                    return found
                if self.proc is not None and self.proc.poll() is not None and not any(r.is_alive() for r in self._readers):
                    raise AssertionError(f"ivr run exited ({self.proc.returncode}) before {pattern!r}:\n{self.log_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {count} line(s) matching {pattern!r} within {timeout:.0f}s:\n{self.log_tail()}")
                self._cond.wait(min(left, 1.0))

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(line.text for line in self.lines[-n:])

    def ivr(self, *args: str, timeout: float = 180.0, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Another `ivr` command against this service's .env (as a user types it in a shell)."""
        return subprocess.run([IVR, "--env-file", str(self.env_file), *args], cwd=self.folder, env=self.environ(),
                              capture_output=True, text=True, timeout=timeout,
                              input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 180.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(10)
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
