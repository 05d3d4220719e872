"""Start-up failures a user meets first are one clear line on the terminal, never a traceback:
a port in use, Asterisk refusing the connection or the login, the database unreachable, and a
password asked for with no terminal to ask on."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ivr.sim import SimulatedAsterisk, book_from_mapping
from tests.service.harness import Service, free_port

AMI_SECRET = "Hn5-right-Bw2c8Jd6Qs1Fg9"


@contextmanager
def listening() -> Iterator[int]:
    """A port some other program already listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


@contextmanager
def simulator() -> Iterator[SimulatedAsterisk]:
    """The simulated Asterisk on its own event loop thread (the product runs in another process)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    sim = SimulatedAsterisk(book_from_mapping({}), users={"ivr": AMI_SECRET})
    asyncio.run_coroutine_threadsafe(sim.start(), loop).result(30)
    try:
        yield sim
    finally:
        asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def asterisk_env(port: int, secret: str) -> dict[str, str]:
    return {"IVR_ASTERISK_SERVERS": "pbx1", "IVR_AST_PBX1_HOST": "127.0.0.1", "IVR_AST_PBX1_PORT": str(port),
            "IVR_AST_PBX1_USER": "ivr", "IVR_AST_PBX1_SECRET": secret, "IVR_AST_PBX1_CHANNELS": "5"}


def one_line_failure(result, code: int) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("ivr ") and "SIMULATOR" not in line]
    assert len(lines) == 1, result.stderr  # one line, besides the simulator banner
    assert result.stderr.rstrip().endswith(lines[0])  # and the last word
    return lines[0]


def test_fastagi_port_in_use(tmp_path: Path) -> None:
    with listening() as port:
        svc = Service(tmp_path, env_extra={"IVR_AGI_PORT": str(port)})
        line = one_line_failure(svc.ivr("run", "--no-web", timeout=120), 1)
    assert f"FastAGI server cannot listen on 127.0.0.1:{port}: the port is in use" in line
    assert "IVR_AGI_PORT" in line


def test_web_port_in_use(tmp_path: Path) -> None:
    with listening() as port:
        svc = Service(tmp_path, env_extra={"IVR_WEB_PORT": str(port)})
        line = one_line_failure(svc.ivr("run", timeout=120), 1)
    assert f"web UI cannot listen on 127.0.0.1:{port}: the port is in use" in line and "IVR_WEB_PORT" in line


def test_ami_wrong_secret(tmp_path: Path) -> None:
    with simulator() as sim:
        svc = Service(tmp_path, env_extra=asterisk_env(sim.ami_port, "Zq8-wrong-Vx3m9Lp2Rt7Yk4"))
        line = one_line_failure(svc.ivr("run", "--no-web", timeout=120), 2)
    assert "Asterisk pbx1" in line and "refused" in line
    assert "IVR_AST_PBX1_SECRET" in line and "Zq8-wrong" not in line


def test_ami_refused(tmp_path: Path) -> None:
    svc = Service(tmp_path, env_extra=asterisk_env(free_port(), AMI_SECRET))
    line = one_line_failure(svc.ivr("run", "--no-web", timeout=120), 1)
    assert "cannot reach Asterisk pbx1" in line and "manager.conf" in line


def test_database_unreachable(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://ivr:hunter2-secret@127.0.0.1:{free_port()}/ivr"
    svc = Service(tmp_path, env_extra={"IVR_DATABASE_URL": url})
    line = one_line_failure(svc.ivr("run", timeout=120), 1)
    assert "is unreachable" in line and "IVR_DATABASE_URL" in line
    assert "hunter2" not in line  # the password is hidden


@pytest.mark.parametrize("command", [("status",), ("import", "accounts", "missing.csv")])
def test_other_commands_say_the_same(tmp_path: Path, command: tuple[str, ...]) -> None:
    url = f"postgresql+psycopg://ivr@127.0.0.1:{free_port()}/ivr"
    svc = Service(tmp_path, env_extra={"IVR_DATABASE_URL": url})
    result = svc.ivr(*command)
    assert result.returncode != 0 and "Traceback" not in result.stderr


def test_users_add_without_a_terminal_points_to_password_stdin(tmp_path: Path) -> None:
    svc = Service(tmp_path)
    result = svc.ivr("users", "add", "boss", "--role", "admin")  # stdin is /dev/null, not a terminal
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "--password-stdin" in result.stderr
    ok = svc.ivr("users", "add", "boss", "--role", "admin", "--password-stdin", stdin="Correct-Horse-Battery-9\n")
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize(("command", "setting", "what"), [
    ("web", "IVR_WEB_PORT", "the web UI"),
    ("agi-server", "IVR_AGI_PORT", "the FastAGI server"),
])
def test_each_service_alone_says_its_port_is_in_use(tmp_path: Path, command: str, setting: str, what: str) -> None:
    with listening() as port:
        svc = Service(tmp_path, env_extra={setting: str(port)})
        line = one_line_failure(svc.ivr(command, timeout=120), 1)
    assert f"{what} cannot listen on 127.0.0.1:{port}: the port is in use" in line and setting in line
