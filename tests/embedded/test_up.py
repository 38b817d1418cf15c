"""`jobkeeper up` as a newcomer meets it: it says where everything is, each address answers as soon as
it says it is up, and Ctrl-C (SIGINT to the whole terminal process group) stops every process."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx

from tests.embedded.test_embedded import JOBKEEPER, ROOT, _env, _running
from tests.support import wait_for


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_up_prints_every_address_each_answers_and_ctrl_c_stops_everything(server_dir: Path) -> None:
    data_dir = server_dir / "jk"
    env = _env(data_dir)
    process = subprocess.Popen(
        [JOBKEEPER, "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        start_new_session=True,  # its own process group, like a shell job in a terminal
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip())
            if "jobkeeper is up" in line:
                break
        base = f"http://127.0.0.1:{env['JOBKEEPER_PORT']}"
        assert f"api: {base}/api/v1/queue (OpenAPI docs at {base}/docs)" in lines
        assert f"dashboard: {base}/dashboard" in lines
        assert f"metrics: {base}/metrics" in lines
        assert f"data dir: {data_dir}" in lines
        token = lines[lines.index(next(x for x in lines if x.startswith("development admin token"))) + 1]
        children = _children(process.pid)
        assert len(children) == 2  # the API and one worker

        # "up" means up: no waiting, every address answers now.
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/health").json() == {"status": "ok"}
            assert http.get("/docs").status_code == 200
            assert "jobkeeper_queue_depth" in http.get("/metrics").text
            assert http.get("/dashboard/sign-in").status_code == 200
            queues = http.get("/api/v1/queue/queues", headers={"Authorization": f"Bearer {token.strip()}"})
            assert queues.status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=60) == 0
        rest = process.stdout.read()
        process.stdout.close()
    assert rest.rstrip().endswith("jobkeeper stopped")
    wait_for(lambda: not any(_alive(pid) for pid in children), timeout=10, what="the children to exit")
    assert not _running(data_dir / "pgdata")
