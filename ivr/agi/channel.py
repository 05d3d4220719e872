"""The AGI channel API call scripts use: one object per call, one command in flight at a time.

The channel is transport-agnostic. A transport (the FastAGI connection, the classic-AGI pipe, or a
test) gives it a ``write(bytes)`` callable and pushes every line Asterisk sends into `feed_line`,
and end of input into `feed_eof`. Lines are sorted here:

* ``HANGUP`` is an unsolicited notice. It can arrive while the script is idle, or after a command
  was sent and before that command's reply (agi-hangup-getdata.txt), so it is never taken as a
  reply; it only marks the channel hung up. The command in flight still gets its own reply.
* ``520-`` starts a usage block that ends at ``520 ...``; anything else completes the pending
  command.

``result=-1`` from a media command (STREAM FILE, GET DATA, WAIT FOR DIGIT, SAY *) means either the
caller hung up or, for a missing sound file, an error on a live channel
(agi-stream-nodigit.txt: ``200 result=-1 endpos=0``). The channel asks ``CHANNEL STATUS``: a 511 or
a HANGUP notice means hang-up (`AGIHangup`); otherwise a warning is logged and the method returns
its "nothing pressed" value.

Once the channel is known to be gone (HANGUP notice, 511, confirmed -1, EOF, our own HANGUP) every
method raises `AGIHangup` without sending anything.

Every reply has a deadline (`ReplyDeadlines`): a peer that stops answering must not hold a call,
and its connection, forever. A reply that never comes, a line that is not AGI, or a line while no
command is pending ends the conversation the same way a hang-up does (`AGIHangup`): after any of
them, pairing replies with commands would be a guess.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ivr.agi import protocol as p
from ivr.agi.ratelog import RateLimitedLog

log = logging.getLogger(__name__)
_limited = RateLimitedLog(log)

Write = Callable[[bytes], None]


class AGIHangup(Exception):
    """Channel is gone; no further command is sent."""


class AGICommandError(Exception):
    """Asterisk refused a command: 510 unknown command, 520 usage (multi-line), other non-200."""

    def __init__(self, code: int, message: str, command: str = "") -> None:
        super().__init__(f"AGI {code} for {command!r}: {message}" if command else f"AGI {code}: {message}")
        self.code = code
        self.message = message
        self.command = command


class _NoReply(Exception):
    """The reply deadline of the command in flight passed."""


def _expire(fut: asyncio.Future[p.Reply]) -> None:
    if not fut.done():
        fut.set_exception(_NoReply())


@dataclass(frozen=True, slots=True)
class ReplyDeadlines:
    """How long to wait for the reply to one command.

    `quick` for commands Asterisk answers at once (VERBOSE, SET/GET VARIABLE, ...). Every other
    command plays a prompt or waits for the caller: `media` covers the longest prompt a call plays
    (the debt message with its amount and dates is well under a minute; the default leaves ten),
    plus the command's own timeout (GET DATA: per digit). ``WAIT FOR DIGIT -1`` waits without
    limit by design; only the session deadline bounds it."""

    quick: float = 30.0
    media: float = 600.0

    def __post_init__(self) -> None:
        if not (self.quick > 0 and self.media > 0):
            raise ValueError("reply deadlines must be positive")

    def for_line(self, line: str) -> float | None:
        if p.is_quick(line):
            return self.quick
        own_ms = p.reply_wait_ms(line)
        return None if own_ms is None else self.media + own_ms / 1000


@dataclass(frozen=True, slots=True)
class DigitResult:
    """GET DATA outcome: the digits entered (``#`` ends entry and is not included) and whether
    input stopped on the timeout rather than on ``#`` or max_digits."""

    digits: str
    timed_out: bool


class AGIChannel:
    """One call's AGI session. See the module docstring for the hang-up rules."""

    env: Mapping[str, str]
    args: list[str]
    script: str
    query: dict[str, str]
    hung_up: bool

    def __init__(
        self,
        env: Mapping[str, str],
        write: Write,
        *,
        args: list[str] | None = None,
        script: str | None = None,
        query: Mapping[str, str] | None = None,
        deadlines: ReplyDeadlines | None = None,
        peer: str | None = None,
    ) -> None:
        self.env = MappingProxyType(dict(env))
        self.peer = peer  # address of the Asterisk that connected (FastAGI), None for classic AGI
        self.deadlines = deadlines or ReplyDeadlines()
        self.args = p.env_args(env) if args is None else list(args)
        route, parsed_query = p.route_from_env(env)
        self.script = route if script is None else script
        self.query = parsed_query if query is None else dict(query)
        self.hung_up = False
        self._write = write
        self._pending: asyncio.Future[p.Reply] | None = None
        self._pending_line = ""
        self._usage: list[str] | None = None
        self._eof = False
        self._desynced = False
        self._hangup_event: asyncio.Event | None = None
        self.commands_sent = 0
        self.stray_lines = 0  # lines that were no reply to anything: the peer is not speaking AGI
        self.pump_task: asyncio.Task[None] | None = None  # set by from_streams

    @classmethod
    async def from_streams(
        cls, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, env_timeout: float = 10.0
    ) -> AGIChannel:
        """A channel over asyncio streams (a socket Asterisk opened, a socketpair in a simulator):
        reads the environment block, then a background task (`pump_task`) feeds every line to the
        channel until EOF. The FastAGI server uses its own Protocol instead (one layer less)."""
        env: dict[str, str] = {}
        async with asyncio.timeout(env_timeout):
            while True:
                raw = await reader.readline()
                if not raw:
                    raise AGIHangup("connection closed before the end of the environment block")
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if not line:
                    break
                kv = p.parse_env_line(line)
                if kv is not None:
                    env[kv[0]] = kv[1]
        channel = cls(env, writer.write)
        channel.pump_task = asyncio.get_running_loop().create_task(channel._pump(reader))
        return channel

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        try:
            while raw := await reader.readline():
                self.feed_line(raw.decode("utf-8", "replace").rstrip("\r\n"))
        except (ConnectionError, ValueError) as exc:  # ValueError: line over the reader's limit
            log.warning("AGI %s: reading from Asterisk failed: %s", self.script, exc)
        finally:
            self.feed_eof()

    # --- transport side -----------------------------------------------------------------------
    def feed_line(self, line: str) -> None:
        """One line from Asterisk, without its LF."""
        if line == p.HANGUP_NOTICE:
            self.notice_hangup()
            return
        usage = self._usage
        if usage is not None:
            usage.append(line)
            if line.startswith(p.USAGE_LAST_PREFIX):
                self._usage = None
                self._deliver(p.parse_usage_block(usage), None)
            elif len(usage) > p.MAX_USAGE_LINES:
                self._usage = None
                self._deliver(None, p.AGIProtocolError(f"520 usage block longer than {p.MAX_USAGE_LINES} lines"))
            return
        if line.startswith(p.USAGE_FIRST_PREFIX):
            self._usage = [line]
            return
        try:
            reply = p.parse_reply(line)
        except p.AGIProtocolError as exc:
            self._deliver(None, exc)
            return
        self._deliver(reply, None)

    def feed_eof(self) -> None:
        """Asterisk closed the connection (or the pipe): the call is over."""
        if self._eof:
            return
        self._eof = True
        self.notice_hangup()
        fut = self._pending
        if fut is not None and not fut.done():
            fut.set_exception(AGIHangup("connection closed by Asterisk"))

    def notice_hangup(self) -> None:
        """A HANGUP notice (FastAGI) or SIGHUP (classic AGI): the channel is gone."""
        if not self.hung_up:
            self.hung_up = True
            log.debug("AGI %s: hangup notice", self.script)
        if self._hangup_event is not None:
            self._hangup_event.set()

    def _deliver(self, reply: p.Reply | None, error: Exception | None) -> None:
        fut = self._pending
        if fut is None or fut.done():
            # Asterisk only answers commands; a stray reply means we lost track (e.g. a command
            # whose wait was cancelled) or the peer is not Asterisk. Never hand it to a later
            # command. Rate-limited: a peer can send such lines as fast as it likes.
            self.stray_lines += 1
            self._desynced = True
            _limited.warning("stray", "AGI %s from %s: unexpected line from Asterisk with no command pending: %.80r",
                             self.script, self.peer or "?", reply.text if reply else str(error))
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(reply)  # type: ignore[arg-type]

    # --- command core -------------------------------------------------------------------------
    async def run_command(self, line: str) -> p.Reply:
        """Send one command line verbatim and return its 200 reply (escape hatch for commands
        without a method, e.g. ``CONTROL STREAM FILE``). ValueError if the line holds CR/LF;
        AGIHangup on 511/EOF; AGICommandError on any other non-200."""
        return await self._command(p.check_raw_line(line))

    async def _command(self, line: str) -> p.Reply:
        if self.hung_up or self._desynced:
            raise AGIHangup(f"channel is hung up; not sending {line.split(' ', 1)[0]}")
        if self._pending is not None:
            raise RuntimeError("an AGI command is already in flight on this channel")
        fut: asyncio.Future[p.Reply] = asyncio.get_running_loop().create_future()
        self._pending = fut
        self._pending_line = line
        try:
            self._write(line.encode() + b"\n")
        except (OSError, RuntimeError) as exc:  # RuntimeError: asyncio transport already half-closed
            self._pending = None
            self.feed_eof()
            raise AGIHangup(f"cannot write to Asterisk: {exc}") from exc
        self.commands_sent += 1
        deadline = self.deadlines.for_line(line)
        # a plain timer rather than asyncio.timeout(): half the cost, on every command of every call
        timer = None if deadline is None else asyncio.get_running_loop().call_later(deadline, _expire, fut)
        try:
            reply = await fut
        except asyncio.CancelledError:
            # The reply to this command may still arrive; pairing later replies would be a guess.
            self._desynced = True
            raise
        except _NoReply:
            self._desynced = True
            _limited.warning("deadline", "AGI %s from %s: no reply to %r within %.0fs; ending the session",
                             self.script, self.peer or "?", line.split(" ", 2)[:2], deadline)
            raise AGIHangup(f"no reply from Asterisk within {deadline:.0f}s") from None
        except p.AGIProtocolError as exc:
            self._desynced = True
            _limited.warning("garbage", "AGI %s from %s: %s; ending the session", self.script, self.peer or "?", exc)
            raise AGIHangup(f"not an AGI reply: {exc}") from None
        finally:
            if timer is not None:
                timer.cancel()
            self._pending = None
        if reply.code == p.CODE_OK:
            return reply
        if reply.code == p.CODE_DEAD_CHANNEL:
            self.notice_hangup()
            raise AGIHangup(reply.text)
        raise AGICommandError(reply.code, reply.data or reply.text, line)

    async def _media(self, line: str) -> p.Reply | None:
        """A command whose result=-1 means hang-up or error; None for the live-channel error."""
        reply = await self._command(line)
        if reply.result != "-1":
            return reply
        if await self._confirm_hangup():
            raise AGIHangup(f"hung up during {line.split(' ', 2)[:2]}")
        log.warning("AGI %s: %r failed on a live channel (missing sound file?): %s",
                    self.script, line, reply.text)
        return None

    async def _confirm_hangup(self) -> bool:
        if self.hung_up:
            return True
        try:
            await self._command(p.cmd_channel_status())
        except AGIHangup:
            return True
        # a HANGUP notice may have arrived just before the status reply
        return self.hung_up

    @staticmethod
    def _digit(reply: p.Reply | None) -> str | None:
        if reply is None:
            return None
        return p.digit_from_result(reply.result_int)

    # --- the API call scripts use ------------------------------------------------------------
    async def answer(self) -> None:
        await self._media(p.cmd_answer())

    async def stream_file(self, name: str, escape_digits: str = "", *, offset: int | None = None) -> str | None:
        """Play a sound file; the escape digit pressed, or None (played to the end / missing)."""
        return self._digit(await self._media(p.cmd_stream_file(name, escape_digits, offset)))

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> DigitResult:
        reply = await self._media(p.cmd_get_data(prompt, timeout_ms, max_digits))
        if reply is None:  # prompt could not be played on a live channel: treat as no input
            return DigitResult("", True)
        return DigitResult(reply.result, reply.data == "timeout")

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        return self._digit(await self._media(p.cmd_wait_for_digit(timeout_ms)))

    async def say_number(self, number: int, escape_digits: str = "", gender: str | None = None) -> str | None:
        return self._digit(await self._media(p.cmd_say_number(number, escape_digits, gender)))

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        return self._digit(await self._media(p.cmd_say_digits(digits, escape_digits)))

    async def set_variable(self, name: str, value: str) -> None:
        await self._command(p.cmd_set_variable(name, value))

    async def get_variable(self, name: str) -> str | None:
        """The value, '' when set but empty, None when unset (``result=0``)."""
        reply = await self._command(p.cmd_get_variable(name))
        return None if reply.result == "0" else (reply.data or "")

    async def get_full_variable(self, expression: str) -> str | None:
        """Evaluate ``${...}`` expressions on the channel (unset variables give '')."""
        reply = await self._command(p.cmd_get_full_variable(expression))
        return None if reply.result == "0" else (reply.data or "")

    async def verbose(self, message: str, level: int = 1) -> None:
        await self._command(p.cmd_verbose(message, level))

    async def exec(self, application: str, *args: str) -> int:
        """Run a dialplan application; its result (0 ok, -2 unknown application, -1 failure or
        hang-up: this method does not probe, callers check `hung_up` or the next command)."""
        reply = await self._command(p.cmd_exec(application, args))
        result = reply.result_int
        if result == -2:
            log.warning("AGI %s: EXEC of unknown application %r", self.script, application)
        return result

    async def noop(self) -> None:
        await self._command(p.cmd_noop())

    async def hangup(self) -> None:
        """Hang up the call. The channel counts as gone afterwards (Asterisk follows with a
        HANGUP notice and 511 for media commands: agi-script-hangup.txt)."""
        try:
            await self._command(p.cmd_hangup())
        finally:
            self.notice_hangup()

    async def wait_for_hangup(self, timeout: float | None = None) -> bool:
        """Wait until the channel is known to be gone; False if `timeout` seconds passed first."""
        if self.hung_up:
            return True
        if self._hangup_event is None:
            self._hangup_event = asyncio.Event()
        try:
            async with asyncio.timeout(timeout):
                await self._hangup_event.wait()
        except TimeoutError:
            return False
        return True
