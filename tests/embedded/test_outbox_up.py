"""`jobkeeper up` and the development outbox: on for its children with the embedded database (a send-email
job with no provider completes, not delivered, and the dashboard lists it), refused with DATABASE_URL."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx

from jobkeeper.dashboard import session
from jobkeeper.processors.outbox import LABEL
from tests.embedded.test_embedded import JOBKEEPER, ROOT, _env
from tests.support import wait_for

RECEIPT = {
    "to": "ann@example.com",
    "template": "receipt",
    "data": {"customer_name": "Ann", "order_id": "o-7", "event_name": "Jazz", "items": [], "total": "$0"},
}


def test_up_with_the_embedded_database_keeps_messages_in_the_outbox(server_dir: Path) -> None:
    env = _env(server_dir / "jk")
    process = subprocess.Popen(
        [JOBKEEPER, "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip())
            if "jobkeeper is up" in line:
                break
        assert any(line.startswith("development outbox: on") for line in lines), lines
        token = lines[lines.index(next(x for x in lines if x.startswith("development admin token"))) + 1]
        base = f"http://127.0.0.1:{env['JOBKEEPER_PORT']}"
        bearer = {"Authorization": f"Bearer {token.strip()}"}
        with httpx.Client(base_url=base, timeout=10, headers=bearer) as http:
            created = http.post("/api/v1/queue/jobs", json={"type": "send-email", "data": RECEIPT})
            assert created.status_code == 201, created.text
            job_id = created.json()["id"]

            def done() -> bool:
                status = http.get(f"/api/v1/queue/jobs/{job_id}").json()["status"]
                return status in ("completed", "failed")

            wait_for(done, timeout=30, what="the send-email job to finish")
            job = http.get(f"/api/v1/queue/jobs/{job_id}").json()
            assert job["status"] == "completed", job
            assert job["result"]["note"] == LABEL
        with httpx.Client(base_url=base, timeout=10, cookies={session.COOKIE: token.strip()}) as browser:
            page = browser.get("/dashboard/outbox")
        assert page.status_code == 200
        assert "ann@example.com" in page.text
        assert LABEL in page.text
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)
        process.stdout.close()


def test_up_refuses_the_outbox_with_a_database_url(db_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBKEEPER_")}
    env |= {"DATABASE_URL": db_url, "JOBKEEPER_DEV_OUTBOX": "true"}
    result = subprocess.run(
        [JOBKEEPER, "up", "--workers", "0", "--no-api"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "JOBKEEPER_DEV_OUTBOX=true is only for the embedded development setup" in result.stderr
