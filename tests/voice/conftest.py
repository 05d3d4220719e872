"""Real speech through espeak-ng (no fake engine): the audio cache is shared by every test of
the session, so each distinct phrase is synthesised once however many tests play it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.voice.helpers import CountingEngine, shared_cache_dir


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_cache_dir(tmp_path_factory)


@pytest.fixture
def engine() -> CountingEngine:
    return CountingEngine()
