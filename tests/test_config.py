import pytest

from ivr.config import ConfigError, load_settings


def test_defaults_without_env_file(tmp_path):
    s = load_settings(tmp_path / "missing.env", environ={})
    assert s.database_url.startswith("sqlite")
    assert s.agi_host == "127.0.0.1"  # loopback by default
    assert s.use_simulator


def test_env_example_parses_and_documents_every_key(tmp_path):
    from pathlib import Path

    from ivr.config import _SIMPLE

    example = Path(__file__).resolve().parent.parent / ".env.example"
    s = load_settings(example, environ={})
    assert s.caller_id == '"Billing" <74950000000>'
    text = example.read_text(encoding="utf-8")
    for key in _SIMPLE:
        assert key in text, f"{key} is not documented in .env.example"


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"IVR_AGI_PORT": "http"}, "IVR_AGI_PORT"),
        ({"IVR_AGI_PORT": "70000"}, "IVR_AGI_PORT"),
        ({"IVR_DEFAULT_TIMEZONE": "Mars/Olympus"}, "IVR_DEFAULT_TIMEZONE"),
        ({"IVR_AGI_ALLOW": "10.0.0.0/8,not-an-ip"}, "IVR_AGI_ALLOW"),
        ({"IVR_CALLS_PER_SECOND": "-1"}, "IVR_CALLS_PER_SECOND"),
        ({"IVR_ASTERISK_SERVERS": "pbx1", "IVR_AST_PBX1_HOST": "127.0.0.1"}, "IVR_AST_PBX1_USER"),
        ({"IVR_DATABASE_URL": "mysql://x"}, "IVR_DATABASE_URL"),
        ({"IVR_LOG_LEVEL": "LOUD"}, "IVR_LOG_LEVEL"),
    ],
)
def test_bad_value_names_the_key(tmp_path, env, key):
    with pytest.raises(ConfigError, match=key):
        load_settings(tmp_path / "none.env", environ=env)


def test_asterisk_servers_from_env(tmp_path):
    env = {
        "IVR_ASTERISK_SERVERS": "pbx1, pbx2",
        "IVR_AST_PBX1_HOST": "127.0.0.1", "IVR_AST_PBX1_USER": "ivr", "IVR_AST_PBX1_SECRET": "q7Vd2LmX9rTz4KpW8nBs",
        "IVR_AST_PBX1_CHANNELS": "30",
        "IVR_AST_PBX2_HOST": "127.0.0.2", "IVR_AST_PBX2_USER": "ivr", "IVR_AST_PBX2_SECRET": "H3kq9ZtR6wYp2VmC5xNa",
        "IVR_AST_PBX2_CHANNEL": "SIP/trunk/{number}",
    }
    s = load_settings(tmp_path / "none.env", environ=env)
    assert [a.name for a in s.asterisk_servers] == ["pbx1", "pbx2"]
    assert s.asterisk_servers[0].channel_limit == 30
    assert s.asterisk_servers[1].channel_template == "SIP/trunk/{number}"
    assert not s.use_simulator


def test_env_file_overridden_by_environment(tmp_path):
    f = tmp_path / ".env"
    f.write_text("IVR_WEB_PORT=9000\nIVR_COMPANY_NAME=Acme\n", encoding="utf-8")
    s = load_settings(f, environ={"IVR_WEB_PORT": "9100"})
    assert s.web_port == 9100 and s.company_name == "Acme"


def test_prompts_dir_found_from_another_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(None, environ={})
    assert (s.prompts_dir / "ru" / "greeting.j2").is_file()
    with pytest.raises(ConfigError, match="IVR_PROMPTS_DIR"):
        load_settings(None, environ={"IVR_PROMPTS_DIR": str(tmp_path / "nope")})


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"IVR_WEB_SECRET": "hunter2"}, "IVR_WEB_SECRET"),
        ({"IVR_WEB_SECRET": "change-me-change-me-change-me-change-me"}, "IVR_WEB_SECRET"),
        ({"IVR_WEB_SECRET": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, "IVR_WEB_SECRET"),
        ({"IVR_ASTERISK_SERVERS": "pbx1", "IVR_AST_PBX1_HOST": "10.0.0.7", "IVR_AST_PBX1_USER": "ivr",
          "IVR_AST_PBX1_SECRET": "CHANGE-ME"}, "IVR_AST_PBX1_SECRET"),
        ({"IVR_ASTERISK_SERVERS": "pbx1", "IVR_AST_PBX1_HOST": "10.0.0.7", "IVR_AST_PBX1_USER": "ivr",
          "IVR_AST_PBX1_SECRET": "12345678"}, "IVR_AST_PBX1_SECRET"),
    ],
)
def test_weak_secrets_stop_start_up_naming_the_key(tmp_path, env, key):
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "none.env", environ=env)
    message = str(info.value)
    assert message.startswith(f"{key}: weak secret refused") and "\n" not in message
    assert env[key] not in message  # the secret itself is never echoed into a log


def test_strong_secrets_and_trusted_proxies_load(tmp_path):
    s = load_settings(tmp_path / "none.env", environ={
        "IVR_WEB_SECRET": "Zk3v9QpL2xR7mT4wN8sB1cF6hJ0dG5aY", "IVR_WEB_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/24"})
    assert s.web_secret.startswith("Zk3v") and s.web_trusted_proxies == ("127.0.0.1", "10.0.0.0/24")
    with pytest.raises(ConfigError, match="IVR_WEB_TRUSTED_PROXIES"):
        load_settings(tmp_path / "none.env", environ={"IVR_WEB_TRUSTED_PROXIES": "proxy.example"})


def test_simulator_needs_no_secret_setting(tmp_path):
    """The built-in simulator's fixed loopback credential is not a setting, so it is not judged."""
    from ivr.runtime import SIM_SECRET, simulator_server

    s = load_settings(tmp_path / "none.env", environ={})
    assert s.use_simulator
    assert simulator_server(5038, 4).ami_secret == SIM_SECRET
