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
        self._senders: set[asyncio.Task[None]] = set()
        self._press_in_flight: asyncio.Task[None] | None = None
        self._timers: list[asyncio.TimerHandle] = []
        self._stopped = False

    def on_answer(self) -> None:
        t = self.call.time
        for at, digits in self.callee.timeline:
            self._timers.append(t.later(at, self._sender_starter(digits)))
        if self.callee.hangup_after is not None:
            self._timers.append(t.later(self.callee.hangup_after, self.call.far_end_hangup))

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
        handle = self.call.time.later(press.delay, lambda: self._press(window, press))
        self._pending = (window, handle)

    def on_window_closed(self, window: InputWindow) -> None:
        if self._pending is not None and self._pending[0] is window:
            # the command ended before the press was due: keep the press for the next input
            self._pending[1].cancel()
            self._pending = None

    def _press(self, window: InputWindow, press: KeyPress) -> None:
        self._pending = None
        if self._stopped or window.closed:
            return
        self._next_key += 1
        if press.digits:
            self._press_in_flight = self._start_sender(press.digits)

    def _sender_starter(self, digits: str) -> Callable[[], None]:
        def start() -> None:
            self._start_sender(digits)

        return start

    def _start_sender(self, digits: str) -> asyncio.Task[None] | None:
        if self._stopped:
            return None
        task = asyncio.get_running_loop().create_task(self._send(digits))
        self._senders.add(task)
        task.add_done_callback(self._senders.discard)
        return task

    async def _send(self, digits: str) -> None:
        t = self.call.time
        for i, ch in enumerate(digits):
            if self.call.dead:
                return
            if ch == "w":
                await t.sleep(DTMF_PAUSE)
                continue
            self.call.dtmf_begin(ch)
            await t.sleep(DTMF_DURATION)
            self.call.dtmf_end(ch)
            if i + 1 < len(digits):
                await t.sleep(DTMF_GAP)

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
