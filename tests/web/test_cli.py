"""`ivr users`, `ivr tokens` and `ivr web` command wiring."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from ivr.cli import main
from ivr.db.base import make_engine, make_session_factory
from ivr.db.models import ApiToken, User
from ivr.web.auth import hash_token, verify_password


def test_users_and_tokens_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("IVR_DATABASE_URL", url)
    env = ["--env-file", str(tmp_path / "none.env")]
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long password\n"))
    assert main([*env, "users", "add", "chief", "--role", "admin", "--password-stdin", "--phone", "PJSIP/100"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main([*env, "users", "add", "weak", "--role", "operator", "--password-stdin"]) == 1
    assert "at least 12" in capsys.readouterr().err
    assert main([*env, "users", "list"]) == 0
    assert "chief" in capsys.readouterr().out
    assert main([*env, "tokens", "add", "billing", "--scopes", "export"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.startswith("ivr_")
    assert main([*env, "tokens", "add", "pusher", "--scopes", "import,delete"]) == 1
    assert "scopes" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a token's powers are always chosen, never implied
        main([*env, "tokens", "add", "vague"])
    capsys.readouterr()
    assert main([*env, "tokens", "list"]) == 0
    listing = capsys.readouterr().out
    assert "billing" in listing and "export" in listing and "pusher" not in listing
    assert main([*env, "tokens", "revoke", "billing"]) == 0
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        user = s.scalars(select(User).where(User.username == "chief")).one()
        assert user.role == "admin" and user.phone == "PJSIP/100"
        assert verify_password("a long password", user.password_hash)
        row = s.scalars(select(ApiToken)).one()
        assert row.token_hash == hash_token(token) and row.revoked_at is not None
    engine.dispose()


def test_web_command_config(tmp_path: Path) -> None:
    from ivr.commands.web_cmd import uvicorn_config
    from ivr.config import Settings

    config = uvicorn_config(object(), Settings(web_host="127.0.0.1", web_port=8123))
    assert (config.host, config.port, config.log_config) == ("127.0.0.1", 8123, None)
    parser_help = io.StringIO()
    from ivr.cli import build_parser

    build_parser().print_help(parser_help)
    assert "web" in parser_help.getvalue() and "users" in parser_help.getvalue()


@pytest.mark.parametrize(("command", "env", "key"), [
    ("web", {"IVR_WEB_SECRET": "changeme"}, "IVR_WEB_SECRET"),
    ("run", {"IVR_ASTERISK_SERVERS": "pbx1", "IVR_AST_PBX1_HOST": "10.0.0.7", "IVR_AST_PBX1_USER": "ivr",
             "IVR_AST_PBX1_SECRET": "CHANGE-ME"}, "IVR_AST_PBX1_SECRET"),
])
def test_weak_secret_stops_start_up_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str], command: str,
                                                  env: dict[str, str], key: str) -> None:
    monkeypatch.setenv("IVR_DATABASE_URL", f"sqlite:///{tmp_path / 'never.sqlite3'}")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["--env-file", str(tmp_path / "none.env"), command]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"configuration error: {key}: weak secret refused") and err.count("\n") == 1
    assert not (tmp_path / "never.sqlite3").exists()  # refused before anything started
