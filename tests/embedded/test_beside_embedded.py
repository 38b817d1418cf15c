"""Commands run beside the embedded server (as `make up` runs it) find it for every purpose: a second
`jobkeeper worker` with no DATABASE_URL runs the built-in processors that read the database, and does not
claim the jobs of a built-in whose provider is not configured; `doctor` gives the same answer."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from jobkeeper import Settings, SyncClient
from jobkeeper.process.embedded import EmbeddedPostgres
from jobkeeper.store import migrate
from tests.embedded.test_embedded import JOBKEEPER, ROOT, _env
from tests.support import wait_for


@pytest.fixture
def embedded(server_dir: Path) -> Iterator[tuple[Path, str]]:
    """A running embedded server in a data dir, as `jobkeeper up` leaves it for other commands."""
    data_dir = server_dir / "jk"
    server = EmbeddedPostgres(data_dir)
    url = server.start()
    migrate.upgrade(url)
    yield data_dir, url
    server.stop()


def _row(url: str, job_id: object) -> tuple[str, int, str | None]:
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT status, attempts, last_error FROM jobkeeper.jobs WHERE id = %s", (job_id,)
        ).fetchone()
    assert found is not None
    return found[0], found[1], found[2]


def _worker_types(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT job_types FROM jobkeeper.workers").fetchall()
    return sorted(t for (types,) in rows for t in types)


def test_a_second_worker_finds_the_embedded_server_for_every_purpose(
    embedded: tuple[Path, str], tmp_path: Path
) -> None:
    data_dir, url = embedded
    settings = Settings.from_env({}, pool_min=1, pool_max=2)
    with SyncClient(url, settings=settings) as client:
        sms = client.enqueue("send-sms", {"to": "+14155550100", "body": "hi"})
        report = client.enqueue("generate-report", {"hours": 1})
    log = tmp_path / "worker.err"
    with log.open("w") as err:
        worker = subprocess.Popen(
            [JOBKEEPER, "worker", "--no-maintenance"],
            env=_env(data_dir) | {"JOBKEEPER_LOG_FORMAT": "console"},
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=ROOT,
        )
        try:
            wait_for(lambda: _row(url, report.id)[0] != "pending", timeout=60, what="the report job")
            wait_for(lambda: _row(url, report.id)[0] == "completed", timeout=60, what="the report to finish")
            types = _worker_types(url)
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0
    assert {"generate-report", "cleanup-old-data"} <= set(types)
    assert "send-sms" not in types  # Twilio is not configured: this worker leaves its jobs alone
    assert _row(url, sms.id) == ("pending", 0, None)
    output = log.read_text()
    assert "DATABASE_URL" not in output
    unconfigured = [line for line in output.splitlines() if "not running these built-in job types" in line]
    assert len(unconfigured) == 1, output
    assert "send-sms" in unconfigured[0]
    assert "generate-report" not in unconfigured[0]

    doctor = subprocess.run(
        [JOBKEEPER, "doctor", "--no-api", "--json"], env=_env(data_dir), capture_output=True, text=True
    )
    providers = [c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "providers"]
    assert providers, doctor.stdout
    assert not any("DATABASE_URL" in json.dumps(c) for c in providers), providers
    assert not any("generate-report" in c["message"] for c in providers), providers
