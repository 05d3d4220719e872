"""The AMI wire format, and the one place for AMI strings.

Every action name, header name and fixed message text the project exchanges with the Asterisk
Manager Interface is a constant here, checked against the recordings in
shared/asterisk-transcripts/ (ami-*.txt).

Framing (as recorded): the server opens with one banner line (``Asterisk Call Manager/11.0.0``,
even on Asterisk 22); after that every message in both directions is ``Name: value`` lines ending
in CRLF, and an empty line ends the message.

Injection safety: AMI has no escaping. A CR or LF inside a header value would end the header and
let the rest of the value become new headers or a new action, so :func:`encode_action` refuses
such values (:class:`InvalidHeader`) instead of writing them. Channel variables need a second
layer: Asterisk splits a ``Variable:`` header at unquoted commas and drops unescaped ``"`` and
``\\`` (ast_app_separate_args; see agi-env-args-unquoted), so :func:`encode_variable` quotes and
backslash-escapes values that contain them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

EOL = "\r\n"
EOL_BYTES = b"\r\n"
END_OF_MESSAGE = b"\r\n\r\n"
BANNER_PREFIX = "Asterisk Call Manager/"

# Asterisk's manager reads one line into a 1025-byte buffer (inbuf[1025]; a longer line is
# discarded with the whole message) and keeps at most AST_MAX_MANHEADERS = 128 headers.
MAX_LINE_BYTES = 1024
MAX_HEADERS = 128

# --- actions ---------------------------------------------------------------------------------
LOGIN = "Login"
LOGOFF = "Logoff"
PING = "Ping"
ORIGINATE = "Originate"
STATUS = "Status"

# --- headers ---------------------------------------------------------------------------------
ACTION = "Action"
ACTION_ID = "ActionID"
RESPONSE = "Response"
EVENT = "Event"
MESSAGE = "Message"
USERNAME = "Username"
SECRET = "Secret"
CHANNEL = "Channel"
CONTEXT = "Context"
EXTEN = "Exten"
PRIORITY = "Priority"
TIMEOUT = "Timeout"
CALLER_ID = "CallerID"
ASYNC = "Async"
VARIABLE = "Variable"  # Originate: one NAME=value per header; Status event: NAME=value
VARIABLES = "Variables"  # Status action: comma-separated names to report per channel
VALUE = "Value"  # VarSet event
UNIQUEID = "Uniqueid"
LINKEDID = "Linkedid"
REASON = "Reason"
CAUSE = "Cause"
CAUSE_TXT = "Cause-txt"
CHANNEL_STATE = "ChannelState"
CHANNEL_STATE_DESC = "ChannelStateDesc"
EVENT_LIST = "EventList"
PING_REPLY = "Ping"  # "Ping: Pong"
SHUTDOWN = "Shutdown"  # Shutdown event: "Shutdown: Cleanly"
RESTART = "Restart"  # Shutdown event: "Restart: True"
UPTIME = "Uptime"  # FullyBooted event

# --- response values -------------------------------------------------------------------------
SUCCESS = "Success"
ERROR = "Error"
GOODBYE = "Goodbye"  # reply to Logoff; Asterisk then closes the socket
FAILURE = "Failure"  # OriginateResponse event of a failed call
TRUE = "true"

# --- fixed message texts ---------------------------------------------------------------------
MSG_AUTH_ACCEPTED = "Authentication accepted"
MSG_AUTH_FAILED = "Authentication failed"
MSG_PERMISSION_DENIED = "Permission denied"
MSG_ORIGINATE_QUEUED = "Originate successfully queued"
MSG_SHUTTING_DOWN = "Asterisk is shutting down"
MSG_INVALID_CHANNEL = "Invalid channel"
MSG_CHANNEL_NOT_SPECIFIED = "Channel not specified"
UNKNOWN_UNIQUEID = "<unknown>"  # OriginateResponse of a failure

# --- events ----------------------------------------------------------------------------------
EV_ORIGINATE_RESPONSE = "OriginateResponse"
EV_HANGUP = "Hangup"
EV_VARSET = "VarSet"
EV_SHUTDOWN = "Shutdown"
EV_FULLY_BOOTED = "FullyBooted"
EV_STATUS = "Status"
EV_STATUS_COMPLETE = "StatusComplete"

CHANNEL_STATE_UP = 6  # AST_STATE_UP: the channel was answered

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
# Plain variables (optionally with _ or __ inheritance prefixes) or a dialplan function such as
# CHANNEL(language): no '=', ',', quotes or spaces, which Asterisk would split or strip.
_VAR_NAME_RE = re.compile(r"^[A-Za-z0-9_]+(\([A-Za-z0-9_\-]*\))?$")
_NEEDS_QUOTING = frozenset(',"\\')


class InvalidHeader(ValueError):
    """A header name or value that cannot be put on the AMI wire safely."""


@dataclass(frozen=True)
class Message:
    """One AMI message: its headers in wire order (duplicates kept, e.g. several Variable)."""

    headers: tuple[tuple[str, str], ...]

    @property
    def kind(self) -> str:
        """"response", "event" or "" (decided by the first header, as Asterisk writes it)."""
        if not self.headers:
            return ""
        first = self.headers[0][0].lower()
        if first == "response":
            return "response"
        if first == "event":
            return "event"
        return ""

    @property
    def name(self) -> str:
        """The Response value (Success, Error, Goodbye) or the Event name."""
        return self.headers[0][1] if self.headers else ""

    @property
    def action_id(self) -> str | None:
        return self.get(ACTION_ID)

    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of a header; names compare case-insensitively as in Asterisk."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [value for key, value in self.headers if key.lower() == lname]

    def to_dict(self) -> dict[str, str]:
        """Headers as a dict; for repeated names the first value wins."""
        out: dict[str, str] = {}
        for key, value in self.headers:
            out.setdefault(key, value)
        return out


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise InvalidHeader(f"invalid AMI header name {name!r}")


def _check_value(name: str, value: str) -> None:
    if "\r" in value or "\n" in value or "\x00" in value:
        # never write it: the rest of the value would become headers of its own
        raise InvalidHeader(f"AMI header {name!r}: value contains CR, LF or NUL")


def encode_action(action: str, headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """Encode an action: ``Action:`` first, then the headers in order, then the empty line."""
    pairs = [(ACTION, action), *headers]
    if len(pairs) > MAX_HEADERS:
        raise InvalidHeader(f"{len(pairs)} headers; Asterisk keeps at most {MAX_HEADERS}")
    out = bytearray()
    for name, value in pairs:
        if not isinstance(value, str):
            raise InvalidHeader(f"AMI header {name!r}: value must be str, not {type(value).__name__}")
        _check_name(name)
        _check_value(name, value)
        line = f"{name}: {value}{EOL}".encode()
        if len(line) > MAX_LINE_BYTES:
            raise InvalidHeader(f"AMI header {name!r} is {len(line)} bytes; Asterisk drops lines over {MAX_LINE_BYTES}")
        out += line
    out += EOL_BYTES
    return bytes(out)


def quote_variable_value(value: str) -> str:
    """The value part of ``Variable: NAME=value`` so that Asterisk stores ``value`` verbatim.

    Asterisk splits the header at unquoted commas and removes ``"`` and ``\\`` (a backslash makes
    the next character literal). Quoting keeps commas (ground truth: agi-env-args vs
    agi-env-args-unquoted); escaping keeps quotes and backslashes.
    """
    if not any(ch in _NEEDS_QUOTING for ch in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def encode_variable(name: str, value: str) -> str:
    """``NAME=value`` for one ``Variable:`` header (one variable per header, never a list)."""
    if not _VAR_NAME_RE.match(name):
        raise InvalidHeader(f"invalid channel variable name {name!r}")
    _check_value(f"{VARIABLE} {name}", value)
    return f"{name}={quote_variable_value(value)}"


def variable_headers(variables: Mapping[str, str]) -> list[tuple[str, str]]:
    return [(VARIABLE, encode_variable(k, v)) for k, v in variables.items()]


def decode(raw: bytes) -> Message:
    """Decode one message (with or without its terminating empty line).

    ``Name: value`` splits at the first colon and drops one following space, so an empty value
    (``AccountCode: ``) stays empty and a value containing ": " stays whole. A line without a
    colon is kept under the empty name. Bytes that are not UTF-8 are replaced, never fatal.
    """
    text = raw.decode("utf-8", errors="replace")
    headers: list[tuple[str, str]] = []
    for line in text.split(EOL):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            headers.append(("", line))
            continue
        if value.startswith(" "):
            value = value[1:]
        headers.append((key, value))
    return Message(tuple(headers))


def peek_event(raw: bytes) -> str | None:
    """The event name of a raw message, without decoding the rest (None if not an event)."""
    if not raw.startswith(b"Event: "):
        return None
    end = raw.find(b"\r\n")
    return raw[7:end if end >= 0 else None].decode("ascii", errors="replace")


def split_assignment(text: str) -> tuple[str, str]:
    """``NAME=value`` as found in Status events' Variable headers."""
    name, _, value = text.partition("=")
    return name, value
