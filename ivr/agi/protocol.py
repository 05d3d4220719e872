"""AGI wire format: command strings, argument quoting, reply parsing. The one place for AGI strings.

Everything here is pure (no I/O) so it is tested without sockets. The formats follow the recordings
in shared/asterisk-transcripts/agi-*.txt (Asterisk 22):

* Asterisk tokenises a command line like a shell-lite: whitespace separates arguments, double
  quotes group them, and ``\\`` escapes the next character (``\\"`` -> ``"``, ``\\\\`` -> ``\\``).
  Single quotes are NOT quotes (``SET VARIABLE X 'a b'`` gets the 520 usage block).
* A command is one line ending in LF. A CR or LF inside an argument would end the command early and
  let the rest be read as a second command, so free text has them replaced by spaces and names
  containing them are refused outright.
* Replies: ``200 result=N [(data)] [endpos=M]``; ``510 Invalid or unknown command``;
  ``511 Command Not Permitted on a dead channel or intercept routine``; a multi-line usage block
  ``520-Invalid command syntax.  Proper usage follows:`` ... ``520 End of proper usage.``; and the
  unsolicited notice line ``HANGUP`` which is never a reply.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# --- unsolicited lines and reply codes -------------------------------------------------------
HANGUP_NOTICE = "HANGUP"
CODE_OK = 200
CODE_INVALID = 510
CODE_DEAD_CHANNEL = 511
CODE_USAGE = 520
USAGE_FIRST_PREFIX = "520-"
USAGE_LAST_PREFIX = "520 "

# --- environment block ------------------------------------------------------------------------
ENV_PREFIX = "agi_"
ENV_ARG_PREFIX = "agi_arg_"
ENV_NETWORK_SCRIPT = "agi_network_script"
ENV_REQUEST = "agi_request"
ENV_CHANNEL = "agi_channel"
ENV_UNIQUEID = "agi_uniqueid"
ENV_LANGUAGE = "agi_language"
ENV_CALLERID = "agi_callerid"

# --- command names ----------------------------------------------------------------------------
ANSWER = "ANSWER"
HANGUP = "HANGUP"
NOOP = "NOOP"
CHANNEL_STATUS = "CHANNEL STATUS"
STREAM_FILE = "STREAM FILE"
GET_DATA = "GET DATA"
WAIT_FOR_DIGIT = "WAIT FOR DIGIT"
SAY_NUMBER = "SAY NUMBER"
SAY_DIGITS = "SAY DIGITS"
SET_VARIABLE = "SET VARIABLE"
GET_VARIABLE = "GET VARIABLE"
GET_FULL_VARIABLE = "GET FULL VARIABLE"
VERBOSE = "VERBOSE"
EXEC = "EXEC"

# Commands Asterisk answers at once: no prompt is played and no caller input is awaited, so their
# reply deadline is short (the other commands wait for the caller; see `reply_wait_ms`).
QUICK_COMMANDS = frozenset({ANSWER, HANGUP, NOOP, CHANNEL_STATUS, SET_VARIABLE, GET_VARIABLE,
                            GET_FULL_VARIABLE, VERBOSE})
# GET DATA without a timeout (or 0) uses the channel's default digit timeout; this bounds it.
GET_DATA_DEFAULT_TIMEOUT_MS = 10_000
# No command waits longer than a day for the caller; a bigger number in a command is clamped.
MAX_WAIT_MS = 86_400_000
# A 520 usage block is ~10 lines in the recordings; a block that never ends is not Asterisk.
MAX_USAGE_LINES = 200

# CHANNEL STATUS result for an answered channel (agi-basic-commands.txt: `200 result=6`)
CHANNEL_STATE_UP = 6

DTMF_DIGITS = frozenset("0123456789*#ABCD")
# Characters that need no quoting and cannot change how Asterisk splits a command line.
_BARE_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-/${}()")
# Names (sound files, variables, applications) must be one token without quoting games.
_NAME_FORBIDDEN = frozenset(' \t\r\n"\\\'\x00')
# C0 controls other than TAB end up as garbage in Asterisk's logs at best; CR/LF split commands.
_CONTROL_TO_SPACE = {i: " " for i in range(32) if i != 9}
_CONTROL_TO_SPACE[127] = " "


class AGIProtocolError(ValueError):
    """Bytes from Asterisk that do not parse as an AGI reply."""


# --- argument formatting ----------------------------------------------------------------------
def sanitize_text(text: str) -> str:
    """Replace CR, LF and other control characters with spaces: free text can never end a line."""
    return text.translate(_CONTROL_TO_SPACE)


def quote(text: str) -> str:
    """Always-quoted form of free text: ``"..."`` with ``\\`` and ``"`` escaped, no CR/LF."""
    text = sanitize_text(text)
    if "\\" in text or '"' in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def quote_if_needed(text: str) -> str:
    """A bare token when it cannot be mis-split (``beep``, ``${X}``), otherwise `quote(text)`.

    Matches what Asterisk and the recorded client exchanged: ``EXEC Playback beep`` but
    ``EXEC Playback "beep,noanswer"``; ``GET FULL VARIABLE ${LAB_B}`` but a quoted expression with
    spaces.
    """
    if text and all(c in _BARE_SAFE for c in text):
        return text
    return quote(text)


def check_name(value: str, what: str = "name") -> str:
    """A sound file, variable or application name: one token, no whitespace, quotes or controls."""
    if not value or any(c in _NAME_FORBIDDEN or ord(c) < 32 for c in value):
        raise ValueError(f"invalid AGI {what}: {value!r} (empty, or contains whitespace, quotes or controls)")
    return value


def escape_digits(digits: str) -> str:
    """The quoted escape-digit list: ``""`` for none, ``"0123456789*#"`` for all."""
    bad = [c for c in digits if c not in DTMF_DIGITS]
    if bad:
        raise ValueError(f"invalid DTMF escape digits {digits!r}: {''.join(bad)!r} not in 0-9*#A-D")
    return f'"{digits}"'


def _int_arg(value: int, what: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return str(value)


# --- command builders (each returns the line without its LF) --------------------------------
def cmd_answer() -> str:
    return ANSWER


def cmd_hangup() -> str:
    return HANGUP


def cmd_noop() -> str:
    return NOOP


def cmd_channel_status() -> str:
    return CHANNEL_STATUS


def cmd_stream_file(name: str, escape: str = "", offset: int | None = None) -> str:
    line = f"{STREAM_FILE} {check_name(name, 'sound file')} {escape_digits(escape)}"
    if offset is not None:
        line += " " + _int_arg(offset, "offset")
    return line


def cmd_get_data(prompt: str, timeout_ms: int, max_digits: int) -> str:
    if not isinstance(max_digits, int) or max_digits < 1:
        raise ValueError(f"max_digits must be a positive integer, got {max_digits!r}")
    return f"{GET_DATA} {check_name(prompt, 'sound file')} {_int_arg(timeout_ms, 'timeout_ms')} {max_digits}"


def cmd_wait_for_digit(timeout_ms: int) -> str:
    return f"{WAIT_FOR_DIGIT} {_int_arg(timeout_ms, 'timeout_ms')}"


def cmd_say_number(number: int, escape: str = "", gender: str | None = None) -> str:
    line = f"{SAY_NUMBER} {_int_arg(number, 'number')} {escape_digits(escape)}"
    if gender is not None:
        # Asterisk's say options are short letter codes: f, m, n, c, p ...
        if not (1 <= len(gender) <= 2 and gender.isascii() and gender.isalpha()):
            raise ValueError(f"invalid SAY NUMBER gender {gender!r}")
        line += " " + gender
    return line


def cmd_say_digits(digits: str, escape: str = "") -> str:
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"SAY DIGITS needs decimal digits, got {digits!r}")
    return f"{SAY_DIGITS} {digits} {escape_digits(escape)}"


def cmd_set_variable(name: str, value: str) -> str:
    return f"{SET_VARIABLE} {check_name(name, 'variable name')} {quote(value)}"


def cmd_get_variable(name: str) -> str:
    return f"{GET_VARIABLE} {check_name(name, 'variable name')}"


def cmd_get_full_variable(expression: str) -> str:
    if not expression:
        raise ValueError("GET FULL VARIABLE needs an expression")
    return f"{GET_FULL_VARIABLE} {quote_if_needed(expression)}"


def cmd_verbose(message: str, level: int = 1) -> str:
    if level not in (1, 2, 3, 4):
        raise ValueError(f"VERBOSE level must be 1..4, got {level!r}")
    return f"{VERBOSE} {quote(message)} {level}"


def cmd_exec(application: str, args: Iterable[str] = ()) -> str:
    """``EXEC App options``: Asterisk hands only the first token to the application, so the
    arguments are joined with commas (the dialplan separator) into a single token."""
    line = f"{EXEC} {check_name(application, 'application')}"
    joined = ",".join(args)
    if joined:
        line += " " + quote_if_needed(joined)
    return line


def check_raw_line(line: str) -> str:
    """A caller-assembled command line: refused if it could smuggle a second command."""
    if "\n" in line or "\r" in line or "\x00" in line:
        raise ValueError(f"AGI command line must not contain CR, LF or NUL: {line!r}")
    if not line.strip():
        raise ValueError("empty AGI command line")
    return line


def is_quick(line: str) -> bool:
    """True for a command from QUICK_COMMANDS (Asterisk's command words are case-insensitive)."""
    words = line.split(None, 3)
    upper = [w.upper() for w in words[:3]]
    return any(" ".join(upper[:n]) in QUICK_COMMANDS for n in (1, 2, 3))


def reply_wait_ms(line: str) -> int | None:
    """How long the command itself may legitimately wait for the caller, beyond playing its
    prompt: GET DATA waits up to its timeout for each digit, WAIT FOR DIGIT its timeout. 0 for
    commands with no timeout of their own; None when the command waits without limit
    (``WAIT FOR DIGIT -1``). Unparsable numbers count as 0: the caller's own deadline still holds."""
    words = line.split()
    head = " ".join(w.upper() for w in words[:3])
    try:
        if head.startswith(GET_DATA + " ") and len(words) >= 3:
            timeout = int(words[3]) if len(words) > 3 else 0
            digits = int(words[4]) if len(words) > 4 else 1
            if timeout <= 0:
                timeout = GET_DATA_DEFAULT_TIMEOUT_MS
            return min(MAX_WAIT_MS, min(timeout, MAX_WAIT_MS) * max(1, min(digits, 1024)))
        if head.startswith(WAIT_FOR_DIGIT) and len(words) >= 4:
            timeout = int(words[3])
            return None if timeout < 0 else min(timeout, MAX_WAIT_MS)
    except ValueError:
        return 0
    return 0


# --- replies ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Reply:
    """One parsed reply. ``result`` is the text after ``result=`` (may be empty or ``-1``);
    ``data`` the text inside the parentheses (None when there were none); ``endpos`` from STREAM
    FILE; ``extra`` any other key=value pairs."""

    code: int
    result: str = ""
    data: str | None = None
    endpos: int | None = None
    text: str = ""  # the raw line(s), for error messages
    extra: Mapping[str, str] | None = None

    @property
    def result_int(self) -> int:
        try:
            return int(self.result)
        except ValueError:
            raise AGIProtocolError(f"non-numeric result in AGI reply {self.text!r}") from None


def parse_reply(line: str) -> Reply:
    """Parse a single-line reply (anything but the 520 block, see `parse_usage_block`)."""
    if line.startswith("200 result="):
        rest = line[11:]
        sp = rest.find(" ")
        if sp < 0:
            return Reply(CODE_OK, rest, None, None, line)
        return _parse_tail(rest[:sp], rest[sp + 1 :], line)
    code_text, _, message = line.partition(" ")
    if len(code_text) != 3 or not code_text.isdigit():
        raise AGIProtocolError(f"not an AGI reply: {line!r}")
    code = int(code_text)
    if code == CODE_OK:  # "200" without result= : tolerate, treat as an empty result
        return Reply(CODE_OK, "", None, None, line)
    return Reply(code, "", message or None, None, line)


def _parse_tail(result: str, tail: str, line: str) -> Reply:
    data: str | None = None
    endpos: int | None = None
    extra: dict[str, str] | None = None
    tail = tail.strip(" ")
    if tail.startswith("("):
        # The data is not escaped by Asterisk: `(a (b) c)`. Take up to the LAST ')' of the line
        # when the line ends with one, otherwise up to the last ')' before the key=value pairs.
        close = len(tail) - 1 if tail.endswith(")") else tail.rfind(")")
        if close < 0:
            data, tail = tail[1:], ""
        else:
            data, tail = tail[1:close], tail[close + 1 :].strip(" ")
    for item in tail.split():
        key, eq, value = item.partition("=")
        if not eq:
            continue
        if key == "endpos":
            try:
                endpos = int(value)
            except ValueError:
                raise AGIProtocolError(f"bad endpos in AGI reply {line!r}") from None
        else:
            if extra is None:
                extra = {}
            extra[key] = value
    return Reply(CODE_OK, result, data, endpos, line, extra)


def parse_usage_block(lines: list[str]) -> Reply:
    """The 520 block: first line ``520-...``, usage text, last line ``520 End of proper usage.``"""
    usage = "\n".join(lines[1:-1]) if len(lines) > 2 else ""
    return Reply(CODE_USAGE, "", usage, None, "\n".join(lines))


def digit_from_result(result: int) -> str | None:
    """`result=53` is ASCII '5'; 0 means no digit."""
    if result <= 0:
        return None
    try:
        return chr(result)
    except (ValueError, OverflowError):
        raise AGIProtocolError(f"result {result} is not a DTMF digit code") from None


# --- environment --------------------------------------------------------------------------------
def parse_env_line(line: str) -> tuple[str, str] | None:
    """``agi_key: value`` -> (key, value). The value is kept verbatim (``agi_arg_3: `` is '')."""
    key, colon, value = line.partition(":")
    if not colon:
        return None
    if value.startswith(" "):
        value = value[1:]
    return key.strip(), value


def env_args(env: Mapping[str, str]) -> list[str]:
    """agi_arg_1..N in numeric order (empty strings kept; stops at the first gap)."""
    args: list[str] = []
    n = 1
    while f"{ENV_ARG_PREFIX}{n}" in env:
        args.append(env[f"{ENV_ARG_PREFIX}{n}"])
        n += 1
    return args


def split_route(raw: str) -> tuple[str, dict[str, str]]:
    """``debt-call?x=1&n=%D0%98`` -> (``debt-call``, {x: 1, n: И}). Leading/trailing '/' dropped."""
    path, _, query = raw.partition("?")
    params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True)) if query else {}
    return path.strip("/"), params


def route_from_env(env: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """Route and query of a FastAGI request: agi_network_script is the text after ``host:port/``.
    Without it (classic AGI), the path of agi_request is used."""
    script = env.get(ENV_NETWORK_SCRIPT)
    if script is not None:
        return split_route(script)
    request = env.get(ENV_REQUEST, "")
    if "://" in request:
        request = request.split("://", 1)[1].partition("/")[2]
    return split_route(request)


class LineSplitter:
    """Bytes in, decoded lines out (LF-terminated; a stray CR before the LF is dropped).

    Kept separate from the transports so the FastAGI socket and the classic-AGI pipe split lines
    the same way. Lines are decoded as UTF-8 with replacement: a bad byte must not end a call.
    """

    __slots__ = ("_buf", "max_line")

    def __init__(self, max_line: int = 1 << 20) -> None:
        self._buf = b""
        self.max_line = max_line

    def feed(self, data: bytes) -> list[str]:
        if self._buf:
            data = self._buf + data
        if data.endswith(b"\n") and data.find(b"\n") == len(data) - 1:
            # the common case: exactly one whole line per read
            self._buf = b""
            raw = data[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            return [raw.decode("utf-8", "replace")]
        parts = data.split(b"\n")
        self._buf = parts.pop()
        if len(self._buf) > self.max_line:
            raise AGIProtocolError(f"AGI line longer than {self.max_line} bytes")
        return [(r[:-1] if r.endswith(b"\r") else r).decode("utf-8", "replace") for r in parts]

    @property
    def pending(self) -> bytes:
        """Bytes received after the last complete line."""
        return self._buf
