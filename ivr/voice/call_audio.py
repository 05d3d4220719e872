"""The audio of one call as the call script plays it (file names only).

Kept apart from ivr.voice.prepare, which renders and synthesises it (Jinja2, the audio cache,
pydub): the call start only reads a prepared CallAudio back (ivr.call.manifest) and must not pay
for importing the renderer, which matters most to classic AGI (one process per call).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

READBACK = "date_readback"
BROKEN_PROMISE = "broken_promise"
# The call script plays "the debt message" without knowing which stage template it is.
DEBT_MESSAGE = "debt_message"


@dataclass
class CallAudio:
    language: str
    # template name -> Asterisk file name (no extension); "debt_message" is this call's debt
    # message (the stage's template or broken_promise), also present under its own name
    phrases: dict[str, str]
    readbacks: dict[dt.date, str]  # promise date -> readback audio, every date today..horizon
    reason_replies: dict[str, str]  # Reason.code -> reply audio (only reasons with a reply)
    reasons: list[tuple[str, str, bool, str | None]]  # (key, code, actionable, route) in menu order
    message_name: str = ""  # template name of this call's debt message (a key of `phrases`)
    # what each file says, for the call log and previews: phrase name, "readback:<iso date>",
    # "reply:<reason code>"
    texts: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str:
        try:
            return self.phrases[name]
        except KeyError:
            raise KeyError(
                f"no prepared audio for phrase {name!r} ({self.language}); prepared: {', '.join(sorted(self.phrases))}"
            ) from None

    @property
    def message(self) -> str:
        """The debt message of this call's stage (or broken_promise)."""
        return self.get(self.message_name)

    def readback(self, day: dt.date) -> str:
        try:
            return self.readbacks[day]
        except KeyError:
            span = f"{min(self.readbacks)}..{max(self.readbacks)}" if self.readbacks else "none"
            raise KeyError(f"no readback prepared for {day} (prepared: {span})") from None
