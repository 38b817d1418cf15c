"""The embedded PostgreSQL and `jobkeeper up`: start, adopt after a crash, stop, keep data, reconnect."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from jobkeeper import Client, JobStatus, Settings
from jobkeeper.process.embedded import EmbeddedPostgres
from jobkeeper.store import migrate
from tests.payloads import VALID
from tests.receivers import free_port
from tests.support import eventually

JOBKEEPER = str(Path(sys.executable).parent / "jobkeeper")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(server_dir: Path) -> Iterator[EmbeddedPostgres]:
    embedded = EmbeddedPostgres(server_dir / "data")
    yield embedded
    embedded.stop()


def _running(pgdata: Path) -> bool:
    return (pgdata / "postmaster.pid").exists()


def test_start_creates_the_database_and_restart_keeps_data(server: EmbeddedPostgres) -> None:
    url = server.start()
    assert server.created
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE marker (v text)")
        conn.execute("INSERT INTO marker VALUES ('kept')")
    server.stop()
    assert not _running(server.pgdata)
    url = server.start()
    assert not server.created
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT v FROM marker").fetchone() == ("kept",)


async def test_pool_reconnects_after_the_server_restarts(server: EmbeddedPostgres) -> None:
    url = server.start()
    migrate.upgrade(url)
    settings = Settings.from_env({}, pool_min=2, pool_max=2, acquire_timeout=10.0)
    async with Client(url, settings=settings) as client:
        job = await client.enqueue("payment-process", VALID["payment-process"] | {"amount": 5})
        server.stop()
        server.start()
        # Every pooled connection is now dead; the pool checks them out, finds them broken and reconnects.
        assert await client.get_job(job.id) == job
        again = await client.enqueue("payment-process", VALID["payment-process"] | {"amount": 6})
        assert again.payload == VALID["payment-process"] | {"amount": 6}


async def test_pool_sessions_carry_the_configured_timeouts(server: EmbeddedPostgres) -> None:
    url = server.start()
    migrate.upgrade(url)
    settings = Settings.from_env({}, statement_timeout=7.0, idle_in_transaction_timeout=11.0)
    async with Client(url, settings=settings) as client, client.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT current_setting('statement_timeout'),"
            " current_setting('idle_in_transaction_session_timeout'), current_setting('application_name')"
        )
        assert await cur.fetchone() == ("7s", "11s", "jobkeeper")


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("JOBKEEPER_")}
    env["JOBKEEPER_DATA_DIR"] = str(data_dir)
    env["JOBKEEPER_PORT"] = str(free_port())
    return env


def _start_up(data_dir: Path, *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [JOBKEEPER, "up", *args],
        env=_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line.rstrip())
        if "jobkeeper is up" in line:
            return process, lines
    raise AssertionError(f"`jobkeeper up` exited before it was up: {lines}")


def _finish(process: subprocess.Popen[str], signum: int) -> int:
    process.send_signal(signum)
    try:
        return process.wait(timeout=30)
    finally:
        assert process.stdout is not None
        process.stdout.close()


def _url_from(lines: list[str]) -> str:
    return next(line.split(": ", 1)[1] for line in lines if line.startswith("database url: "))


def test_up_migrates_the_embedded_database_and_stops_it_on_sigterm(server_dir: Path) -> None:
    data_dir = server_dir / "jk"
    process, lines = _start_up(data_dir)
    try:
        assert any(line.startswith("migrations: none -> ") for line in lines)
        url = _url_from(lines)
        assert migrate.current(url) == migrate.head()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO jobkeeper.tenants (id, name, slug) VALUES (%s, 'Acme', 'acme')", (uuid.uuid4(),)
            )
    finally:
        assert _finish(process, signal.SIGTERM) == 0
    assert not _running(data_dir / "pgdata")

    # A second `up` on the same data dir finds the data intact and has nothing to migrate.
    process, lines = _start_up(data_dir)
    try:
        assert f"migrations: {migrate.head()} -> {migrate.head()}" in " ".join(lines)
        with psycopg.connect(_url_from(lines)) as conn:
            assert conn.execute("SELECT name FROM jobkeeper.tenants WHERE slug = 'acme'").fetchone() == (
                "Acme",
            )
    finally:
        assert _finish(process, signal.SIGINT) == 0
    assert not _running(data_dir / "pgdata")


def test_up_adopts_the_server_left_by_a_killed_up_and_stops_it(server_dir: Path) -> None:
    data_dir = server_dir / "jk"
    process, _ = _start_up(data_dir)
    _finish(process, signal.SIGKILL)  # no cleanup runs: the daemonised server is orphaned
    assert _running(data_dir / "pgdata")
    process, lines = _start_up(data_dir)
    assert any("migrations: " in line for line in lines)
    assert _finish(process, signal.SIGTERM) == 0
    assert not _running(data_dir / "pgdata")


def test_a_second_up_on_the_same_data_dir_is_refused(server_dir: Path) -> None:
    data_dir = server_dir / "jk"
    process, _ = _start_up(data_dir)
    try:
        second = subprocess.run(
            [JOBKEEPER, "up"], env=_env(data_dir), capture_output=True, text=True, timeout=30
        )
        assert second.returncode == 2
        assert f"another `jobkeeper up` (pid {process.pid}) is running" in second.stderr
        # One-shot commands share the running server and leave it running.
        current = subprocess.run(
            [JOBKEEPER, "db", "current"], env=_env(data_dir), capture_output=True, text=True, timeout=30
        )
        assert current.stdout.strip() == f"{migrate.head()} (head)"
        assert _running(data_dir / "pgdata")
    finally:
        assert _finish(process, signal.SIGTERM) == 0
    assert not _running(data_dir / "pgdata")


def test_up_refuses_a_malformed_setting_with_one_line(server_dir: Path) -> None:
    env = _env(server_dir) | {"JOBKEEPER_POOL_MAX": "lots"}
    result = subprocess.run([JOBKEEPER, "up"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip() == "Error: JOBKEEPER_POOL_MAX must be a whole number ≥ 1, got 'lots'"


async def test_up_runs_workers_that_process_jobs(server_dir: Path) -> None:
    data_dir = server_dir / "jk"
    process, lines = _start_up(data_dir, "--workers", "2", "--import", "tests.worker.cli_handlers")
    try:
        assert "workers: 2 (maintenance runs in one of them at a time)" in lines
        api = next(line.split()[1] for line in lines if line.startswith("api: "))
        token = lines[
            lines.index(next(line for line in lines if line.startswith("development admin token"))) + 1
        ]
        url = _url_from(lines)
        async with Client(url, settings=Settings.from_env({}, pool_min=0, pool_max=2)) as client:
            jobs = await client.enqueue_many([{"type": "echo", "payload": {"n": n}} for n in range(20)])

            async def all_done() -> bool:
                found = [await client.get_job(job.id) for job in jobs]
                return all(job is not None and job.status is JobStatus.COMPLETED for job in found)

            await eventually(all_done, timeout=30, what="the workers of `jobkeeper up` to run the jobs")
            done = await client.get_job(jobs[3].id)
            assert done is not None
            assert done.result == {"echo": {"n": 3}, "attempt": 1}
            # The API child answers with the development token `up` printed.
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token.strip()}"}) as http:

                async def api_answers() -> bool:
                    try:
                        response = await http.get(f"{api}/jobs/{jobs[3].id}")
                    except httpx.TransportError:
                        return False
                    return response.status_code == 200

                await eventually(api_answers, timeout=30, what="the API of `jobkeeper up`")
                response = await http.get(f"{api}/jobs/{jobs[3].id}")
                assert response.json()["status"] == "completed"
                assert (
                    await http.get(f"{api}/jobs/{jobs[3].id}", headers={"Authorization": ""})
                ).status_code == 401

            async def both_workers_registered() -> bool:
                with psycopg.connect(url) as conn:
                    row = conn.execute(
                        "SELECT count(*) FROM jobkeeper.workers WHERE stopped_at IS NULL"
                    ).fetchone()
                return row == (2,)

            await eventually(both_workers_registered, timeout=30, what="both workers to register")
            with psycopg.connect(url) as conn:
                leases = conn.execute("SELECT count(*) FROM jobkeeper.leases").fetchone()
                assert leases == (1,)  # one of them leads maintenance
    finally:
        assert _finish(process, signal.SIGTERM) == 0
    assert not _running(data_dir / "pgdata")


def test_up_on_a_real_database_never_invents_a_secret(server_dir: Path) -> None:
    env = _env(server_dir) | {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    result = subprocess.run([JOBKEEPER, "up"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "JOBKEEPER_JWT_SECRET" in result.stderr
    assert "--no-api" in result.stderr
    assert not (server_dir / "dev-jwt-secret").exists()
