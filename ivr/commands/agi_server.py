"""`ivr agi-server`: run the FastAGI server the dialplan's ``AGI(agi://host:port/route)`` reaches.

Routes come from the call script's ``build_routes(settings, db)`` when it is installed, plus the
built-in diagnostic routes (see `ivr.agi.routing`); `serve` takes any route table, for tests and
for embedding in a combined process.

Each process publishes its calls in progress and its own delays (ivr.agi.load) in its heartbeat
row (role "agi", every second) when the call script is installed: the dialer's back-pressure
(ivr.dialer.backpressure) reads them. `--workers N` forks N processes that share the port with
SO_REUSEPORT (the kernel spreads the connections over them); each opens its own database
connections after the fork, and the parent forwards SIGTERM/SIGINT and waits for them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from ivr.agi.server import AGILimits, FastAGIServer, Handler, freeze_startup_objects
from ivr.config import Settings, load_settings
from ivr.errors import StartupError, bind_failure

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("agi-server", help="run the FastAGI server (call script)")
    parser.add_argument("--host", help="bind address (default IVR_AGI_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default IVR_AGI_PORT, 4573)")
    parser.add_argument("--allow", help="comma-separated IPs/networks allowed to connect (default IVR_AGI_ALLOW)")
    parser.add_argument("--grace", type=float, default=30.0,
                        help="seconds calls in progress may run after SIGTERM/SIGINT (default 30)")
    parser.add_argument("--workers", type=int, default=1,
                        help="processes sharing the port with SO_REUSEPORT, e.g. one per core (default 1)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, routes: Mapping[str, Handler] | None = None) -> int:
    settings = load_settings(args.env_file)
    workers = int(getattr(args, "workers", 1) or 1)
    if workers < 1:
        print("agi-server: --workers must be at least 1", file=sys.stderr)
        return 2
    if workers > 1 and routes is None:
        return run_workers(args, settings, workers)
    return run_one(args, settings, routes)


def run_one(args: argparse.Namespace, settings: Settings, routes: Mapping[str, Handler] | None = None, *,
            reuse_port: bool = False) -> int:
    sessions = None
    if routes is None:
        from ivr.agi.routing import find_route_builder, resolve_routes

        routes = resolve_routes(settings, facts_writer="process")  # (why: ivr.call.routes.build_routes)
        if find_route_builder() is not None:
            from ivr.wiring import open_database

            # the heartbeat's own engine (the schema was migrated by resolve_routes just now)
            sessions = open_database(settings, migrate=False, seed_defaults=False).sessions
    allow = [a.strip() for a in args.allow.split(",") if a.strip()] if args.allow else list(settings.agi_allow)
    try:
        port = settings.agi_port if args.port is None else args.port
        server = FastAGIServer(routes, args.host or settings.agi_host, port, allow,
                               limits=AGILimits.from_settings(settings), reuse_port=reuse_port)
    except ValueError as exc:
        print(f"agi-server: {exc}", file=sys.stderr)
        return 2
    freeze_startup_objects()
    try:
        asyncio.run(serve(server, grace=args.grace, sessions=sessions))
    finally:
        from ivr.agi.routing import close_routes

        close_routes(routes)  # commits the call facts still queued (ivr.call.writer)
    return 0


def run_workers(args: argparse.Namespace, settings: Settings, workers: int) -> int:
    """Fork `workers` servers on one port (SO_REUSEPORT); forward stop signals; wait for them.
    Forked before any database connection or event loop exists: each child builds its own."""
    port = settings.agi_port if args.port is None else args.port
    if not hasattr(socket, "SO_REUSEPORT"):
        print("agi-server: --workers needs SO_REUSEPORT (Linux, BSD); run one process per port instead",
              file=sys.stderr)
        return 2
    if port == 0:
        print("agi-server: --workers needs a fixed port (IVR_AGI_PORT or --port)", file=sys.stderr)
        return 2
    from ivr.agi.routing import find_route_builder

    if find_route_builder() is not None:
        from ivr.wiring import open_database

        # migrate once here, not N times at once in the workers; no connection crosses the fork
        open_database(settings).engine.dispose()
    children: list[int] = []
    for number in range(1, workers + 1):
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                log.info("FastAGI worker %d of %d (pid %d)", number, workers, os.getpid())
                code = run_one(args, settings, reuse_port=True)
            except StartupError as exc:
                print(f"ivr agi-server (worker {number}): {exc}", file=sys.stderr)
                code = exc.code
            except BaseException:  # noqa: BLE001 - a worker must exit, never return into the parent's code
                log.exception("FastAGI worker %d failed", number)
            finally:
                logging.shutdown()
                os._exit(code)
        children.append(pid)

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    worst = 0
    left = set(children)
    while left:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        left.discard(pid)
        code = os.waitstatus_to_exitcode(status)
        if code != 0 and worst == 0:
            # one worker could not start or died: stop the others (a half-sized server would
            # hide the problem), after their calls in progress got the grace period
            worst = code if code > 0 else 1
            log.error("FastAGI worker pid %d exited with %d: stopping the other workers", pid, code)
            for child in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGTERM)
    return worst


async def publish_load(server: FastAGIServer, sessions: Any, stop: asyncio.Event, *, interval: float = 1.0,
                       watch: Any = None) -> None:
    """Every `interval` seconds, this process's calls up and delays into its heartbeat row (a
    worker thread writes it: never a query on the calls' event loop)."""
    from ivr import heartbeat
    from ivr.dialer.backpressure import AGI_ROLE

    instance = heartbeat.instance_name()
    started = dt.datetime.now(dt.UTC)
    while not stop.is_set():
        info: dict[str, Any] = {"agi": {"host": server.host, "port": server.port,
                                        "load": server.load.snapshot().as_dict()}}
        if watch is not None:
            info["loop"] = watch.snapshot()
        try:
            await asyncio.to_thread(heartbeat.beat, sessions, instance, AGI_ROLE, info, dt.datetime.now(dt.UTC),
                                    started_at=started)
        except Exception:  # noqa: BLE001 - the calls go on without a heartbeat
            log.warning("FastAGI heartbeat write failed", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
    with contextlib.suppress(Exception):
        await asyncio.to_thread(heartbeat.stopped, sessions, instance, dt.datetime.now(dt.UTC))


async def serve(server: FastAGIServer, *, grace: float = 30.0, stop: asyncio.Event | None = None,
                signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT), sessions: Any = None) -> None:
    """Start `server`, wait for a stop signal (or `stop`), then stop it gracefully. With
    `sessions`, publish the server's load in a heartbeat meanwhile."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in signals:
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        await server.start()
    except OSError as exc:
        for sig in installed:
            loop.remove_signal_handler(sig)
        raise bind_failure("the FastAGI server", server.host, server.port, exc, "IVR_AGI_PORT") from None
    from ivr.loopwatch import LoopWatch

    watch = LoopWatch()  # a stall of this loop stops every call: logged with where it is stuck
    watch.start()
    publisher_stop = asyncio.Event()
    publisher = (asyncio.create_task(publish_load(server, sessions, publisher_stop, watch=watch))
                 if sessions is not None else None)
    try:
        await stop.wait()
        log.info("FastAGI: stopping; %d call(s) in progress get up to %.0fs", server.active_calls, grace)
    finally:
        await server.stop(grace)
        if publisher is not None:
            publisher_stop.set()
            await asyncio.wait([publisher], timeout=10)
        watch.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)
