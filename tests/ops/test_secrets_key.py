"""A malformed LERNA_SECRETS_KEY stops the server at start with a message that names the
variable and the expected format, and never echoes the value it refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from lerna.server.settings import Settings

BAD = "my-webhook-key-but-not-fernet"


@pytest.mark.parametrize("bad", [BAD, "x" * 44, Fernet.generate_key().decode()[:-4]])
def test_settings_refuse_a_malformed_key_naming_variable_and_format(bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, secrets_key=bad)
    text = str(info.value)
    assert "LERNA_SECRETS_KEY must be a Fernet key" in text
    assert "url-safe base64" in text and "Fernet.generate_key()" in text
    assert bad not in text


def test_a_valid_key_and_an_empty_one_are_accepted() -> None:
    key = Fernet.generate_key().decode()
    assert Settings(_env_file=None, secrets_key=key).secrets_key == key
    assert Settings(_env_file=None, secrets_key="").secrets_key is None


def test_serve_exits_with_a_readable_error(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LERNA_ENV_FILE": str(tmp_path / "none.env"),
        "LERNA_DATA_DIR": str(tmp_path / "data"),
        "LERNA_SECRETS_KEY": BAD,
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "lerna.cli", "serve", "fl-api", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 2, out
    assert "LERNA_SECRETS_KEY must be a Fernet key" in " ".join(out.split())
    assert "Traceback" not in out and BAD not in out


def test_a_corrupted_generated_key_names_its_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "secrets_key").write_text("garbage")
    settings = Settings(_env_file=None, data_dir=data)
    with pytest.raises(RuntimeError, match=r"data/secrets_key must be a Fernet key"):
        settings.resolved_secrets_key()
