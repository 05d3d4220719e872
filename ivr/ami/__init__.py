"""Asterisk Manager Interface client (replaces pyst2's manager; see README)."""
