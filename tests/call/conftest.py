from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.call.rig import CallRig, rig_settings


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # shared by every call test: each phrase is synthesised once per test session
    return tmp_path_factory.mktemp("call-audio")


@pytest.fixture
async def rig(db, audio_dir: Path) -> AsyncIterator[CallRig]:
    settings = rig_settings(audio_dir, str(db.engine.url))
    async with CallRig(db, settings) as r:
        yield r
