"""Asterisk Gateway Interface: the channel API call scripts use, the FastAGI server and the
classic-AGI entry point (``python -m ivr.agi.classic ROUTE``).

Wire strings live in `ivr.agi.protocol` only. The names below are imported on first use (PEP
562): importing a submodule, e.g. the classic-AGI relay, must not pull in asyncio and the server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ivr.agi.channel import AGIChannel, AGICommandError, AGIHangup, DigitResult, ReplyDeadlines
    from ivr.agi.server import AGILimits, FastAGIServer, Handler

__all__ = ["AGIChannel", "AGICommandError", "AGIHangup", "AGILimits", "DigitResult", "FastAGIServer", "Handler",
           "ReplyDeadlines"]
_WHERE = {"AGIChannel": "channel", "AGICommandError": "channel", "AGIHangup": "channel", "DigitResult": "channel",
          "ReplyDeadlines": "channel", "AGILimits": "server", "FastAGIServer": "server", "Handler": "server"}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"ivr.agi.{module}"), name)
