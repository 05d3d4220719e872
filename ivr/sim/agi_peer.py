"""Asterisk's side of one FastAGI session: connect to the script's server, send the agi_ block,
answer commands the way Asterisk 22 did in the recordings.

Hang-up on the wire, as recorded (agi-hangup-*.txt, agi-script-hangup.txt):
- hang-up while a command runs: that command answers `200 result=-1` (STREAM FILE adds endpos=);
  the `HANGUP` notice follows ~40 ms later, or at once when the script's next command arrives
  first, and that command's reply then comes ~42 ms after the notice;
- hang-up while the script is idle: `HANGUP` at once;
- afterwards only a few commands run (agi_text.DEAD_OK); the rest get 511;
- when the script half-closes, one more `HANGUP`, then the socket closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from ivr.sim import agi_text as T
from ivr.sim.agi_media import MediaCommands
from ivr.sim.channel import HANGUP, SimCall
from ivr.sim.sounds import SoundLibrary

log = logging.getLogger(__name__)

NOTICE_DELAY = 0.040  # result=-1 → HANGUP notice
NOTICE_REPLY_DELAY = 0.042  # HANGUP notice → reply of a command that was already waiting
USAGE_DELAY = 0.042  # "520-..." → rest of the usage block
CONNECT_TIMEOUT = 5.0  # real seconds


Handler = Callable[[list[str]], Awaitable[str]]


class AgiPeer(MediaCommands):
    def __init__(
        self,
        call: SimCall,
        sounds: SoundLibrary,
        url: str,
        args: Sequence[str],
        threadid: int,
        *,
        agi_events: bool = False,
        db: dict[tuple[str, str], str] | None = None,
    ) -> None:
        self.call = call
        self.db = db if db is not None else {}  # DATABASE PUT/GET: astdb, one per Asterisk
        self.agi_events = agi_events
        self.time = call.time
        self.sounds = sounds
        self.url = url
        self.args = list(args)
        self.threadid = threadid
        self.failed = False
        self._writer: asyncio.StreamWriter | None = None
        self._busy = False
        self._notified = False
        self._notice: asyncio.TimerHandle | None = None
        self._autohangup: asyncio.TimerHandle | None = None
        self._handlers: dict[tuple[str, ...], Handler] = {
            ("answer",): self._answer,
            ("channel", "status"): self._channel_status,
            ("control", "stream", "file"): self._control_stream_file,
            ("database", "del"): self._db_del,
            ("database", "deltree"): self._db_deltree,
            ("database", "get"): self._db_get,
            ("database", "put"): self._db_put,
            ("exec",): self._exec,
            ("get", "data"): self._get_data,
            ("get", "full", "variable"): self._get_full_variable,
            ("get", "option"): self._get_option,
            ("get", "variable"): self._get_variable,
            ("hangup",): self._hangup,
            ("noop",): self._noop,
            ("record", "file"): self._record_file,
            ("say", "alpha"): self._say_chars,
            ("say", "phonetic"): self._say_chars,
            ("say", "date"): self._say_time,
            ("say", "time"): self._say_time,
            ("say", "datetime"): self._say_time,
            ("say", "digits"): self._say_digits,
            ("say", "number"): self._say_number,
            ("set", "autohangup"): self._set_autohangup,
            ("set", "callerid"): self._set_callerid,
            ("set", "context"): self._set_one_arg,
            ("set", "extension"): self._set_one_arg,
            ("set", "priority"): self._set_one_arg,
            ("set", "music"): self._set_music,
            ("set", "variable"): self._set_variable,
            ("stream", "file"): self._stream_file,
            ("verbose",): self._verbose,
            ("wait", "for", "digit"): self._wait_for_digit,
        }

    # -- session -------------------------------------------------------------------------
    async def run(self) -> str:
        """Run the whole session; returns the AGISTATUS value."""
        parts = urlsplit(self.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 4573
        script = parts.path.lstrip("/")
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            log.info("sim: FastAGI %s unreachable: %s", self.url, exc)
            return "FAILURE"
        self._writer = writer
        one = self.call.one
        self.call.add_hangup_listener(self._on_hangup)
        try:
            writer.write(
                T.env_block(
                    script=script,
                    request=self.url,
                    channel=one.name,
                    language=one.language,
                    uniqueid=one.uniqueid,
                    callerid=self.call.caller_num,
                    calleridname=self.call.caller_name,
                    context=one.context,
                    extension=self.call.robot_exten,
                    threadid=self.threadid,
                    args=self.args,
                ).encode()
            )
            if self.call.dead:
                self._send_notice()
            await self._loop(reader)
            self._flush_notice()
            self._write("HANGUP")
        except asyncio.CancelledError:
            writer.transport.abort()  # core restart now: the connection just drops
            raise
        finally:
            self.call.remove_hangup_listener(self._on_hangup)
            if self._autohangup is not None:
                self._autohangup.cancel()
            if self._notice is not None:
                self._notice.cancel()
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await writer.wait_closed()
        if self.failed:
            return "FAILURE"
        return "HANGUP" if self.call.dead else "SUCCESS"

    async def _loop(self, reader: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await reader.readline()
            except (OSError, ValueError):
                return
            if not raw:
                return  # the script closed (or half-closed) its side
            if self._notice is not None:
                self._notice.cancel()
                self._send_notice()
                await self.time.sleep(NOTICE_REPLY_DELAY)
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.call.record.commands.append(line)
            self._busy = True
            command_id = str(random.randrange(1, 2**31))
            if self.agi_events:
                self._exec_event("AGIExecStart", command_id, line)
            try:
                reply = await self._dispatch(line)
            finally:
                self._busy = False
            if reply:
                self._write(reply)
            if self.agi_events:
                self._exec_event("AGIExecEnd", command_id, line, reply)
            if self.call.dead and not self._notified and self._notice is None:
                self._notice = self.time.later(NOTICE_DELAY, self._send_notice)
            if self._writer is None or self._writer.is_closing():
                return

    async def _dispatch(self, line: str) -> str:
        argv = T.parse_args(line)
        cmd = T.find_command(argv)
        if cmd is None:
            return T.R_INVALID
        if self._notified and cmd not in T.DEAD_OK:
            return T.R_DEAD
        try:
            return await self._handlers[cmd](argv)
        except T.ShowUsage:
            self._write(T.USAGE_HEAD)
            await self.time.sleep(USAGE_DELAY)
            return T.USAGE[cmd] + "\n" + T.USAGE_TAIL

    def _exec_event(self, event: str, command_id: str, line: str, reply: str | None = None) -> None:
        extra = [("CommandId", command_id), ("Command", line)]
        if reply is not None:
            code = "520" if reply.endswith(T.USAGE_TAIL) else reply[:3]
            extra += [("ResultCode", code), ("Result", _RESULT_TEXT.get(code, "Unknown Result"))]
            if reply.startswith("200 result=-2"):
                extra[-1] = ("Result", "Unknown Result")
        self.call.emit_half(event, "agi,all", self.call.one, extra)

    def _write(self, text: str) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write((text + "\n").encode())

    def _on_hangup(self) -> None:
        if not self._busy and not self._notified and self._notice is None:
            self._send_notice()  # idle: straight away (agi-hangup-idle.txt)

    def _send_notice(self) -> None:
        self._notice = None
        if not self._notified:
            self._notified = True
            self._write("HANGUP")

    def _flush_notice(self) -> None:
        if self._notice is not None:
            self._notice.cancel()
            self._send_notice()

    # -- media helpers -------------------------------------------------------------------
    # -- commands ------------------------------------------------------------------------
    async def _answer(self, argv: list[str]) -> str:
        return "200 result=0"  # the robot leg is already up (agi-basic-commands.txt)

    async def _noop(self, argv: list[str]) -> str:
        return "200 result=0"

    async def _verbose(self, argv: list[str]) -> str:
        if len(argv) < 2:
            raise T.ShowUsage
        return "200 result=1"

    async def _channel_status(self, argv: list[str]) -> str:
        if len(argv) == 2:
            return "200 result=6"
        if len(argv) == 3:
            return (
                "200 result=6"
                if argv[2] in (self.call.one.name, self.call.two.name)
                else "200 result=-1"
            )
        raise T.ShowUsage

    async def _set_variable(self, argv: list[str]) -> str:
        if len(argv) != 4:
            raise T.ShowUsage
        self.call.set_var(argv[2], argv[3])
        return "200 result=1"

    async def _get_variable(self, argv: list[str]) -> str:
        if len(argv) != 3:
            raise T.ShowUsage
        value = self.call.get_var(argv[2])
        return "200 result=0" if value is None else f"200 result=1 ({value})"

    async def _get_full_variable(self, argv: list[str]) -> str:
        if len(argv) not in (4, 5):
            raise T.ShowUsage
        if len(argv) == 5 and argv[4] not in (self.call.one.name, self.call.two.name):
            return "200 result=0"
        return f"200 result=1 ({self._expand(argv[3])})"

    def _expand(self, text: str) -> str:
        """${NAME} / ${FUNC(arg)} substitution, innermost first."""
        pattern = re.compile(r"\$\{([^{}]*)\}")
        for _ in range(20):
            new = pattern.sub(lambda m: self._lookup(m.group(1)), text)
            if new == text:
                break
            text = new
        return text

    def _lookup(self, expr: str) -> str:
        name, _, rng = expr.partition(":")
        value = self.call.get_var(name) or ""
        if rng:
            parts = rng.split(":")
            offset = T.atoi(parts[0])
            value = value[offset:]
            if len(parts) > 1 and parts[1]:
                value = value[: T.atoi(parts[1])]
        return value

    async def _exec(self, argv: list[str]) -> str:
        if len(argv) < 2:
            raise T.ShowUsage
        app = argv[1].lower()
        data = argv[2] if len(argv) > 2 else ""  # res_agi passes only the first argument word
        if app in ("playback", "background"):
            # Playback only warns about a missing file; PLAYBACKSTATUS tells (as recorded)
            status, result = "SUCCESS", "200 result=0"
            for name in data.split(",")[0].split("&"):
                seconds = self.sounds.duration(name, self.call.language) if name else None
                if seconds is None or self.call.dead:
                    status = "FAILED"
                    continue
                got, _ = await self._play(seconds, "")
                if got == HANGUP:
                    status, result = "FAILED", "200 result=-1"
                    break
            self.call.set_var("PLAYBACKSTATUS", status)
            return result
        if app == "set":
            name, sep, value = data.partition("=")
            if sep and name:
                self.call.set_var(name, value)
            return "200 result=0"
        if app == "wait":
            if self.call.dead:
                return "200 result=-1"
            try:
                seconds = float(data or 0)
            except ValueError:
                seconds = 0.0
            got, _ = await self._play(seconds, "")
            return "200 result=-1" if got == HANGUP else "200 result=0"
        if app == "hangup":
            self.call.script_hangup()
            return "200 result=-1"
        if app in _INSTANT_APPS:
            return "200 result=0"
        return "200 result=-2"

    async def _hangup(self, argv: list[str]) -> str:
        if len(argv) > 2:
            raise T.ShowUsage
        if len(argv) == 2 and argv[1] not in (self.call.one.name, self.call.two.name):
            return "200 result=-1"
        self.call.script_hangup()
        return "200 result=1"

    async def _set_autohangup(self, argv: list[str]) -> str:
        if len(argv) != 3:
            raise T.ShowUsage
        seconds = float(T.atoi(argv[2]))
        if self._autohangup is not None:
            self._autohangup.cancel()
            self._autohangup = None
        if seconds > 0:
            self._autohangup = self.time.later(seconds, self.call.script_hangup)
        return "200 result=0"

    async def _set_callerid(self, argv: list[str]) -> str:
        if len(argv) != 3:
            raise T.ShowUsage
        self.call.set_var("CALLERID(num)", argv[2])
        return "200 result=1"

    async def _set_one_arg(self, argv: list[str]) -> str:
        if len(argv) != 3:
            raise T.ShowUsage
        return "200 result=0"

    async def _set_music(self, argv: list[str]) -> str:
        if len(argv) < 3:
            raise T.ShowUsage
        return "200 result=0"

    async def _db_get(self, argv: list[str]) -> str:
        if len(argv) != 4:
            raise T.ShowUsage
        value = self.db.get((argv[2], argv[3]))
        return "200 result=0" if value is None else f"200 result=1 ({value})"

    async def _db_put(self, argv: list[str]) -> str:
        if len(argv) != 5:
            raise T.ShowUsage
        self.db[(argv[2], argv[3])] = argv[4]
        return "200 result=1"

    async def _db_del(self, argv: list[str]) -> str:
        if len(argv) != 4:
            raise T.ShowUsage
        return (
            "200 result=1" if self.db.pop((argv[2], argv[3]), None) is not None else "200 result=0"
        )

    async def _db_deltree(self, argv: list[str]) -> str:
        if len(argv) not in (3, 4):
            raise T.ShowUsage
        prefix = argv[3] if len(argv) == 4 else ""
        doomed = [k for k in self.db if k[0] == argv[2] and k[1].startswith(prefix)]
        for k in doomed:
            del self.db[k]
        return "200 result=1" if doomed else "200 result=0"


_RESULT_TEXT = {
    "200": "Success",
    "510": "Invalid or unknown command",
    "511": "Command Not Permitted on a dead channel or intercept routine",
    "520": "Usage",
}
_INSTANT_APPS = frozenset(
    {
        "answer",
        "noop",
        "verbose",
        "log",
        "userevent",
        "progress",
        "ringing",
        "mixmonitor",
        "stopmixmonitor",
        "set",
        "setvar",
        "monitor",
        "stopmonitor",
        "cdr",
        "gosub",
        "return",
    }
)


def thread_id(seq: int) -> int:
    """Something shaped like the recorded agi_threadid (a pthread address)."""
    return 140445775000000 + (seq * 4096 + int(time.time())) % 10_000_000
