"""`ivr prompts check` and `ivr prompts render` end to end (real database file, real speech)."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.cli import main
from ivr.config import load_settings
from ivr.db.models import Account, DebtCase, Reason
from ivr.voice.audio import wav_info
from ivr.wiring import open_database
from tests.voice.helpers import shared_cache_dir

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{tmp_path / 'ivr.sqlite3'}")
    monkeypatch.setenv("IVR_PROMPTS_DIR", str(PROMPTS))
    monkeypatch.setenv("IVR_AUDIO_CACHE_DIR", str(shared_cache_dir(tmp_path_factory)))
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield ["--env-file", str(tmp_path / "no.env")]
    # main() points the root logger at this test's captured stderr; later tests must not log into it
    root.handlers[:] = handlers
    root.setLevel(level)


def test_check_passes_on_shipped_templates(env: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*env, "prompts", "check"]) == 0
    assert "84 templates OK (en, ru, uk)" in capsys.readouterr().out


def test_check_names_file_and_line(env: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "prompts"
    shutil.copytree(PROMPTS, broken)
    (broken / "uk" / "menu.j2").write_text("Натисніть 1.\n{{ human_kye }}\n", encoding="utf-8")
    (broken / "en" / "closing.j2").unlink()
    monkeypatch.setenv("IVR_PROMPTS_DIR", str(broken))
    assert main([*env, "prompts", "check"]) == 1
    out = capsys.readouterr().out
    assert f"{broken / 'uk' / 'menu.j2'}:2: unknown variable 'human_kye' (did you mean 'human_key'?)" in out
    assert f"{broken / 'en' / 'closing.j2'}: missing" in out


def test_check_with_database_validates_reason_replies(env: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    settings = load_settings(None)
    db = open_database(settings)
    with db.sessions.begin() as session:
        forgot = session.scalars(select(Reason).where(Reason.code == "forgot")).one()
        forgot.replies = {**forgot.replies, "uk": "Сплатіть {{ amont }}."}
    db.engine.dispose()
    assert main([*env, "prompts", "check", "--db"]) == 1
    assert "reason forgot reply (uk), line 1: unknown variable 'amont'" in capsys.readouterr().out


def test_render_prints_texts_and_writes_audio(env: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = open_database(load_settings(None))
    with db.sessions.begin() as session:
        account = Account(external_id="A-77", holder_name="Петров Пётр", service_name="кабельное ТВ",
                          balance=Decimal("2"), currency="RUB", due_date=dt.date(2025, 11, 10),
                          block_date=dt.date(2025, 11, 20), language="ru")
        session.add(account)
        session.flush()
        session.add(DebtCase(account_id=account.id, opened_on=dt.date(2025, 11, 10), amount_initial=Decimal("2"),
                             amount_owed=Decimal("2"), stage_code="reminder"))
    db.engine.dispose()
    out_dir = tmp_path / "preview"
    code = main([*env, "prompts", "render", "--account", "A-77", "--stage", "firm", "--today", "2025-11-18",
                 "--out", str(out_dir)])
    assert code == 0
    out = capsys.readouterr().out
    assert "debt message: debt_firm" in out
    assert "два рубля" in out and "кабельное ТВ" in out
    assert "readback:2025-11-25: Вы обещаете оплатить двадцать пятого ноября" in out  # horizon: block + 5
    assert "readback:2025-11-26" not in out
    for name in ("greeting", "debt_firm", "menu", "readback-2025-11-18", "reply-forgot"):
        info = wav_info(out_dir / f"{name}.wav")
        assert info.rate == 8000 and info.duration_s > 0.5
        assert str(out_dir / f"{name}.wav") in out


def test_render_refuses_unknown_account_and_stage(env: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*env, "prompts", "render", "--account", "nobody"]) == 2
    assert "no account with external id 'nobody'" in capsys.readouterr().err
    db = open_database(load_settings(None))
    with db.sessions.begin() as session:
        session.add(Account(external_id="A-1", holder_name="X"))
    db.engine.dispose()
    assert main([*env, "prompts", "render", "--account", "A-1", "--stage", "nope"]) == 2
    assert "unknown stage 'nope' (stages: before_due, reminder, firm, final_warning, blocked)" in capsys.readouterr().err
    assert main([*env, "prompts", "render", "--account", "A-1", "--today", "18.11.2025"]) == 2
    assert "--today: expected YYYY-MM-DD" in capsys.readouterr().err


@pytest.mark.parametrize(("today", "stage", "note"), [
    ("2025-11-12", "reminder", "the ladder's stage for this case on 2025-11-12"),
    ("2025-11-18", "final_warning", "the ladder's stage for this case on 2025-11-18"),  # 2 days before the block
    ("2025-11-10", "reminder", "no stage yet on 2025-11-10; the first starts on 2025-11-11"),
])
def test_render_previews_the_stage_of_the_day(env: list[str], capsys: pytest.CaptureFixture[str],
                                              today: str, stage: str, note: str) -> None:
    """Without --stage, the preview is what a call placed that day would say: the stage the ladder
    gives the case then, not the stage stored on the case or the ladder's first one."""
    db = open_database(load_settings(None))
    with db.sessions.begin() as session:
        account = Account(external_id="A-78", holder_name="Петров Пётр", balance=Decimal("2"), currency="RUB",
                          due_date=dt.date(2025, 11, 10), block_date=dt.date(2025, 11, 20), language="ru",
                          timezone="Europe/Moscow")
        session.add(account)
        session.flush()
        session.add(DebtCase(account_id=account.id, opened_on=dt.date(2025, 11, 10), amount_initial=Decimal("2"),
                             amount_owed=Decimal("2"), stage_code="reminder"))
    db.engine.dispose()
    assert main([*env, "prompts", "render", "--account", "A-78", "--today", today]) == 0
    out = capsys.readouterr().out
    assert f"stage: {stage} ({note})" in out
