"""Debt-reminder robocaller on Asterisk."""

__version__ = "0.1.0"
