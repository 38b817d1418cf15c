"""Child processes of `jobkeeper up`: started, restarted when they die, stopped gracefully."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

MAX_RESTART_DELAY = 30.0


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    next_start: float = 0.0
    history: list[int] = field(default_factory=list)

    def start(self) -> None:
        # Inherits stdout/stderr (one log stream), but not the terminal's process group: Ctrl-C reaches
        # `up` alone, which stops each child once (a second signal would make a worker stop at once).
        self.process = subprocess.Popen(self.argv, env=self.env, process_group=0)
        self.started_at = time.monotonic()


class Supervisor:
    """Keeps a set of child processes running until `stop()`."""

    def __init__(self) -> None:
        self.children: list[Child] = []

    def add(self, name: str, args: Sequence[str], env: Mapping[str, str]) -> Child:
        child = Child(name, [sys.executable, "-m", "jobkeeper", *args], _own_log_file(dict(env), name))
        self.children.append(child)
        child.start()
        return child

    def check(self) -> None:
        """Restart children that exited, with a delay doubling per quick failure (at most 30 s)."""
        now = time.monotonic()
        for child in self.children:
            process = child.process
            if process is None or process.poll() is None:
                if process is None and now >= child.next_start:
                    child.start()
                continue
            code = process.returncode
            child.history.append(code)
            child.process = None
            quick = now - child.started_at < 10
            child.restarts += 1
            delay = min(MAX_RESTART_DELAY, 2 ** min(child.restarts, 5)) if quick else 0.5
            child.next_start = now + delay
            log.warning("%s exited with status %s; restarting in %.1f s", child.name, code, delay)

    def hurry(self) -> None:
        """A second Ctrl-C: the workers hand their running jobs back now instead of waiting for them."""
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGINT)

    def stop(self, grace: float) -> None:
        """SIGTERM every child, wait up to `grace` seconds, then SIGKILL what is left."""
        running = [c.process for c in self.children if c.process is not None and c.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("pid %d did not stop within %.0f s; killing it", process.pid, grace)
                process.kill()
                process.wait()


def wait_until_serving(child: Child, url: str, *, timeout: float, stop: threading.Event) -> bool:
    """Poll `url` (a child's health endpoint) until it answers 200; False when the child exits, `stop` is
    set or `timeout` seconds pass first. `up` says it is up only once the API really answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if child.process is None or child.process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 - our own http URL
                if response.status == 200:
                    return True
        except OSError:
            pass
        stop.wait(0.1)
    return False


def child_environment(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url
    return env


def _own_log_file(env: dict[str, str], name: str) -> dict[str, str]:
    """A child writes JOBKEEPER_LOG_FILE's `jobkeeper.log` as `jobkeeper.worker-1.log`: a rotating file
    must have one writer, or two processes would rotate it under each other."""
    path = env.get("JOBKEEPER_LOG_FILE", "").strip()
    if path:
        base = Path(path)
        env["JOBKEEPER_LOG_FILE"] = str(base.with_name(f"{base.stem}.{name.replace(' ', '-')}{base.suffix}"))
    return env
