"""The web UI of `ivr run` in its own process (issue 12: work that can stall calls runs elsewhere).

`ivr run` carries the FastAGI server, the dialer and the web UI. In one process every web request
(a report query, a template preview, parsing a 400,000-row upload, rendering a page) ran in a
worker thread that holds the GIL the calls need for their next command. So `ivr run` serves the
web UI from a child process instead:

* spawned, not forked (nothing of the parent's event loop, threads or connections is inherited),
  with the settings the parent resolved and the listening socket the parent bound (a port in use
  is still a start-up error of `ivr run` itself, and connections wait in the backlog while a
  child restarts);
* with its own database engine; it behaves as `ivr web` does next to `ivr agi-server`;
* click-to-call still goes through the parent's AMI connection (one AMI session per server, the
  dialer's event handlers see the operator call's events): the child sends the request over a
  pipe and the parent answers (`ClickRelay` / `ClickProxy`);
* supervised: a child that dies is logged and started again (back-off up to 30 s); a child whose
  parent died stops by itself.
"""

from __future__ import annotations

import asyncio
import faulthandler
import itertools
import logging
import multiprocessing
import os
import signal
import socket
import threading
from multiprocessing.connection import Connection
from typing import Any

from ivr.config import Settings

log = logging.getLogger(__name__)

RESTART_MIN = 1.0  # seconds before restarting a dead web process, doubling up to RESTART_MAX
RESTART_MAX = 30.0
WEB_NICE = 5  # the web process's priority drop: a report query waits for a CPU, the calls do not
STOP_WAIT = 10.0  # seconds a stopping web process gets to finish its requests before SIGKILL
STOP_DUMP_AFTER = STOP_WAIT - 2  # a web process still there then writes its threads' stacks to the log


class ClickProxyError(RuntimeError):
    pass


class ClickProxy:
    """The web process's ClickToCall: asks the parent (`ClickRelay`) to place the call."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[tuple[str, str]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _attach(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            loop.add_reader(self._conn.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            while self._conn.poll():
                request_id, status, text = self._conn.recv()
                future = self._waiting.pop(request_id, None)
                if future is not None and not future.done():
                    future.set_result((status, text))
        except (EOFError, OSError):
            # the parent is gone: every waiting operator gets an error, not a hang
            assert self._loop is not None
            self._loop.remove_reader(self._conn.fileno())
            for future in self._waiting.values():
                if not future.done():
                    future.set_result(("error", "the robot's main process is not answering"))
            self._waiting.clear()

    async def call(self, *, operator_phone: str, subscriber_phone: str, task_id: int, account_id: int,
                   operator_id: int | None = None, override_reason: str | None = None) -> str:
        from ivr.web.deps import ClickToCallError

        self._attach()
        request_id = next(self._ids)
        future: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            self._conn.send((request_id, {
                "operator_phone": operator_phone, "subscriber_phone": subscriber_phone, "task_id": task_id,
                "account_id": account_id, "operator_id": operator_id, "override_reason": override_reason}))
        except OSError as exc:
            self._waiting.pop(request_id, None)
            raise ClickToCallError("the robot's main process is not answering") from exc
        status, text = await future
        if status == "ok":
            return text
        raise ClickToCallError(text)


class ClickRelay:
    """Parent side: places the calls the web process asks for with the real ClickToCall."""

    def __init__(self, conn: Connection, click: Any) -> None:
        self._conn = conn
        self._click = click
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._conn.fileno(), self._readable)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self._conn.fileno())
            self._loop = None
        for task in self._tasks:
            task.cancel()

    def _readable(self) -> None:
        try:
            while self._conn.poll():
                request_id, kwargs = self._conn.recv()
                task = asyncio.ensure_future(self._place(request_id, kwargs))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except (EOFError, OSError):
            # the web process died; its replacement gets a new pipe
            self.stop()

    async def _place(self, request_id: int, kwargs: dict[str, Any]) -> None:
        from ivr.web.deps import ClickToCallError

        try:
            reply = (request_id, "ok", await self._click.call(**kwargs))
        except ClickToCallError as exc:
            reply = (request_id, "error", str(exc))
        except Exception:
            log.exception("click-to-call for the web process failed")
            reply = (request_id, "error", "the call could not be placed (see the robot's log)")
        try:
            self._conn.send(reply)
        except OSError:
            log.warning("click-to-call %s: the web process is gone, its reply is dropped", reply[2])


def _child_main(settings: Settings, sock: socket.socket, log_level: int, conn: Connection | None) -> None:
    """The web process: the same app as `ivr web`, on the parent's socket."""
    from ivr.logsetup import configure_logging

    configure_logging(log_level)
    try:
        os.nice(WEB_NICE)
    except OSError:
        log.warning("could not lower the web process's priority")
    asyncio.run(_serve(settings, sock, conn))


async def _serve(settings: Settings, sock: socket.socket, conn: Connection | None) -> None:
    import uvicorn

    from ivr import jobs
    from ivr.commands.web_cmd import uvicorn_config
    from ivr.web.app import create_app
    from ivr.wiring import open_database

    # `ivr run` migrated and seeded the schema before starting this process
    db = open_database(settings, migrate=False, seed_defaults=False)
    # a big import still runs in its own process: it would make this one's pages slow
    jobs.offload_imports()
    app = create_app(settings=settings, sessions=db.sessions, click_to_call=ClickProxy(conn) if conn else None)
    server = _TermOnlyServer(uvicorn, uvicorn_config(app, settings))
    _stop_with_parent(server)
    log.info("web UI on http://%s:%s/ (web process %d)", settings.web_host, settings.web_port, os.getpid())
    try:
        await server.serve(sockets=[sock])
    finally:
        jobs.shutdown()
        db.engine.dispose()


def _TermOnlyServer(uvicorn: Any, config: Any) -> Any:
    """uvicorn stopping on SIGTERM only. Ctrl-C in a terminal reaches the whole process group:
    `ivr run` handles it (no new calls, the calls in progress finish, then it stops this process
    with SIGTERM); the web UI stays up meanwhile instead of dying and being restarted."""
    import contextlib

    class Server(uvicorn.Server):  # type: ignore[misc, name-defined]
        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

            def stop(*_: Any) -> None:
                self.should_exit = True
                # if this process is still here just before `ivr run` kills it, every thread's
                # stack goes to the log (the robot's log: stderr is shared), saying what held it
                faulthandler.dump_traceback_later(STOP_DUMP_AFTER, exit=False)

            previous = signal.signal(signal.SIGTERM, stop)
            try:
                yield
            finally:
                signal.signal(signal.SIGTERM, previous)

    return Server(config)


def _stop_with_parent(server: Any) -> None:
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # returns when the parent process is gone
        log.warning("web process: the `ivr run` process is gone; stopping")
        server.should_exit = True

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class WebProcess:
    """Parent side: starts, supervises and stops the web process."""

    def __init__(self, settings: Settings, sock: socket.socket, click: Any = None) -> None:
        self._settings = settings
        self._sock = sock
        self._click = click
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: Any = None
        self._relay: ClickRelay | None = None
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        self._spawn()
        self._supervisor = asyncio.create_task(self._supervise())

    def _spawn(self) -> None:
        child_conn = None
        if self._click is not None:
            parent_conn, child_conn = self._ctx.Pipe()
            self._relay = ClickRelay(parent_conn, self._click)
            self._relay.start()
        level = logging.getLogger().getEffectiveLevel()
        self._proc = self._ctx.Process(target=_child_main, name="ivr-web",
                                       args=(self._settings, self._sock, level, child_conn))
        self._proc.start()
        if child_conn is not None:
            child_conn.close()  # the child has its copy; EOF on ours then means the child is gone
        self.starts += 1
        log.info("web UI process %d started", self._proc.pid)

    async def _supervise(self) -> None:
        delay = RESTART_MIN
        loop = asyncio.get_running_loop()
        while not self._stopping:
            proc = self._proc
            ended: asyncio.Future[None] = loop.create_future()
            loop.add_reader(proc.sentinel, _set_done, ended)
            started = loop.time()
            try:
                await ended
            finally:
                loop.remove_reader(proc.sentinel)
            proc.join()
            if self._stopping:
                return
            if self._relay is not None:
                self._relay.stop()
                self._relay = None
            if loop.time() - started > 60:
                delay = RESTART_MIN  # it had been running well: restart promptly
            log.error("the web UI process %d ended (exit code %s); starting another in %.0f s",
                      proc.pid, proc.exitcode, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX)
            if not self._stopping:
                self._spawn()

    async def stop(self) -> None:
        """SIGTERM: uvicorn finishes the requests in progress; SIGKILL after STOP_WAIT seconds."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
        proc = self._proc
        if proc is not None and proc.is_alive():
            proc.terminate()
            await asyncio.to_thread(proc.join, STOP_WAIT)
            if proc.is_alive():
                log.warning("the web UI process %d did not stop in %.0f s: killed", proc.pid, STOP_WAIT)
                proc.kill()
                await asyncio.to_thread(proc.join, 5)
        if self._relay is not None:
            self._relay.stop()
            self._relay = None
        self._sock.close()
