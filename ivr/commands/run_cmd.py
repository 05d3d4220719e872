"""`ivr run`: FastAGI server and dialer in one process, the web UI in a child process it supervises
(ivr.web.process).

With Asterisk servers in the settings it dials through them; with none, it starts the built-in
simulator as the telephone network (and says so loudly) so that a fresh checkout runs with no
set-up at all. Start-up failures (a port in use, AMI refused or a wrong secret, the database
unreachable) are one line each. SIGTERM or Ctrl-C: no new call, the calls in progress finish
(up to --grace seconds), then the process exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from ivr.config import Settings, load_settings
from ivr.errors import StartupError

log = logging.getLogger(__name__)

SIM_BANNER = (
    "NO ASTERISK CONFIGURED: `ivr run` dials the BUILT-IN SIMULATOR, no real phone will ring.\n"
    "  To call for real, set IVR_ASTERISK_SERVERS and IVR_AST_<NAME>_* in .env "
    "(README: \"Connecting a real Asterisk\")."
)
AMI_WAIT = 8.0  # seconds to wait for the first AMI login at start


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("run", help="run FastAGI server, dialer and web UI (the web UI in a child process)")
    parser.add_argument("--no-web", action="store_true", help="do not start the web UI")
    parser.add_argument("--no-dialer", action="store_true", help="do not place calls (FastAGI + web only)")
    parser.add_argument("--grace", type=float, default=120.0,
                        help="seconds the calls in progress may run after SIGTERM/Ctrl-C (default 120)")
    sim = parser.add_argument_group("built-in simulator (only when no Asterisk is configured)")
    sim.add_argument("--sim-lines", type=int, default=10, help="simulator channel limit (default 10)")
    sim.add_argument("--sim-speed", type=float, default=1.0,
                     help="simulated subscribers act this many times faster than real time (default 1)")
    sim.add_argument("--sim-seed", type=int, default=7, help="seed of the simulated subscribers' behaviour")
    sim.add_argument("--sim-rates", metavar="NAME=W,...",
                     help="call outcome mix, e.g. answer=0.6,busy=0.1,no_answer=0.2,machine=0.1")
    sim.add_argument("--sim-personas", metavar="NAME=W,...",
                     help="what answering subscribers do, e.g. promise=1,paid=1,reason=1")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    book = _sim_book(args) if settings.use_simulator else None
    return asyncio.run(_main(settings, args, book))


def _sim_book(args: argparse.Namespace) -> Any:
    from ivr.sim.population import DEFAULT_PERSONAS, DEFAULT_RATES, LiveBook, parse_weights

    try:
        rates = parse_weights(args.sim_rates, DEFAULT_RATES) if args.sim_rates else None
        personas = parse_weights(args.sim_personas, DEFAULT_PERSONAS) if args.sim_personas else None
    except ValueError as exc:
        raise StartupError(f"--sim-rates/--sim-personas: {exc}", code=2) from None
    return LiveBook(args.sim_seed, rates, personas)


async def _main(settings: Settings, args: argparse.Namespace, book: Any) -> int:
    from ivr.clock import SystemClock
    from ivr.heartbeat import instance_name
    from ivr.monitor import Monitor
    from ivr.runtime import (
        SIM_SECRET,
        SIM_USER,
        rules_loader_for,
        service_info,
        simulator_server,
        start_services,
        stop_services,
    )
    from ivr.wiring import open_database

    db = open_database(settings)
    clock = SystemClock()
    sim = None
    servers = settings.asterisk_servers
    if book is not None:
        from ivr.sim import SimulatedAsterisk

        sim = SimulatedAsterisk(book, users={SIM_USER: SIM_SECRET}, channel_limit=args.sim_lines, speed=args.sim_speed)
        await sim.start()
        servers = (simulator_server(sim.ami_port, args.sim_lines),)
        print(f"ivr run: {SIM_BANNER}", file=sys.stderr, flush=True)
        log.warning("no Asterisk configured (IVR_ASTERISK_SERVERS): dialing the built-in simulator")
    services = None
    try:
        services = await start_services(settings, db, clock, servers=servers, with_web=not args.no_web,
                                        with_dialer=not args.no_dialer, run_dialer_loop=False, isolate=True)
        services.sim = sim
        await _check_asterisk(services.ami)
    except BaseException:
        if services is not None:
            await stop_services(services, grace=0)
        if sim is not None:
            await sim.stop()
        raise

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    instance = services.dialer.dialer_id if services.dialer is not None else instance_name()
    from ivr import jobs

    # the minute outlook counts every case: in the import process, not on the calls' GIL
    monitor = Monitor(sessions=db.sessions, rules_loader=rules_loader_for(services.settings), clock=clock,
                      instance=instance, role="run", info=lambda: service_info(services),
                      outlook_fn=jobs.outlook_runner(db.sessions, services.settings.default_timezone))
    services.monitor = monitor
    monitor_stop = asyncio.Event()
    monitor_task = asyncio.create_task(monitor.run(monitor_stop))
    dialer_task = None
    from ivr.agi.server import freeze_startup_objects

    # as in `ivr agi-server`: start-up objects out of the collector's view, full collections rare
    # (they stalled every call's next command at thousands of calls held, issue 12)
    freeze_startup_objects()
    from ivr.loopwatch import LoopWatch

    # a stall of this loop stops every call and the dialer: logged with where it is stuck
    services.loop_watch = LoopWatch()
    services.loop_watch.start()
    if services.dialer is not None:
        services.spawn(_warm_up(services.audio))
        dialer_task = asyncio.create_task(services.dialer.run(stop))
    web = "off" if args.no_web else f"http://{settings.web_host}:{settings.web_port}/"
    target = "the built-in simulator" if sim else ", ".join(s.name for s in servers)
    print(f"ivr run: FastAGI on {settings.agi_host}:{services.agi.port if services.agi else '-'}, web UI {web}, "
          f"dialer {'off' if args.no_dialer else 'on'} via {target}. `ivr status` tells what it is doing; "
          "Ctrl-C stops (calls in progress finish).", flush=True)
    try:
        await stop.wait()
    finally:
        await _drain(services, dialer_task, args.grace)
        monitor_stop.set()
        await asyncio.wait([monitor_task], timeout=10)
        await stop_services(services)
        services.loop_watch.stop()
        if sim is not None:
            await sim.stop()
    log.info("ivr run stopped")
    return 0


async def _warm_up(audio: Any) -> None:
    try:
        await asyncio.to_thread(audio.warm_up)
    except Exception:  # noqa: BLE001 - calls still prepare their own audio
        log.exception("audio warm-up failed; each call prepares its own phrases")


async def _check_asterisk(clients: Any) -> None:
    """Wait briefly for the AMI logins: a refused login is a wrong setting (stop); when no server
    can be reached at all there is nothing to dial through (stop); a server that is down while
    others are up is retried in the background."""
    if not clients:
        return
    await asyncio.gather(*(c.wait_connected(AMI_WAIT) for c in clients.values()))
    for name, client in clients.items():
        if client.auth_failed:
            raise StartupError(f"Asterisk {name}: {client.last_error}; check IVR_AST_{name.upper()}_USER and "
                               f"IVR_AST_{name.upper()}_SECRET in .env against manager.conf", code=2)
    down = {name: c for name, c in clients.items() if not c.connected}
    if down and len(down) == len(clients):
        name, client = next(iter(down.items()))
        raise StartupError(f"cannot reach Asterisk {name}: {client.last_error or 'no answer'}; is Asterisk "
                           "running with the manager interface enabled on that address (manager.conf: "
                           f"enabled = yes, bindaddr)? (IVR_AST_{name.upper()}_HOST / _PORT)")
    for name, client in down.items():
        log.error("Asterisk %s is not reachable (%s): dialing through the others, retrying it in the background",
                  name, client.last_error)


async def _drain(services: Any, dialer_task: asyncio.Task[None] | None, grace: float) -> None:
    """Stop: no new call, then wait for the calls in progress to end (their Hangup events close
    the attempts), at most `grace` seconds."""
    dialer = services.dialer
    if dialer is None:
        return
    dialer.stop_dialing()
    if services.scheduler is not None:
        services.scheduler.shutdown(wait=False)
        services.scheduler = None
    if dialer_task is not None:
        await asyncio.wait([dialer_task], timeout=10)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    left = dialer.calls_in_progress()
    if left:
        log.info("stopping: no new calls; %d call(s) in progress get up to %.0fs to finish", left, grace)
    while left and loop.time() < deadline:
        await asyncio.sleep(0.2)
        left = dialer.calls_in_progress()
    if left:
        log.warning("stopping with %d call(s) still in progress after %.0fs: reconciled at the next start",
                    left, grace)
