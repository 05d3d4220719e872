"""Asterisk Gateway Interface: the channel API call scripts use, the FastAGI server and the
classic-AGI entry point (``python -m ivr.agi.classic ROUTE``).

Wire strings live in `ivr.agi.protocol` only.
"""

from ivr.agi.channel import AGIChannel, AGICommandError, AGIHangup, DigitResult, ReplyDeadlines
from ivr.agi.server import AGILimits, FastAGIServer, Handler

__all__ = ["AGIChannel", "AGICommandError", "AGIHangup", "AGILimits", "DigitResult", "FastAGIServer", "Handler",
           "ReplyDeadlines"]
