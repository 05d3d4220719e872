"""The person (or machine) on the line: presses keys and hangs up as their Callee says.

Digits go out like Asterisk's SendDTMF(digits,250,100) in the recordings: 100 ms per digit,
250 ms between digits, `w` is a 0.5 s pause. See ivr.sim.scenario for how a KeyPress meets an
input opportunity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from ivr.sim.scenario import KeyPress

if TYPE_CHECKING:
    from ivr.sim.channel import InputWindow, SimCall

DTMF_DURATION = 0.1
DTMF_GAP = 0.25
DTMF_PAUSE = 0.5
HANGUP_AT_INPUT_AFTER = 0.5


class CalleeAgent:
    """The person (or machine) on the line: presses keys and hangs up per their Callee."""

    def __init__(self, call: SimCall) -> None:
        self.call = call
        self.callee = call.callee
        self._next_key = 0
        self._pending: tuple[InputWindow, asyncio.TimerHandle] | None = None
        self._pending_due: float | None = None  # when the pending press's first digit lands
        self._senders: set[asyncio.Task[None]] = set()
        self._sender_due: dict[int, float] = {}  # sender → when its next digit lands
        self._sender_seq = 0
        self._media = 0  # commands that played or listened so far
        self._press_in_flight: asyncio.Task[None] | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._stopped = False

    def digit_due(self) -> float | None:
        """When (loop time, as scheduled) the next digit on its way lands, or None. Every time
        here is computed from when the press was due, never from when a late loop got to it."""
        dues = list(self._sender_due.values())
        if self._pending is not None and self._pending_due is not None:
            dues.append(self._pending_due)
        return min(dues) if dues else None

    def on_answer(self) -> None:
        t = self.call.time
        for at, digits in self.callee.timeline:
            when = t.now() + t.real(at)
            self._timers.append(t.at(when, self._sender_starter(digits, when)))
        if self.callee.hangup_after is not None:
            self._timers.append(t.later(self.callee.hangup_after, self.call.far_end_hangup))

    def on_media(self) -> None:
        """A command that plays or listens started."""
        self._media += 1
        if not self._stopped and self.callee.hangup_at_media == self._media:
            self._timers.append(
                self.call.time.later(HANGUP_AT_INPUT_AFTER, self.call.far_end_hangup)
            )

    def on_opportunity(self, window: InputWindow, index: int) -> None:
        if self._stopped:
            return
        if self.callee.hangup_at_input == index:
            self._timers.append(
                self.call.time.later(HANGUP_AT_INPUT_AFTER, self.call.far_end_hangup)
            )
        if self._press_in_flight is not None and not self._press_in_flight.done():
            return  # still typing the previous answer: its digits serve this command
        if self._next_key >= len(self.callee.keys):
            return
        press = self.callee.keys[self._next_key]
        t = self.call.time
        when = t.now() + t.real(press.delay)
        handle = t.at(when, lambda: self._press(window, press, when))
        self._pending = (window, handle)
        schedule = self._schedule(press.digits, when)
        self._pending_due = schedule[0][2] if schedule else None

    def on_window_closed(self, window: InputWindow) -> None:
        if self._pending is not None and self._pending[0] is window:
            # the command ended before the press was due: keep the press for the next input
            self._pending[1].cancel()
            self._pending = None

    def _press(self, window: InputWindow, press: KeyPress, when: float) -> None:
        self._pending = None
        if self._stopped or window.closed:
            return
        self._next_key += 1
        if press.digits:
            self._press_in_flight = self._start_sender(press.digits, when)

    def _sender_starter(self, digits: str, when: float) -> Callable[[], None]:
        def start() -> None:
            self._start_sender(digits, when)

        return start

    def _schedule(self, digits: str, start: float) -> list[tuple[str, float, float]]:
        """(digit, begins, ends) in loop time for digits sent from `start`."""
        t = self.call.time
        out: list[tuple[str, float, float]] = []
        cursor = start
        for i, ch in enumerate(digits):
            if ch == "w":
                cursor += t.real(DTMF_PAUSE)
                continue
            end = cursor + t.real(DTMF_DURATION)
            out.append((ch, cursor, end))
            cursor = end + (t.real(DTMF_GAP) if i + 1 < len(digits) else 0.0)
        return out

    def _start_sender(self, digits: str, start: float) -> asyncio.Task[None] | None:
        if self._stopped:
            return None
        schedule = self._schedule(digits, start)
        if not schedule:
            return None
        self._sender_seq += 1
        key = self._sender_seq
        # known before the task first runs: a command timing out meanwhile waits for this digit
        self._sender_due[key] = schedule[0][2]
        task = asyncio.get_running_loop().create_task(self._send(schedule, key))
        self._senders.add(task)
        task.add_done_callback(self._senders.discard)
        return task

    async def _send(self, schedule: list[tuple[str, float, float]], key: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            for ch, begins, ends in schedule:
                if self.call.dead:
                    return
                self._sender_due[key] = ends
                await asyncio.sleep(max(begins - loop.time(), 0.0))
                if self.call.dead:
                    return
                self.call.dtmf_begin(ch)
                await asyncio.sleep(max(ends - loop.time(), 0.0))
                self.call.dtmf_end(ch)
        finally:
            self._sender_due.pop(key, None)
            if self.call.window is not None:
                self.call.window.recheck()  # a time-out held back for this sender may go now

    def stop(self) -> None:
        self._stopped = True
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        if self._pending is not None:
            self._pending[1].cancel()
            self._pending = None
        for task in list(self._senders):
            task.cancel()
