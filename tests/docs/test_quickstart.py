"""docs/quickstart.md followed with `DATABASE_URL` set: the settings it names are the ones `jobkeeper up`
needs (each one missing is refused, naming it), and its token command mints a token for them."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jwt

ROOT = Path(__file__).resolve().parents[2]
JOBKEEPER = str(Path(sys.executable).parent / "jobkeeper")
VALUES = {
    "JOBKEEPER_JWT_SECRET": "quickstart-secret-of-more-than-32-bytes",
    "JOBKEEPER_JWT_AUDIENCE": "quickstart-audience",
    "JOBKEEPER_JWT_ISSUER": "quickstart-issuer",
}


def _paragraph() -> str:
    text = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
    (paragraph,) = [
        p for p in text.split("\n\n") if "With\n`DATABASE_URL` set" in p or "With `DATABASE_URL` set" in p
    ]
    return paragraph


def _env(**settings: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("JOBKEEPER_") and k != "DATABASE_URL"}
    return base | settings


def test_up_with_a_database_url_needs_exactly_the_settings_the_quickstart_names(db_url: str) -> None:
    named = set(re.findall(r"JOBKEEPER_JWT_[A-Z_]+", _paragraph()))
    assert named == set(VALUES)
    for missing in sorted(named):
        settings = {k: v for k, v in VALUES.items() if k != missing}
        result = subprocess.run(
            [JOBKEEPER, "up", "--workers", "0"],
            env=_env(DATABASE_URL=db_url, **settings),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, (missing, result.stdout, result.stderr)
        assert missing in result.stderr


def test_the_quickstart_token_command_mints_a_token_for_those_settings() -> None:
    (command,) = re.findall(r"`(\.venv/bin/jobkeeper token [^`]+)`", _paragraph().replace("\n", " "))
    args = shlex.split(command)
    result = subprocess.run(
        [JOBKEEPER, *args[1:]], env=_env(**VALUES), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(
        result.stdout.strip(),
        VALUES["JOBKEEPER_JWT_SECRET"],
        algorithms=["HS256"],
        audience=VALUES["JOBKEEPER_JWT_AUDIENCE"],
        issuer=VALUES["JOBKEEPER_JWT_ISSUER"],
    )
    assert claims["role"] == "admin"
