"""Helpers for the billing tests: settings, a fixed clock, CSV files written as billing does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from ivr.config import Settings

TODAY = dt.date(2026, 11, 16)
NOW = dt.datetime(2026, 11, 16, 9, 30)  # naive UTC, as stored


@pytest.fixture
def settings() -> Settings:
    return Settings(default_region="RU", default_language="ru", default_currency="RUB",
                    default_timezone="Europe/Moscow")


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[..., Path]:
    """write_file(name, text, encoding="cp1251") -> path; lines joined with CRLF like Windows."""
    def write(name: str, text: str, encoding: str = "cp1251", newline: str = "\r\n") -> Path:
        path = tmp_path / name
        body = newline.join(text.strip("\n").split("\n")) + newline
        path.write_bytes(body.encode(encoding))
        return path

    return write
