"""`ivr pause` / `ivr resume` and `ivr status` showing the pauses (issue 13)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.cli import main
from ivr.commands.status_cmd import collect, render
from ivr.config import load_settings
from ivr.db.models import RobotPause
from ivr.wiring import open_database


def test_pause_list_resume_and_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    env = ["--env-file", str(tmp_path / "none.env")]
    assert main([*env, "pause", "--list"]) == 0
    assert "nothing is paused" in capsys.readouterr().out
    assert main([*env, "pause", "--stage", "firm", "--why", "complaints", "--by", "anna"]) == 0
    assert "stage firm paused by anna" in capsys.readouterr().out
    assert main([*env, "pause", "--server", "pbx1"]) == 0
    assert main([*env, "pause"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):  # one target at a time
        main([*env, "pause", "--stage", "firm", "--server", "pbx1"])
    capsys.readouterr()
    assert main([*env, "pause", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "stage firm paused by anna" in listing and "complaints" in listing
    assert "server pbx1" in listing and "everything paused by shell" in listing

    settings = load_settings(str(tmp_path / "none.env"))
    db = open_database(settings)
    try:
        report = collect(settings, db, dt.datetime.now(dt.UTC))
    finally:
        db.engine.dispose()
    assert {(p["scope"], p["key"]) for p in report["pauses"]} == {("stage", "firm"), ("server", "pbx1"), ("global", "")}
    text = render(report)
    assert "PAUSED stage firm by anna" in text and "PAUSED EVERYTHING" in text

    assert main([*env, "resume", "--stage", "reminder"]) == 1  # was not paused: says so
    assert "was not paused" in capsys.readouterr().err
    assert main([*env, "resume", "--by", "boris"]) == 0
    out = capsys.readouterr().out
    assert "resumed everything" in out and "still paused: stage firm" in out
    db = open_database(settings)
    try:
        with db.sessions() as s:
            row = s.scalars(select(RobotPause).where(RobotPause.scope == "global")).one()
            assert row.resumed_by == "boris" and row.resumed_at is not None
    finally:
        db.engine.dispose()
