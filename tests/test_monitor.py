"""ivr.monitor: the heartbeat goes on while the minute outlook is computed elsewhere (`ivr run`
hands it to the import process, which may be busy with a long ladder pass)."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from typing import Any

from ivr.clock import FixedClock
from ivr.dialer.outlook import Outlook
from ivr.dialer.policy import load_rules
from ivr.monitor import Monitor
from ivr.wiring import Database

NOW = dt.datetime(2026, 12, 2, 10, 0, tzinfo=dt.UTC)


async def wait_for(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"{what} did not happen"
        await asyncio.sleep(0.01)


async def test_beats_go_on_while_the_outlook_waits_and_the_outlook_comes_from_outlook_fn(db: Database) -> None:
    release = threading.Event()
    asked: list[dt.datetime] = []
    beats: list[int] = []
    result = Outlook(at=NOW, open_cases=3)

    def slow_outlook(now: dt.datetime) -> Outlook:
        asked.append(now)
        release.wait(60)  # the import process is busy with something else
        return result

    monitor = Monitor(sessions=db.sessions, rules_loader=lambda s: load_rules(s, "Europe/Moscow"),
                      clock=FixedClock(NOW), instance="test-1", role="run",
                      info=lambda: beats.append(1) or {}, beat_every=0.02, gist_every=0.0,
                      outlook_fn=slow_outlook)
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    try:
        await wait_for(lambda: asked, "the outlook being asked for")
        seen = len(beats)
        await wait_for(lambda: len(beats) >= seen + 3, "three more heartbeats while the outlook waits")
        assert monitor.last_outlook is None and len(asked) == 1  # one outlook at a time
        release.set()
        await wait_for(lambda: monitor.last_outlook is result, "the outlook arriving")
        assert asked[0] == NOW  # the monitor's clock, passed to the other process
    finally:
        release.set()
        stop.set()
        await asyncio.wait_for(task, 60)
