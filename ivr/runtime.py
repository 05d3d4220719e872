"""Wires the parts into one running product: FastAGI server, AMI clients, dialer, scheduler and
web UI. `ivr run` starts all of them against real Asterisk servers (or the simulator when none is
configured); `ivr demo` uses the same assembly with the simulator and a fast clock.

Only CLI entry points call this module; the parts themselves get their collaborators passed in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from ivr.agi.server import AGILimits, FastAGIServer
from ivr.ami.client import AMIClient
from ivr.call.audio_source import CallAudioSource
from ivr.call.recorder import CallRecorder
from ivr.call.routes import build_call_parts, build_routes
from ivr.call.writer import FactSink, FactWriter
from ivr.clock import Clock
from ivr.config import AsteriskServer, Settings
from ivr.db.models import CallAttempt
from ivr.dialer.engine import Dialer
from ivr.dialer.health import AgiHealth, tcp_probe
from ivr.dialer.policy import Rules, load_rules
from ivr.dialer.scheduler import build_scheduler
from ivr.errors import bind_failure
from ivr.wiring import Database

log = logging.getLogger(__name__)

SIM_USER = "ivr"
SIM_SECRET = "sim-secret"  # the simulator only listens on loopback; not a real credential


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    recorder: CallRecorder
    audio: CallAudioSource
    writer: FactSink | None = None  # the call facts writer (ivr.call.writer), closed last
    agi: FastAGIServer | None = None
    ami: dict[str, AMIClient] = field(default_factory=dict)
    dialer: Dialer | None = None
    scheduler: Any = None
    web_task: asyncio.Task[None] | None = None
    web_server: Any = None
    web_process: Any = None  # ivr.web.process.WebProcess when the web UI runs in its own process
    sim: Any = None
    monitor: Any = None
    loop_watch: Any = None  # ivr.loopwatch.LoopWatch of the process's event loop
    push_stop: asyncio.Event | None = None
    push_task: asyncio.Task[Any] | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def embedded_server(uvicorn: Any, config: Any) -> Any:
    """A uvicorn server that leaves the signals alone: inside `ivr run` the process's own
    SIGTERM/SIGINT handling stops everything in order (calls finish first); uvicorn would take
    the signals for itself and leave the rest of the process running."""
    import contextlib

    class EmbeddedServer(uvicorn.Server):  # type: ignore[misc, name-defined]
        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            yield

    return EmbeddedServer(config)


def listen_socket(host: str, port: int, what: str, setting: str) -> socket.socket:
    """A bound, listening TCP socket; a port in use is a StartupError naming the setting (uvicorn
    would log it and exit the whole process from inside its task)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        raise bind_failure(what, host, port, exc, setting) from None
    return sock


def default_dialer_id(settings: Settings) -> str:
    return settings.dialer_id or f"{socket.gethostname()}-{os.getpid()}"


def simulator_server(port: int, lines: int) -> AsteriskServer:
    return AsteriskServer(name="sim", ami_host="127.0.0.1", ami_port=port, ami_user=SIM_USER,
                          ami_secret=SIM_SECRET, channel_limit=lines, channel_template="PJSIP/{number}@debt-trunk")


def rules_loader_for(settings: Settings) -> Any:
    def load(session: Any) -> Rules:
        return load_rules(session, settings.default_timezone)

    return load


def start_facts_writer(engine: Engine, *, in_process: bool) -> FactSink:
    """The call facts writer: a thread of this process (`in_process`, or an in-memory SQLite
    database that only this process can see), else a writer process
    (ivr.call.writer_process)."""
    if not in_process and not (engine.url.get_backend_name() == "sqlite"
                               and engine.url.database in (None, "", ":memory:")):
        from ivr.call.writer_process import ProcessFactWriter

        return ProcessFactWriter(engine).start()
    return FactWriter(engine).start()


async def start_services(
    settings: Settings,
    db: Database,
    clock: Clock,
    *,
    servers: tuple[AsteriskServer, ...],
    with_agi: bool = True,
    with_dialer: bool = True,
    with_web: bool = True,
    run_dialer_loop: bool = True,
    ladder_seconds: float = 60.0,
    isolate: bool = False,
) -> Services:
    """Start the parts. `isolate` (`ivr run`): keep work that can stall calls out of this
    process: the web UI is served by a child process (ivr.web.process) and the ladder passes run
    in the import process (ivr.jobs). Without it (the demo, whose clock is fast and in-process,
    and tests that share an in-memory database) everything runs here."""
    # Listening sockets first: a port in use fails here, before anything was started.
    web_sock = listen_socket(settings.web_host, settings.web_port, "the web UI", "IVR_WEB_PORT") if with_web else None
    # one writer stores the facts of every call of this process (group commit); in `ivr run` it
    # is a process of its own, so its database work never holds the calls' GIL
    writer = start_facts_writer(db.engine, in_process=not isolate)
    recorder, audio = build_call_parts(settings, db, clock, writer=writer)
    services = Services(settings=settings, db=db, clock=clock, recorder=recorder, audio=audio, writer=writer)

    if with_agi:
        routes = build_routes(settings, db, clock=clock, audio=audio, recorder=recorder)
        services.agi = FastAGIServer(routes, settings.agi_host, settings.agi_port, settings.agi_allow,
                                     limits=AGILimits.from_settings(settings))
        try:
            await services.agi.start()
        except OSError as exc:
            if web_sock is not None:
                web_sock.close()
            writer.close()
            raise bind_failure("the FastAGI server", settings.agi_host, settings.agi_port, exc, "IVR_AGI_PORT") from None
        log.info("FastAGI server on %s:%s (allow %s)", settings.agi_host, services.agi.port, ",".join(settings.agi_allow))
        if settings.agi_port == 0:  # ephemeral (demo): tell Asterisk where we really are
            settings = dataclasses.replace(settings, agi_public_url=f"agi://{settings.agi_host}:{services.agi.port}")
            services.settings = settings

    for server in servers:
        client = AMIClient(server.ami_host, server.ami_port, server.ami_user, server.ami_secret, name=server.name,
                           ping_interval=settings.ami_ping_interval, ping_timeout=settings.ami_ping_timeout)
        services.ami[server.name] = client

    if with_dialer:
        from ivr.dialer.backpressure import AgiGate, GateSettings, load_source

        # issue 12: never more calls up than the FastAGI side carries well, whether it runs in
        # this process (read directly) or in `ivr agi-server` processes (their heartbeats)
        gate = AgiGate(GateSettings.from_settings(settings),
                       load_source(db.sessions, services.agi.load.snapshot if services.agi is not None else None),
                       now=time.monotonic())
        dialer = Dialer(
            agi_gate=gate,
            sessions=db.sessions, rules_loader=rules_loader_for(settings), clock=clock, settings=settings,
            originators=services.ami, dialer_id=default_dialer_id(settings),
            prepare_audio=lambda _session, attempt: audio.prepare_attempt(attempt.id),
            servers=servers, find_calls=lambda: live_calls(services.ami),
            # dial only while the FastAGI URL Asterisk uses answers; Dialer.run also reconciles
            # every reconcile_seconds (see ivr.dialer.reconcile)
            agi_health=AgiHealth(tcp_probe(settings.agi_public_url), clock),
        )
        services.dialer = dialer
        for name, client in services.ami.items():
            client.on_originate_result = dialer.handle_originate_result
            client.on_call_ended = dialer.handle_call_ended
            client.on_connection_change = _reconcile_on_reconnect(services, name)
            client.on_lost_originates = _log_lost(name)

    for client in services.ami.values():
        await client.start()

    if with_dialer and services.dialer is not None:
        from ivr.web.tasks import release_idle_claims

        runner = None
        if isolate:
            from ivr import jobs

            # `ivr run`: the ladder pass (every new case after a big import) in the import process
            runner = jobs.ladder_runner(db.sessions, settings.default_timezone)
        sched = build_scheduler(sessions=db.sessions, rules_loader=rules_loader_for(settings), clock=clock,
                                dialer=services.dialer if run_dialer_loop else None, ladder_seconds=ladder_seconds,
                                ladder_at_start=True, ladder_runner=runner)

        def release_idle() -> None:
            with db.sessions.begin() as session:
                release_idle_claims(session, clock.now(), settings.claim_idle_minutes)

        sched.add_job(release_idle, "interval", seconds=60, id="web-release-idle-claims", coalesce=True, max_instances=1)
        sched.start()
        services.scheduler = sched

    if with_dialer:
        start_billing_push(services)

    if with_web:
        from ivr.web.deps import AmiClickToCall

        assert web_sock is not None
        first = next(iter(services.ami.values()), None)
        click = AmiClickToCall(first, settings, sessions=db.sessions, clock=clock) if first else None
        if isolate:
            from ivr.web.process import WebProcess

            services.web_process = WebProcess(settings, web_sock, click)
            services.web_process.start()
            return services
        import uvicorn

        if with_agi:
            from ivr import jobs

            # the web UI shares this process with the calls: its imports run in a separate
            # process, not in a thread that would hold the GIL the calls need (issue 12)
            jobs.offload_imports()

        from ivr.commands.web_cmd import uvicorn_config
        from ivr.web.app import create_app

        app = create_app(settings=settings, sessions=db.sessions, clock=clock, click_to_call=click,
                         audio_cache=audio.preparer.cache, prompt_store=audio.preparer.store)
        config = uvicorn_config(app, settings)
        web_server = embedded_server(uvicorn, config)
        services.web_server = web_server
        services.web_task = asyncio.create_task(web_server.serve(sockets=[web_sock]))
        log.info("web UI on http://%s:%s/", settings.web_host, settings.web_port)
    return services


def start_billing_push(services: Services) -> None:
    """Deliver the outbox's events to billing (IVR_BILLING_PUSH_URL) from this process."""
    from ivr.outbox import sender as billing_push

    push = billing_push.config_from_settings(services.settings)
    if push is None:
        log.info("billing push off (IVR_BILLING_PUSH_URL not set); events are still recorded")
        return
    services.push_stop = asyncio.Event()
    services.push_task = asyncio.create_task(
        billing_push.run(services.db.sessions, push, services.push_stop, worker=default_dialer_id(services.settings)))


def service_info(services: Services) -> dict[str, Any]:
    """What this process says about itself in its heartbeat (see ivr.heartbeat)."""
    settings = services.settings
    dialer = services.dialer
    info: dict[str, Any] = {
        "simulator": services.sim is not None,
        "agi": None if services.agi is None else {
            "host": settings.agi_host, "port": services.agi.port, "public_url": settings.agi_public_url,
            "load": services.agi.load.snapshot().as_dict()},
        "web": None if services.web_server is None and services.web_process is None
        else f"http://{settings.web_host}:{settings.web_port}/",
        "web_pid": None if services.web_process is None else services.web_process.pid,
        "ami": {name: {"host": c.host, "port": c.port, "connected": c.connected,
                       "since": c.state_since.isoformat(timespec="seconds"), "last_error": c.last_error}
                for name, c in services.ami.items()},
        "dialer": None,
        "lines": {},
        "loop": None if services.loop_watch is None else services.loop_watch.snapshot(),
    }
    if dialer is not None:
        info["lines"] = {name: {"limit": server.channel_limit, "in_use": dialer.lines.in_use(name)}
                         for name, server in dialer.servers.items()}
        stats = dataclasses.asdict(dialer.last_stats)
        stats.pop("not_callable_case_ids", None)
        health = dialer.health
        gate = dialer.agi_gate
        info["dialer"] = {"id": dialer.dialer_id, "sent": dialer.sent, "last_pass": stats, "stopped": dialer.stopped,
                          "agi_window": None if gate is None else gate.window.size,
                          "health": {"ok": health.ok, "reason": health.reason,
                                     "since": health.since.isoformat(timespec="seconds")}}
    return info


async def live_calls(clients: Mapping[str, AMIClient]) -> dict[str, Collection[str]]:
    """IVR_CALL_IDs of the live channels per connected server (servers we cannot ask are left
    out, so reconciliation leaves their attempts alone)."""
    live: dict[str, Collection[str]] = {}
    for name, client in clients.items():
        if not client.connected:
            continue
        try:
            live[name] = {c.call_id for c in await client.find_calls() if c.call_id}
        except Exception:  # noqa: BLE001 - an unanswered listing must not be read as "no calls"
            log.exception("listing calls on %s failed", name)
    return live


def _reconcile_on_reconnect(services: Services, name: str) -> Any:
    def changed(connected: bool) -> None:
        log.info("AMI %s %s", name, "connected" if connected else "disconnected")
        if connected and services.dialer is not None:
            services.spawn(services.dialer.reconcile())

    return changed


def _log_lost(name: str) -> Any:
    def lost(action_ids: list[str]) -> None:
        log.warning("AMI %s: %d originate(s) with no reply before the disconnect; reconciling, not resending",
                    name, len(action_ids))

    return lost


async def stop_services(services: Services, *, grace: float = 10.0) -> None:
    if services.scheduler is not None:
        services.scheduler.shutdown(wait=False)
    if services.push_stop is not None and services.push_task is not None:
        services.push_stop.set()  # a round already sending finishes (its claim would resend it anyway)
        await asyncio.wait([services.push_task], timeout=30)
    if services.web_server is not None:
        services.web_server.should_exit = True
        if services.web_task is not None:
            await asyncio.wait([services.web_task], timeout=5)
    if services.web_process is not None:
        await services.web_process.stop()
    if services.agi is not None:
        await services.agi.stop(grace=grace)
    if services.writer is not None:
        # after the calls: their last facts are queued; commit them before the process ends
        await services.writer.aclose()
    from ivr import jobs

    jobs.shutdown()
    for client in services.ami.values():
        await client.stop()
    for task in list(services._tasks):
        task.cancel()


def in_flight(db: Database) -> int:
    from sqlalchemy import func, select

    from ivr.dialer.selector import IN_FLIGHT

    with db.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(CallAttempt).where(CallAttempt.state.in_(IN_FLIGHT))) or 0)
