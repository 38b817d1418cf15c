"""Output the docs show is the output the commands print. A block fenced ```` ```text output-of: CMD ````
is compared line by line with CMD's real output, where `…` in the doc stands for anything (a token, an
id, a timestamp) and a decimal number for any number (a duration); the real output's own paths and port
are first written as the doc writes them. Revisions and ids shown elsewhere are checked against real ones.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

from click.testing import CliRunner

from jobkeeper import Settings, SyncClient
from jobkeeper.cli import main
from jobkeeper.store import migrate
from tests.embedded.test_embedded import JOBKEEPER, ROOT, _env
from tests.payloads import VALID

DOCS = ROOT / "docs"
DOC_DATA_DIR = "/home/you/jobkeeper/.jobkeeper/data"
DOC_PORT = "3011"
FENCE = re.compile(r"^```text output-of: (?P<command>[^\n]+)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


def _shown(path: Path, command: str) -> list[str]:
    blocks = [m["body"] for m in FENCE.finditer(path.read_text(encoding="utf-8")) if m["command"] == command]
    assert len(blocks) == 1, f"{path.name}: one output block of {command!r} expected"
    return blocks[0].splitlines()


def _pattern(line: str) -> re.Pattern[str]:
    escaped = re.escape(line).replace("…", ".*")
    return re.compile(re.sub(r"\d+\\\.\d+", r"[0-9]+\\.[0-9]+", escaped) + "$")


def _mismatches(shown: list[str], real: list[str]) -> list[tuple[str, str]]:
    pairs = list(zip(shown, real, strict=False))
    wrong = [(doc, out) for doc, out in pairs if not _pattern(doc).match(out)]
    if len(shown) != len(real):
        wrong.append((f"{len(shown)} lines shown", f"{len(real)} lines printed"))
    return wrong


def test_the_quickstart_banner_is_what_up_prints(server_dir: Path) -> None:
    shown = _shown(DOCS / "quickstart.md", "jobkeeper up")
    data_dir = server_dir / "jk"
    env = _env(data_dir)
    process = subprocess.Popen(
        [JOBKEEPER, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
    )
    assert process.stdout is not None
    real: list[str] = []
    try:
        for line in process.stdout:
            real.append(
                line.rstrip().replace(str(data_dir), DOC_DATA_DIR).replace(env["JOBKEEPER_PORT"], DOC_PORT)
            )
            if line.startswith("jobkeeper is up"):
                break
    finally:
        process.terminate()
        process.wait(timeout=60)
        process.stdout.close()
    assert _mismatches(shown, real) == []


def test_revisions_shown_in_cli_md_are_what_db_current_prints(db_url: str) -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    env = {"DATABASE_URL": db_url, "JOBKEEPER_DATA_DIR": None}
    plain = CliRunner().invoke(main, ["db", "current"], env=env)
    as_json = CliRunner().invoke(main, ["db", "current", "--json"], env=env)
    assert plain.exit_code == as_json.exit_code == 0
    assert f"`{plain.stdout.strip()}`" in text
    assert f"`{json.dumps(json.loads(as_json.stdout))}`" in text
    assert f"schema at {migrate.head()} (head)" in text  # the doctor example
    shown = set(re.findall(r"\b0\d{3}\b(?= \(head\)|\"|\))", text))
    assert shown <= {migrate.head()}, f"revisions other than head shown as current: {shown}"


def test_job_ids_shown_look_like_real_ones(db_url: str) -> None:
    with SyncClient(db_url, settings=Settings.from_env({}, pool_min=1, pool_max=1)) as client:
        real = client.enqueue("send-email", VALID["send-email"]).id
    assert real.version == 4  # random, not time-ordered: no common prefix to show
    shown_ids = re.compile(r"\"(?:id|job_id)\": \"([^\"]+)\"")
    for path in [*DOCS.glob("*.md"), ROOT / "README.md"]:
        for value in shown_ids.findall(path.read_text(encoding="utf-8")):
            if value.endswith("…"):
                assert re.fullmatch(r"[0-9a-f]{8}-…", value), (path.name, value)
            else:
                uuid.UUID(value)
