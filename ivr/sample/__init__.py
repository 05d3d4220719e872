"""Sample billing export (Windows-1251, ';') the demo imports: see ivr.sample.generate."""

from __future__ import annotations

from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent
ACCOUNTS_CSV = SAMPLE_DIR / "accounts.csv"
PAYMENTS_CSV = SAMPLE_DIR / "payments.csv"

__all__ = ["ACCOUNTS_CSV", "PAYMENTS_CSV", "SAMPLE_DIR"]
