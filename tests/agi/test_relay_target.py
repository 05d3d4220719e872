"""Where classic AGI relays by default: the FastAGI server of the robot's settings, read from the
same `.env` and environment as ivr.config, parsed the way python-dotenv parses them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dotenv import dotenv_values

from ivr.agi import relay_target
from ivr.agi.relay_target import TargetError, default_url

REPO = Path(__file__).resolve().parents[2]


def url_for(tmp_path: Path, text: str | None, **environ: str) -> str:
    env_file = tmp_path / "robot.env"
    if text is not None:
        env_file.write_text(text, encoding="utf-8")
    return default_url({"IVR_ENV_FILE": str(env_file), **environ})


@pytest.mark.parametrize(("text", "environ", "expected"), [
    (None, {}, "agi://127.0.0.1:4573"),  # no .env: ivr.config's defaults
    ("IVR_AGI_PORT=4600\n", {}, "agi://127.0.0.1:4600"),
    ("IVR_AGI_HOST=0.0.0.0\nIVR_AGI_PORT=4601\n", {}, "agi://127.0.0.1:4601"),  # wildcard bind -> loopback
    ("IVR_AGI_HOST=::\n", {}, "agi://[::1]:4573"),
    ("IVR_AGI_HOST=10.1.2.3\n", {}, "agi://10.1.2.3:4573"),
    ("IVR_AGI_PORT=4600\nIVR_AGI_PUBLIC_URL=agi://robot.example.net:4700/\n", {}, "agi://robot.example.net:4700"),
    ("IVR_AGI_PUBLIC_URL=agi://0.0.0.0:4700\n", {}, "agi://127.0.0.1:4700"),
    ("IVR_AGI_PUBLIC_URL=hagi://robots.example.net\nIVR_AGI_PORT=4600\n", {}, "agi://127.0.0.1:4600"),  # no SRV
    ("IVR_AGI_PORT=4600\n", {"IVR_AGI_PORT": "4650"}, "agi://127.0.0.1:4650"),  # the environment wins
    ("IVR_AGI_PORT=4600\n", {"IVR_AGI_PORT": ""}, "agi://127.0.0.1:4573"),  # empty = default, as in config
    ("export IVR_AGI_PORT='4602'\n# IVR_AGI_PORT=1\n", {}, "agi://127.0.0.1:4602"),
    ('IVR_AGI_PORT="4603" # dotenv strips this comment\n', {}, "agi://127.0.0.1:4603"),
    ("P=46\nIVR_AGI_PORT=${P}04\n", {}, "agi://127.0.0.1:4604"),  # interpolation: python-dotenv's job
    ('IVR_TEXT="line one\nIVR_AGI_PORT=1\n"\nIVR_AGI_PORT=4605\n', {}, "agi://127.0.0.1:4605"),  # multi-line
])
def test_default_url(tmp_path: Path, text: str | None, environ: dict[str, str], expected: str) -> None:
    assert url_for(tmp_path, text, **environ) == expected


@pytest.mark.parametrize("text", [
    "IVR_AGI_PORT=http\n", "IVR_AGI_PORT=0\n", "IVR_AGI_PUBLIC_URL=agi://x:99999\n",
])
def test_bad_settings_are_reported(tmp_path: Path, text: str) -> None:
    with pytest.raises(TargetError):
        url_for(tmp_path, text)


SAMPLES = [
    "IVR_AGI_HOST=1.2.3.4\nIVR_AGI_PORT=1\nIVR_AGI_PORT=2\n",
    "  export   IVR_AGI_HOST = 'h1' \n",
    "IVR_AGI_HOST=\"h2\"\r\nIVR_AGI_PORT=3\r\n",
    "\ufeffIVR_AGI_HOST=h3\n",
    "IVR_AGI_HOST=h4 # comment\n",
    "IVR_AGI_HOST='h#5'\n",
    "IVR_AGI_HOST=\"h\\\\6\"\n",
    "A=\"x\\\"\nIVR_AGI_HOST=h7\n\"\nIVR_AGI_PORT=8\n",
    "IVR_AGI_HOST\nIVR_AGI_PORT=\n",
    "'IVR_AGI_HOST'=h9\n",
    "IVR_AGI_HOST=h10\rIVR_AGI_PORT=10\r",
    "X=1\n#IVR_AGI_HOST=no\nIVR_AGI_PUBLIC_URL = agi://a:1 \n",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_reads_what_python_dotenv_reads(tmp_path: Path, text: str) -> None:
    """The small reader (or its hand-over to python-dotenv) never disagrees with ivr.config's parser."""
    env_file = tmp_path / "robot.env"
    env_file.write_bytes(text.encode("utf-8"))
    expected = {k: (v or "").strip() for k, v in dotenv_values(env_file).items() if k in relay_target.KEYS}
    assert relay_target.read_values(str(env_file), {}) == {k: v for k, v in expected.items() if v}


def test_plain_env_file_needs_no_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / "robot.env"
    env_file.write_text("IVR_DATABASE_URL=sqlite:///ivr.db\nIVR_AGI_HOST=0.0.0.0\nIVR_AGI_PORT=4600\n")
    code = ("import sys, os; from ivr.agi.relay_target import default_url; "
            f"print(default_url({{'IVR_ENV_FILE': {str(env_file)!r}}})); "
            "print(sorted(m for m in sys.modules if m.startswith(('dotenv', 'ivr.config', 'logging'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=30, check=True)
    assert out.stdout.splitlines() == ["agi://127.0.0.1:4600", "[]"]
