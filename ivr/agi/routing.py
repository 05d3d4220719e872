"""Route tables for the FastAGI server and the classic-AGI entry point.

The call script's routes come from ``build_routes(settings, db)`` in ``ivr.call.routes`` (or
``ivr.agi.routes``), imported lazily: the AGI layer must run, with its diagnostic routes only, before
the call script exists or when it is not installed. Only the absence of those modules is
tolerated; an import error inside them is a bug and propagates.

Built-in routes are always present and cannot be replaced by the call script's table:
``ping`` and ``echo`` (health checks an Asterisk admin can point a test extension at) and ``bench``
(the ~10-command call scripts/bench_fastagi.py drives).
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ivr.agi.channel import AGIChannel
from ivr.agi.server import Handler
from ivr.config import Settings

log = logging.getLogger(__name__)

ROUTE_MODULES = ("ivr.call.routes", "ivr.agi.routes")


async def ping(channel: AGIChannel) -> None:
    await channel.verbose("ivr: pong", 1)


async def echo(channel: AGIChannel) -> None:
    """Say back what the server parsed (route, args, query) into Asterisk's verbose log."""
    await channel.verbose(f"ivr echo: route={channel.script} args={channel.args!r} query={channel.query!r}", 1)
    await channel.noop()


async def bench(channel: AGIChannel) -> None:
    """A realistic call shape for the benchmark: 10 commands of the kinds the call script sends."""
    await channel.answer()
    await channel.set_variable("IVR_BENCH", "started")
    await channel.stream_file("beep", "0123456789*#")
    await channel.get_data("beep", 3000, 4)
    await channel.get_variable("IVR_BENCH")
    await channel.say_number(1800, "#")
    await channel.get_full_variable("${CHANNEL(language)}")
    await channel.verbose("ivr: bench call done", 1)
    await channel.noop()
    await channel.hangup()


def builtin_routes() -> dict[str, Handler]:
    return {"ping": ping, "echo": echo, "bench": bench}


def find_route_builder() -> Callable[..., Mapping[str, Handler]] | None:
    """``build_routes`` of the call script, or None when no call script is installed."""
    for name in ROUTE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # only "that module does not exist" is tolerated, not a missing import inside it
            if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
                continue
            raise
        builder = getattr(module, "build_routes", None)
        if builder is not None:
            return builder  # type: ignore[no-any-return]
    return None


def merge_routes(extra: Mapping[str, Handler] | None) -> dict[str, Handler]:
    routes = builtin_routes()
    for name, handler in (extra or {}).items():
        if name in routes:
            log.warning("AGI route %r is built in; the call script's handler of that name is ignored", name)
            continue
        routes[name] = handler
    return routes


def resolve_routes(settings: Settings, *, migrate: bool = True, **builder_options: Any) -> dict[str, Handler]:
    """Built-in routes plus the call script's, opening the database only if a builder exists.
    `builder_options` go to the call script's ``build_routes`` (`facts_writer="process"`: the
    long-running `ivr agi-server`)."""
    builder = find_route_builder()
    if builder is None:
        log.warning("no call script installed (%s); serving diagnostic routes only: %s",
                    " / ".join(ROUTE_MODULES), ", ".join(sorted(builtin_routes())))
        return builtin_routes()
    from ivr.wiring import open_database  # lazy: the diagnostic routes need no database

    db = open_database(settings, migrate=migrate, seed_defaults=migrate)
    return merge_routes(builder(settings, db, **_accepted(builder, builder_options)))


def _accepted(builder: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    """The options `builder` takes (a call script of another version may take none of them)."""
    params = inspect.signature(builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return options
    return {k: v for k, v in options.items() if k in params}


def close_routes(routes: Mapping[str, Handler]) -> None:
    """At shutdown, after the server stopped: let handlers that hold resources (the call script's
    facts writer) release them; a failure is logged, the others still close."""
    for name, handler in routes.items():
        close = getattr(handler, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # noqa: BLE001 - shutting down: log and go on with the others
                log.exception("closing AGI route %r failed", name)
