"""Originate as Asterisk's manager parses it: channel, caller id, `Variable:` headers."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ivr.sim.agi_text import scan_int
from ivr.sim.ami_server import AmiMessage

KNOWN_TECHS = frozenset({"local", "pjsip", "sip", "iax2", "dahdi"})
_CALLERID_RE = re.compile(r'^\s*(?:"(?P<qname>[^"]*)"|(?P<name>[^<]*?))\s*<(?P<num>[^>]*)>\s*$')


def parse_callerid(value: str) -> tuple[str, str]:
    """`"Ivanov Ivan" <79161234567>` → ("79161234567", "Ivanov Ivan"); a bare value is a number."""
    m = _CALLERID_RE.match(value)
    if m:
        return m.group("num").strip(), (m.group("qname") or m.group("name") or "").strip()
    return value.strip(), ""


def split_channel(tech: str, resource: str) -> tuple[str, str, str]:
    """→ (number for the ScenarioBook, Local exten, Local context)."""
    resource = re.sub(r"/[nbj]+$", "", resource) if tech.lower() == "local" else resource
    if tech.lower() == "local":
        exten, _, ctx = resource.partition("@")
        digits = re.sub(r"\D", "", exten)
        return digits or exten, exten, ctx or "default"
    if "@" in resource.split("/")[-1] or "/" not in resource:
        last = resource.split("/")[-1]
        user, _, where = last.partition("@")
        trunk = resource.split("/")[0] if "/" in resource else (where or tech.lower())
    else:
        trunk, _, user = resource.rpartition("/")
        trunk = trunk.split("/")[0]
    digits = re.sub(r"\D", "", user)
    number = digits or user
    return number, number, trunk


def is_true(value: str | None) -> bool:
    """Asterisk's ast_true()."""
    return (value or "").strip().lower() in ("yes", "true", "y", "t", "1", "on")


@dataclass
class OriginateRequest:
    action_id: str | None
    channel: str
    tech: str
    resource: str
    context: str
    exten: str
    application: str | None
    data: str
    timeout_ms: int
    caller_num: str
    caller_name: str
    variables: list[tuple[str, str]]


def separate_args(value: str, delim: str = ",") -> list[str]:
    """Asterisk's AST_STANDARD_APP_ARGS: split at `delim` outside quotes, (), [];
    double quotes are removed and a backslash makes the next character literal."""
    args: list[str] = []
    i, n = 0, len(value)
    while i < n:
        cur: list[str] = []
        paren = bracket = 0
        quote = False
        while i < n:
            ch = value[i]
            if ch == "(":
                paren += 1
            elif ch == ")":
                paren = max(paren - 1, 0)
            elif ch == "[":
                bracket += 1
            elif ch == "]":
                bracket = max(bracket - 1, 0)
            elif ch == '"':
                quote = not quote
                i += 1
                continue
            elif ch == "\\":
                if i + 1 < n:
                    cur.append(value[i + 1])
                i += 2
                continue
            elif ch == delim and not paren and not quote and not bracket:
                i += 1
                break
            cur.append(ch)
            i += 1
        args.append("".join(cur))
    return args


def parse_variable_headers(values: Sequence[str]) -> list[tuple[str, str]]:
    """Originate `Variable:` headers → (name, value) in header order. Each header is split at
    unquoted commas; items without '=' (or with an empty name) are dropped, as Asterisk does
    (agi-env-args-unquoted.ami.txt)."""
    out: list[tuple[str, str]] = []
    for header in values:
        for item in separate_args(header):
            name, sep, val = item.partition("=")
            if sep and name:
                out.append((name, val))
    return out


def merged(pairs: Sequence[tuple[str, str]]) -> Mapping[str, str]:
    result: dict[str, str] = {}
    for k, v in pairs:
        result[k] = v
    return result


def parse_originate(msg: AmiMessage) -> OriginateRequest | str:
    """The request, or the error message Asterisk answers (checked in Asterisk's order)."""
    channel = msg.get("Channel")
    if not channel:
        return "Channel not specified"
    priority = msg.get("Priority")
    if priority and scan_int(priority) is None:
        return "Invalid priority"
    timeout = msg.get("Timeout")
    timeout_ms = scan_int(timeout) if timeout else 30000
    if timeout_ms is None:
        return "Invalid timeout"
    tech, sep, resource = channel.partition("/")
    if not sep:
        return "Invalid channel"
    caller_num, caller_name = parse_callerid(msg.get("CallerID") or "")
    return OriginateRequest(
        action_id=msg.action_id,
        channel=channel,
        tech=tech,
        resource=resource,
        context=msg.get("Context") or "",
        exten=msg.get("Exten") or "",
        application=msg.get("Application"),
        data=msg.get("Data") or "",
        timeout_ms=timeout_ms if timeout_ms > 0 else 30000,
        caller_num=caller_num,
        caller_name=caller_name,
        variables=parse_variable_headers(msg.get_all("Variable")),
    )
