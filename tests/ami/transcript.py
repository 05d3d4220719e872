"""Read the Asterisk wire transcripts (shared/asterisk-transcripts/*.txt) into data.

Notation (README there): ``<< `` bytes from Asterisk, ``>> `` bytes from the client, ``## `` a
recorder note; ``## t=+S.SSSs`` stamps what follows; lines are written without their terminator
(CRLF for AMI, LF for AGI, stated in the file's header note).

``parse(path)`` gives ``Item(direction, t, message)`` tuples:

* AMI (CRLF) files: one item per message, with the exact wire bytes as text: header lines
  joined by CRLF, ending with the empty line (``"...\\r\\n\\r\\n"``); the banner, which has no
  empty line after it, is an item of its own (``"Asterisk Call Manager/11.0.0\\r\\n"``).
* AGI (LF) files: one item per line, with its ``"\\n"``.
* Notes: direction ``"##"``, message = the note text without the ``t=`` stamp (stamp-only
  lines give no item).

``lines(path)`` gives the raw ``(direction, t, line)`` per line for other uses.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

ASTERISK = "<<"
CLIENT = ">>"
NOTE = "##"

_STAMP = re.compile(r"^t=\+(\d+(?:\.\d+)?)s\s*(.*)$")


class Item(NamedTuple):
    direction: str  # "<<" Asterisk -> client, ">>" client -> Asterisk, "##" recorder note
    t: float  # seconds since the recording started
    message: str


def lines(path: str | Path) -> list[tuple[str, float, str]]:
    out: list[tuple[str, float, str]] = []
    t = 0.0
    for raw in Path(path).read_text(encoding="utf-8").split("\n"):
        if raw == "":
            continue  # the file's own final newline; wire blank lines are written as "<< "
        direction, text = raw[:2], raw[3:]
        if direction == NOTE:
            stamp = _STAMP.match(text)
            if stamp:
                t = float(stamp.group(1))
                text = stamp.group(2)
                if not text:
                    continue
            out.append((NOTE, t, text))
        elif direction in (ASTERISK, CLIENT):
            if raw[2:3] != " ":
                raise ValueError(f"{path}: malformed line {raw!r}")
            out.append((direction, t, text))
        else:
            raise ValueError(f"{path}: line without a direction prefix: {raw!r}")
    return out


def eol_of(path: str | Path) -> str:
    head = Path(path).read_text(encoding="utf-8")[:600]
    return "\n" if "line terminator on the wire: LF" in head else "\r\n"


def parse(path: str | Path) -> list[Item]:
    eol = eol_of(path)
    items: list[Item] = []
    if eol == "\n":
        for direction, t, text in lines(path):
            items.append(Item(direction, t, text if direction == NOTE else text + "\n"))
        return items
    pending: list[str] = []
    pending_dir = ""
    pending_t = 0.0

    def flush() -> None:
        if pending:
            # a run that ends without its empty line is the banner (one line)
            items.append(Item(pending_dir, pending_t, eol.join(pending) + eol))
            pending.clear()

    for direction, t, text in lines(path):
        if direction == NOTE:
            flush()
            items.append(Item(NOTE, t, text))
            continue
        if pending and direction != pending_dir:
            flush()
        if not pending:
            pending_dir, pending_t = direction, t
        if text == "":
            items.append(Item(direction, pending_t, eol.join(pending) + eol + eol))
            pending.clear()
        else:
            pending.append(text)
    flush()
    return items


def headers_of(message: str) -> list[tuple[str, str]]:
    """``Name: value`` pairs of an AMI message text (values keep everything after ": ")."""
    out: list[tuple[str, str]] = []
    for line in message.split("\r\n"):
        if line:
            key, _, value = line.partition(":")
            out.append((key, value[1:] if value.startswith(" ") else value))
    return out
