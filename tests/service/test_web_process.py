"""`ivr run` serves the web UI from a child process (issue 12: web work never holds the GIL the
calls need): the real `ivr run`, its real child, a real HTTP client."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path

from tests.service.harness import Service

SIM = ["--sim-lines", "2"]
WEB_LINE = r"web UI on http://\S+ \(web process (\d+)\)"


def login_page(service: Service) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{service.web_port}/login", timeout=60) as reply:
        return int(reply.status)


def gone(pid: int) -> bool:
    """No such process, or a zombie nobody reaped yet (PID 1 of a container may not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def wait_gone(pid: int, timeout: float, service: Service) -> None:
    deadline = time.monotonic() + timeout
    while not gone(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} still running after {timeout:.0f}s:\n{service.log_tail()}")
        time.sleep(0.2)


def web_pid(service: Service, count: int = 1) -> int:
    import re

    line = service.wait_for(WEB_LINE, timeout=180, count=count)[count - 1]
    match = re.search(WEB_LINE, line.text)
    assert match is not None
    return int(match.group(1))


def test_web_ui_runs_in_a_supervised_child_that_outlives_ctrl_c_until_calls_are_done(tmp_path: Path) -> None:
    service = Service(tmp_path / "robot", SIM).start()
    try:
        first = web_pid(service)
        assert service.proc is not None and first != service.proc.pid
        assert login_page(service) == 200

        # a web process that dies is started again; the listening socket stayed open meanwhile
        os.kill(first, signal.SIGKILL)
        service.wait_for(rf"the web UI process {first} ended", timeout=60)
        second = web_pid(service, count=2)
        assert second != first
        assert login_page(service) == 200

        # Ctrl-C reaches the whole process group: the web UI ignores it, `ivr run` stops it
        os.kill(second, signal.SIGINT)
        assert login_page(service) == 200
        assert service.stop(signal.SIGINT) == 0
        wait_gone(second, 60, service)
        assert "web UI process" in service.log() and service.log().count("ended (exit code") == 1
    finally:
        service.kill()


def running_in(folder: Path) -> set[int]:
    """Live processes whose working directory is `folder` (`ivr run` and all it started)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == folder and not gone(int(entry.name)):
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def test_nothing_of_ivr_run_outlives_a_sigkill(tmp_path: Path) -> None:
    """The web process and the import process (which runs the ladder passes from the start) stop
    by themselves when `ivr run` is killed: nothing keeps the database or the terminal."""
    folder = (tmp_path / "robot").resolve()
    service = Service(folder, SIM).start()
    try:
        pid = web_pid(service)
        assert login_page(service) == 200
        assert service.proc is not None
        deadline = time.monotonic() + 120
        # ivr run, the web process, the import process, multiprocessing's resource tracker
        while len(running_in(folder) - {service.proc.pid, pid}) < 2:
            assert time.monotonic() < deadline, f"no import process started:\n{service.log_tail()}"
            time.sleep(0.2)
        service.kill()  # SIGKILL: no chance to stop its children
        wait_gone(pid, 60, service)
        deadline = time.monotonic() + 60
        while running_in(folder):
            assert time.monotonic() < deadline, f"still running after ivr run was killed: {running_in(folder)}"
            time.sleep(0.2)
    finally:
        service.kill()
        for orphan in running_in(folder):  # a failed run must not leave them to the next tests
            os.kill(orphan, signal.SIGKILL)
