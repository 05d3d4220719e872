"""`ivr agi-server` wiring and the lazy, tolerant route table."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from ivr.agi import routing
from ivr.agi.channel import AGIChannel
from ivr.agi.server import FastAGIServer
from ivr.cli import build_parser
from ivr.commands.agi_server import serve
from ivr.config import Settings
from tests.agi.test_server import Asterisk


def test_subcommand_is_registered() -> None:
    args = build_parser().parse_args(["agi-server", "--port", "4600", "--allow", "127.0.0.1,10.0.0.0/24"])
    assert (args.command, args.port, args.allow) == ("agi-server", 4600, "127.0.0.1,10.0.0.0/24")
    assert callable(args.func)


async def test_serve_with_injected_routes_until_stopped() -> None:
    async def hello(ch: AGIChannel) -> None:
        await ch.verbose(f"hello {ch.args[0]}")

    server = FastAGIServer({**routing.builtin_routes(), "hello": hello}, port=0)
    stop = asyncio.Event()
    task = asyncio.create_task(serve(server, stop=stop, signals=()))
    while server.port == 0:
        await asyncio.sleep(0.01)
    a = await Asterisk.call(server.port, "hello", args=("world",))
    assert await a.command() == 'VERBOSE "hello world" 1'
    await a.reply("200 result=1")
    await a.expect_end()
    a = await Asterisk.call(server.port, "ping")
    assert await a.command() == 'VERBOSE "ivr: pong" 1'
    await a.reply("200 result=1")
    await a.expect_end()
    stop.set()
    await asyncio.wait_for(task, 30)


def test_no_call_script_gives_diagnostic_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routing, "ROUTE_MODULES", ("ivr_no_such_pkg.routes", "ivr.agi.no_such_routes"))
    assert routing.find_route_builder() is None
    assert set(routing.resolve_routes(Settings())) == {"ping", "echo", "bench"}


def test_builder_found_and_builtins_protected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fake_ivr_routes_ok.py").write_text(
        "def build_routes(settings, db):\n    return {'debt-call': 'H', 'ping': 'X'}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(routing, "ROUTE_MODULES", ("ivr_no_such_pkg.routes", "fake_ivr_routes_ok"))
    builder = routing.find_route_builder()
    assert builder is not None
    merged = routing.merge_routes(builder(None, None))
    assert merged["debt-call"] == "H" and merged["ping"] is routing.ping


def test_broken_call_script_import_is_not_swallowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fake_ivr_routes_broken.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(routing, "ROUTE_MODULES", ("fake_ivr_routes_broken",))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        routing.find_route_builder()
    sys.modules.pop("fake_ivr_routes_broken", None)
