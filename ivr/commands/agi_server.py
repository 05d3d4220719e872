"""`ivr agi-server`: run the FastAGI server the dialplan's ``AGI(agi://host:port/route)`` reaches.

Routes come from the call script's ``build_routes(settings, db)`` when it is installed, plus the
built-in diagnostic routes (see `ivr.agi.routing`); `serve` takes any route table, for tests and
for embedding in a combined process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Mapping, Sequence

from ivr.agi.server import AGILimits, FastAGIServer, Handler, freeze_startup_objects
from ivr.config import load_settings
from ivr.errors import bind_failure

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("agi-server", help="run the FastAGI server (call script)")
    parser.add_argument("--host", help="bind address (default IVR_AGI_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default IVR_AGI_PORT, 4573)")
    parser.add_argument("--allow", help="comma-separated IPs/networks allowed to connect (default IVR_AGI_ALLOW)")
    parser.add_argument("--grace", type=float, default=30.0,
                        help="seconds calls in progress may run after SIGTERM/SIGINT (default 30)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, routes: Mapping[str, Handler] | None = None) -> int:
    settings = load_settings(args.env_file)
    if routes is None:
        from ivr.agi.routing import resolve_routes

        routes = resolve_routes(settings)
    allow = [a.strip() for a in args.allow.split(",") if a.strip()] if args.allow else list(settings.agi_allow)
    try:
        port = settings.agi_port if args.port is None else args.port
        server = FastAGIServer(routes, args.host or settings.agi_host, port, allow,
                               limits=AGILimits.from_settings(settings))
    except ValueError as exc:
        print(f"agi-server: {exc}", file=sys.stderr)
        return 2
    freeze_startup_objects()
    try:
        asyncio.run(serve(server, grace=args.grace))
    finally:
        from ivr.agi.routing import close_routes

        close_routes(routes)  # commits the call facts still queued (ivr.call.writer)
    return 0


async def serve(server: FastAGIServer, *, grace: float = 30.0, stop: asyncio.Event | None = None,
                signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> None:
    """Start `server`, wait for a stop signal (or `stop`), then stop it gracefully."""
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
    try:
        await stop.wait()
        log.info("FastAGI: stopping; %d call(s) in progress get up to %.0fs", server.active_calls, grace)
    finally:
        await server.stop(grace)
        for sig in installed:
            loop.remove_signal_handler(sig)
