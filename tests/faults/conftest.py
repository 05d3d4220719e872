"""Fault scenarios (issue 15) on the simulator: each runs the product as `ivr run` assembles it."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ivr.dialer")
