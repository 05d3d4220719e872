"""The FastAGI commands that play sound or listen for digits (STREAM FILE, GET DATA, WAIT FOR
DIGIT, SAY *, GET OPTION, CONTROL STREAM FILE, RECORD FILE), as a mixin of AgiPeer."""

from __future__ import annotations

from ivr.sim import agi_text as T
from ivr.sim.channel import HANGUP, SimCall, SimTime
from ivr.sim.sounds import SAMPLE_RATE, SoundLibrary

DIGITS = "0123456789*#ABCD"
# pbx defaults used by GET DATA without a timeout (rtimeoutms / dtimeoutms) and GET OPTION
FIRST_DIGIT_TIMEOUT_MS = 10000
NEXT_DIGIT_TIMEOUT_MS = 5000
# one sound file of SAY NUMBER / SAY DIGITS, measured from agi-say-ru.txt
SAY_FILE_SECONDS = {"en": 0.8, "ru": 0.56}
SAY_FILE_DEFAULT = 0.7


def say_number_files(n: int) -> int:
    """How many sound files Asterisk plays for a number (en rules: 1800 → 1 thousand 8 hundred)."""
    files = 1 if n < 0 else 0
    n = abs(n)
    if n == 0:
        return files + 1

    def below_1000(x: int) -> int:
        count = 0
        if x >= 100:
            count += 2
            x %= 100
        if x >= 20:
            count += 1 + (1 if x % 10 else 0)
        elif x > 0:
            count += 1
        return count

    for scale in (10**9, 10**6, 10**3):
        if n >= scale:
            files += below_1000(n // scale) + 1
            n %= scale
    return files + below_1000(n)


class MediaCommands:
    """Needs `call`, `time`, `sounds` and `failed` from the session (AgiPeer)."""

    call: SimCall
    time: SimTime
    sounds: SoundLibrary
    failed: bool

    async def _play(self, seconds: float, escape: str) -> tuple[str | None, float]:
        """Play for `seconds`, stopping at an escape digit. Returns (digit|None|HANGUP, played s)."""
        call = self.call
        window = call.open_input(escape)
        start = self.time.now()
        try:
            got = await window.next(self.time.real(seconds))
        finally:
            call.close_input(window)
        played = min(self.time.elapsed(start), seconds)
        return got, played

    def _say_seconds(self, files: int) -> float:
        return files * SAY_FILE_SECONDS.get(self.call.language, SAY_FILE_DEFAULT)

    async def _say(self, files: int, escape: str) -> str:
        got, _ = await self._play(self._say_seconds(files), escape)
        if got == HANGUP:
            return "200 result=-1"
        return f"200 result={ord(got) if got else 0}"

    async def _stream_file(self, argv: list[str]) -> str:
        if len(argv) not in (4, 5):
            raise T.ShowUsage
        name, escape = argv[2], argv[3]
        offset = T.atoi(argv[4]) if len(argv) == 5 else 0
        seconds = self.sounds.duration(name, self.call.language)
        if seconds is None:
            self.failed = True  # AGISTATUS=FAILURE at the end; no PLAYBACKSTATUS (as recorded)
            return "200 result=-1 endpos=0"
        start = min(offset / SAMPLE_RATE, seconds)
        got, played = await self._play(seconds - start, escape)
        endpos = offset + int(played * SAMPLE_RATE) if got else round(seconds * SAMPLE_RATE)
        # res_agi: PLAYBACKSTATUS is SUCCESS only for a play to the end (a digit: FAILED)
        self.call.set_var("PLAYBACKSTATUS", "FAILED" if got else "SUCCESS")
        if got == HANGUP:
            return f"200 result=-1 endpos={endpos}"
        return f"200 result={ord(got) if got else 0} endpos={endpos}"

    async def _control_stream_file(self, argv: list[str]) -> str:
        if len(argv) < 5 or len(argv) > 10:
            raise T.ShowUsage
        seconds = self.sounds.duration(argv[3], self.call.language)
        if seconds is None:
            self.call.set_var("CPLAYBACKSTATUS", "ERROR")
            return "200 result=-1 endpos=-1"
        got, played = await self._play(seconds, argv[4])
        # endpos and CPLAYBACKOFFSET are both -1 after a full play (agi-stream-nodigit*.txt)
        offset = int(played * 1000) if got else -1
        status = "ERROR" if got == HANGUP else "USERSTOPPED" if got else "SUCCESS"
        self.call.set_var("CPLAYBACKSTATUS", status)
        self.call.set_var("CPLAYBACKOFFSET", str(offset))
        if got and got != HANGUP:
            self.call.set_var("CPLAYBACKSTOPKEY", got)
        result = -1 if got == HANGUP else ord(got) if got else 0
        return f"200 result={result} endpos={offset}"

    async def _get_option(self, argv: list[str]) -> str:
        if len(argv) not in (4, 5):
            raise T.ShowUsage
        escape = argv[3]
        timeout_ms = T.atoi(argv[4]) if len(argv) == 5 else NEXT_DIGIT_TIMEOUT_MS
        seconds = self.sounds.duration(argv[2], self.call.language)
        if seconds is None:
            self.failed = True
            return "200 result=-1 endpos=0"
        window = self.call.open_input(escape)
        start = self.time.now()
        try:
            got = await window.next(self.time.real(seconds))
            endpos = int(min(self.time.elapsed(start), seconds) * SAMPLE_RATE)
            if got is None:
                got = await window.next(
                    self.time.real(timeout_ms / 1000) if timeout_ms >= 0 else None
                )
        finally:
            self.call.close_input(window)
        if got == HANGUP:
            return f"200 result=-1 endpos={endpos}"
        return f"200 result={ord(got) if got else 0} endpos={endpos}"

    async def _get_data(self, argv: list[str]) -> str:
        if len(argv) < 3:
            raise T.ShowUsage
        timeout = T.atoi(argv[3]) if len(argv) > 3 else 0
        max_digits = T.atoi(argv[4]) if len(argv) > 4 else 1024
        first: float | None
        following: float | None
        if timeout > 0:
            first = following = timeout / 1000
        elif timeout < 0:
            first = following = None  # waits forever
        else:
            first, following = FIRST_DIGIT_TIMEOUT_MS / 1000, NEXT_DIGIT_TIMEOUT_MS / 1000
        if max_digits <= 0:
            return "200 result=-1"
        prompts = [p.strip() for p in argv[2].split("&")]
        window = self.call.open_input(DIGITS)
        digits = ""
        try:
            for i, prompt in enumerate(prompts):
                last = i == len(prompts) - 1
                seconds = self.sounds.duration(prompt, self.call.language) if prompt else 0.0
                if seconds is None:
                    if last:
                        return "200 result=-1"
                    continue
                got = await window.next(self.time.real(seconds))
                wait: float | None = first if last else 0.05  # between prompts: 50 ms
                while True:
                    if got is None:
                        got = await window.next(None if wait is None else self.time.real(wait))
                    if got == HANGUP:
                        return "200 result=-1"
                    if got is None:
                        if digits or last:
                            return f"200 result={digits} (timeout)"
                        break  # next prompt
                    if got == "#":
                        return f"200 result={digits}"
                    digits += got
                    if len(digits) >= max_digits:
                        return f"200 result={digits}"
                    got = None
                    wait = following
        finally:
            self.call.close_input(window)
        return f"200 result={digits} (timeout)"

    async def _wait_for_digit(self, argv: list[str]) -> str:
        if len(argv) != 4:
            raise T.ShowUsage
        timeout_ms = T.scan_int(argv[3])
        if timeout_ms is None:
            raise T.ShowUsage
        window = self.call.open_input(DIGITS)
        try:
            got = await window.next(None if timeout_ms < 0 else self.time.real(timeout_ms / 1000))
        finally:
            self.call.close_input(window)
        if got == HANGUP:
            return "200 result=-1"
        return f"200 result={ord(got) if got else 0}"

    async def _say_number(self, argv: list[str]) -> str:
        if len(argv) not in (4, 5):
            raise T.ShowUsage
        number = T.scan_int(argv[2])
        if number is None:
            raise T.ShowUsage
        return await self._say(say_number_files(number), argv[3])

    async def _say_digits(self, argv: list[str]) -> str:
        if len(argv) != 4 or T.scan_int(argv[2]) is None:
            raise T.ShowUsage
        return await self._say(len(argv[2]), argv[3])

    async def _say_chars(self, argv: list[str]) -> str:
        if len(argv) != 4:
            raise T.ShowUsage
        return await self._say(len(argv[2]), argv[3])

    async def _say_time(self, argv: list[str]) -> str:
        if len(argv) < 4 or (argv[1].lower() != "datetime" and len(argv) != 4):
            raise T.ShowUsage
        if T.scan_int(argv[2]) is None:
            raise T.ShowUsage
        return await self._say(4, argv[3])

    async def _record_file(self, argv: list[str]) -> str:
        if len(argv) < 6:
            raise T.ShowUsage
        timeout_ms = T.atoi(argv[5])
        window = self.call.open_input(argv[4])
        start = self.time.now()
        try:
            got = await window.next(None if timeout_ms < 0 else self.time.real(timeout_ms / 1000))
        finally:
            self.call.close_input(window)
        endpos = int(self.time.elapsed(start) * SAMPLE_RATE)
        if got == HANGUP:
            return f"200 result=-1 (hangup) endpos={endpos}"
        if got:
            return f"200 result={ord(got)} (dtmf) endpos={endpos}"
        return f"200 result=0 (timeout) endpos={endpos}"
