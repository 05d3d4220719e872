"""`ivr run`: FastAGI server, dialer and web UI in one process.

With Asterisk servers in the settings it dials through them; with none, it starts the built-in
simulator as the telephone network so that a fresh checkout runs with no set-up at all."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from ivr.config import load_settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("run", help="run FastAGI server, dialer and web UI in one process")
    parser.add_argument("--no-web", action="store_true", help="do not start the web UI")
    parser.add_argument("--no-dialer", action="store_true", help="do not place calls (FastAGI + web only)")
    parser.add_argument("--sim-lines", type=int, default=10, help="simulator channel limit when no Asterisk is configured")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.env_file)
    return asyncio.run(_main(settings, args))


async def _main(settings, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from ivr.clock import SystemClock
    from ivr.runtime import SIM_SECRET, SIM_USER, simulator_server, start_services, stop_services
    from ivr.wiring import open_database

    db = open_database(settings)
    clock = SystemClock()
    sim = None
    servers = settings.asterisk_servers
    if settings.use_simulator:
        import random

        from sqlalchemy import select

        from ivr.db.models import PhoneNumber
        from ivr.sim import SimulatedAsterisk, book_from_mapping, random_population

        with db.sessions() as session:
            numbers = [n.lstrip("+") for n in session.scalars(select(PhoneNumber.number))]
        population = random_population(numbers, random.Random(7))
        sim = SimulatedAsterisk(book_from_mapping(population), users={SIM_USER: SIM_SECRET}, channel_limit=args.sim_lines)
        await sim.start()
        servers = (simulator_server(sim.ami_port, args.sim_lines),)
        log.warning("no Asterisk configured (IVR_ASTERISK_SERVERS): dialing the built-in simulator")
    # the dialer's own loop (below) fills lines on every freed line and every tick; the
    # scheduler only runs the ladder and the housekeeping jobs
    services = await start_services(settings, db, clock, servers=servers, with_web=not args.no_web,
                                    with_dialer=not args.no_dialer, run_dialer_loop=False)
    services.sim = sim
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    dialer_task = None
    if services.dialer is not None:
        dialer_task = asyncio.create_task(services.dialer.run(stop))
    web = "off" if args.no_web else f"http://{settings.web_host}:{settings.web_port}/"
    target = "simulator" if sim else ", ".join(s.name for s in servers)
    print(f"ivr run: FastAGI on {settings.agi_host}:{services.agi.port if services.agi else '-'}, web UI {web}, "
          f"dialer {'off' if args.no_dialer else 'on'}, {target}. Ctrl-C stops (calls in progress finish).", flush=True)
    try:
        await stop.wait()
    finally:
        if dialer_task is not None:
            await asyncio.wait([dialer_task], timeout=10)
        await stop_services(services)
        if sim is not None:
            await sim.stop()
    return 0
