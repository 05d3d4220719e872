"""The event-loop watchdog names where the loop is stuck while it is stuck, and counts stalls."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from ivr.loopwatch import LoopWatch


class _Reports(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []
        self.seen = threading.Event()
        self.ended = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        if "_stuck_in_a_slow_read" in message:  # not a stall of a busy test machine elsewhere
            (self.ended if "in all" in message else self.seen).set()


@pytest.fixture
def reports() -> _Reports:
    handler = _Reports()
    logger = logging.getLogger("ivr.loopwatch")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    yield handler
    logger.removeHandler(handler)


def _stuck_in_a_slow_read(reports: _Reports) -> None:
    """Blocks the loop thread until the watchdog has reported (never on a fixed sleep alone: on a
    busy machine the watch thread may run late), then a little longer."""
    deadline = time.monotonic() + 30
    while not reports.seen.is_set():  # polled here, so this function is the innermost frame
        assert time.monotonic() < deadline, "the watchdog did not report a blocked loop within 30 s"
        time.sleep(0.01)
    time.sleep(0.1)


async def test_a_blocked_loop_is_reported_with_the_loop_threads_stack(reports: _Reports) -> None:
    watch = LoopWatch(threshold=0.2, tick=0.02)
    watch.start()
    try:
        await asyncio.sleep(0.05)
        _stuck_in_a_slow_read(reports)
        await asyncio.to_thread(reports.ended.wait, 30)
    finally:
        watch.stop()
    [first, last] = [m for m in reports.messages if "_stuck_in_a_slow_read" in m]
    assert "event loop blocked for" in first and "so far" in first
    assert "test_loopwatch.py" in first  # the stack: where the loop thread was stuck
    assert "in all" in last
    snap = watch.snapshot()
    assert snap["count"] >= 1 and snap["last_where"].endswith("_stuck_in_a_slow_read")
    assert snap["longest_ms"] >= 200  # at least the threshold, since the report came after it
    assert snap["last_at"] is not None


async def test_a_busy_but_turning_loop_is_not_a_stall(reports: _Reports) -> None:
    # a threshold far above the work's pieces: a busy test machine must not make this a stall
    watch = LoopWatch(threshold=2.0, tick=0.02)
    watch.start()
    try:
        for _ in range(50):  # many short pieces of work, each well under the threshold
            time.sleep(0.005)
            await asyncio.sleep(0)
        await asyncio.sleep(0.1)
    finally:
        watch.stop()
    assert watch.count == 0 and reports.messages == []


def test_threshold_must_exceed_the_tick() -> None:
    with pytest.raises(ValueError, match="tick"):
        LoopWatch(threshold=0.05, tick=0.05)


def test_ivr_status_shows_the_stalls_a_service_reported() -> None:
    from ivr.commands.status_cmd import render

    watch = LoopWatch()
    quiet = {"threshold_ms": 250, "count": 0, "longest_ms": 0, "last_at": None, "last_ms": None, "last_where": None}
    assert watch.snapshot() == quiet
    stalled = {**quiet, "count": 3, "longest_ms": 812, "last_at": "2026-12-03T10:49:31+00:00",
               "last_ms": 300, "last_where": "ivr/call/manifest.py:283 read"}
    service = {"instance": "host:1", "role": "run", "host": "host", "pid": 1, "alive": True, "stopped": False,
               "simulator": False, "started_at": "2026-12-03T10:00:00+00:00", "updated_at": "2026-12-03T10:50:00+00:00"}
    bucket = {"count": 0, "first_local": None, "first_zone": None}
    cases = {"states": {}, "callable_now": 0, "in_flight": 0, "no_phone": 0, "bad_timezone": 0, "opted_out": 0,
             "leaving": 0, "open_cases": 0, "next_call": {"at": None, "why": ""},
             **{k: bucket for k in ("waiting_window", "held_by_limits", "scheduled", "waiting_stage", "promised")}}
    report = {"at": "2026-12-03T10:50:00+00:00", "cases": cases, "lines": {}, "ami": [], "fastagi": [],
              "services": [{**service, "loop": quiet}, {**service, "instance": "host:2", "loop": stalled}]}
    lines = [line for line in render(report).splitlines() if "STALLS" in line]
    assert lines == ["  EVENT LOOP STALLS (over 250 ms, every call waits): 3, longest 812 ms; last at "
                     "2026-12-03T10:49:31+00:00 in ivr/call/manifest.py:283 read (the log has its stack)"]
