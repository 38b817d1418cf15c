"""Runs every benchmark of issue 9 and writes docs/benchmarks.md: `python bench/run.py [--quick]`.

1. Creates bench/.anchors-venv (PgQueuer, Procrastinate, Celery, Dramatiq and py-spy, pinned in
   bench/anchors-requirements.txt) unless it is already up to date.
2. Installs Debian's `wrk` (the HTTP load generator) when it is missing.
3. Creates the benchmark databases on the local PostgreSQL when missing (jk_bench, jk_ceiling, jk_explain,
   pgqueuer_bench, procrastinate_bench; no other database is touched) and uses Redis databases 11 and 12.
4. Runs each system in a subprocess: jobkeeper, the pgbench ceiling and the HTTP benchmark with the
   project's .venv python, each anchor with the anchors' python. Three runs of every measurement.
5. Writes every sample to bench/results/latest.json and the tables to docs/benchmarks.md (between the
   GENERATED markers; the prose around them is kept).

Standard library only: any python3 runs it. The project's .venv must exist (`make test` or `make up`
creates it).

    python bench/run.py                  # everything, three runs each: at most 25 minutes on 2 cores
    python bench/run.py --quick          # small N, one run each: a smoke test of the harness
    python bench/run.py --systems jobkeeper,pgqueuer --runs 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from common import RESULT_MARK, log  # noqa: E402

PROJECT_PYTHON = ROOT / ".venv" / "bin" / "python"
ANCHORS = BENCH / ".anchors-venv"
ANCHORS_PYTHON = ANCHORS / "bin" / "python"
REQUIREMENTS = BENCH / "anchors-requirements.txt"
RESULTS = BENCH / "results" / "latest.json"
DOC = ROOT / "docs" / "benchmarks.md"

ORDER = ("pgqueuer", "jobkeeper", "ceiling", "explain", "http", "procrastinate", "celery", "dramatiq")


def sh(command: list[str], **kwargs: Any) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True, **kwargs).stdout.strip()


def ensure_anchors(python: str) -> None:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = ANCHORS / ".installed"
    if ANCHORS_PYTHON.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return
    log(f"creating {ANCHORS.relative_to(ROOT)} from {REQUIREMENTS.relative_to(ROOT)}")
    if not ANCHORS_PYTHON.exists():
        subprocess.run([python, "-m", "venv", str(ANCHORS)], check=True)
    pip = [str(ANCHORS_PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    stamp.write_text(digest + "\n")


def ensure_wrk() -> None:
    """The HTTP load generator is Debian's `wrk` package: installed here when missing (as the Makefile
    installs chromium for the browser tests), never by hand."""
    if shutil.which("wrk"):
        return
    log("wrk is missing: apt-get install -y wrk")
    if subprocess.run(["apt-get", "install", "-y", "wrk"], check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], check=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)


class LoadWatch:
    """The machine's 1-minute load average every 15 s during the whole run (other engineers' suites share
    the machine: the note states the load the figures were measured under)."""

    def __init__(self, interval: float = 15.0) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append((time.time(), round(os.getloadavg()[0], 2)))
            if self._stop.wait(self._interval):
                return

    def start(self) -> LoadWatch:
        self._thread.start()
        return self

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(2)
        values = [load for _, load in self.samples]
        return {
            "samples": self.samples,
            "min": min(values, default=None),
            "median": statistics.median(values) if values else None,
            "max": max(values, default=None),
        }


def ensure_database(server: str, name: str) -> None:
    exists = sh(["psql", f"{server}/postgres", "-Atc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"])
    if exists != "1":
        log(f"creating database {name}")
        sh(["psql", f"{server}/postgres", "-c", f'CREATE DATABASE "{name}"'])


def machine(server: str) -> dict[str, Any]:
    info: dict[str, Any] = {"cores": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
        info["cpu"] = models[0] if models else None
        with open("/proc/meminfo") as meminfo:
            info["memory_gb"] = round(int(meminfo.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    query = (
        "SELECT version(), current_setting('shared_buffers'), current_setting('synchronous_commit'), "
        "current_setting('wal_sync_method'), current_setting('max_connections'), current_setting('jit'), "
        "current_setting('fsync')"
    )
    row = sh(["psql", f"{server}/postgres", "-AtF", "|", "-c", query]).split("|")
    keys = (
        "version",
        "shared_buffers",
        "synchronous_commit",
        "wal_sync_method",
        "max_connections",
        "jit",
        "fsync",
    )
    info["postgres"] = dict(zip(keys, row, strict=False))
    try:
        server_info = sh(["redis-cli", "INFO", "server"])
        info["redis"] = next(
            (line.split(":", 1)[1] for line in server_info.splitlines() if line.startswith("redis_version")),
            None,
        )
    except (OSError, subprocess.CalledProcessError):
        info["redis"] = None
    info["python_project"] = sh([str(PROJECT_PYTHON), "--version"])
    info["python_anchors"] = sh([str(ANCHORS_PYTHON), "--version"]) if ANCHORS_PYTHON.exists() else None
    try:
        commit = sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
        dirty = bool(sh(["git", "-C", str(ROOT), "status", "--porcelain", "--", "jobkeeper"]))
        info["jobkeeper_commit"] = commit + (" + uncommitted changes under jobkeeper/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        info["jobkeeper_commit"] = None
    info["wrk"] = _version(["wrk", "-v"])
    info["pgbench"] = _version(["pgbench", "--version"])
    return info


def _version(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError:
        return None
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else None


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def commands(args: argparse.Namespace) -> dict[str, list[str]]:
    server = args.postgres
    common = ["--runs", str(args.runs), *(["--quick"] if args.quick else [])]
    jk = [str(PROJECT_PYTHON), str(BENCH / "jk.py"), "--url", f"{server}/jk_bench", *common]
    jk += ["--py-spy", str(ANCHORS / "bin" / "py-spy")]
    if args.rss_jobs:
        jk += ["--rss-jobs", str(args.rss_jobs)]
    anchor = str(ANCHORS_PYTHON)
    return {
        "jobkeeper": jk,
        "ceiling": [str(PROJECT_PYTHON), str(BENCH / "ceiling.py"), "--url", f"{server}/jk_ceiling", *common],
        "explain": [
            str(PROJECT_PYTHON),
            str(BENCH / "explain.py"),
            "--url",
            f"{server}/jk_explain",
            "--runs",
            "5",
        ],
        "http": [str(PROJECT_PYTHON), str(BENCH / "http_api.py"), "--url", f"{server}/jk_bench", *common],
        "pgqueuer": [anchor, str(BENCH / "anchor_pgqueuer.py"), "--dsn", f"{server}/pgqueuer_bench", *common],
        # The slow anchors drain fewer jobs (a rate does not depend on N once past start-up), to keep the
        # whole run within 25 minutes.
        "procrastinate": [
            anchor,
            str(BENCH / "anchor_procrastinate.py"),
            "--dsn",
            f"{server}/procrastinate_bench",
            "--load",
            *common,
            *([] if args.quick else ["--drain-jobs", "1000"]),
        ],
        "celery": [
            anchor,
            str(BENCH / "anchor_celery.py"),
            "--redis",
            f"{args.redis}/11",
            *common,
            *([] if args.quick else ["--drain-jobs", "5000"]),
        ],
        "dramatiq": [anchor, str(BENCH / "anchor_dramatiq.py"), "--redis", f"{args.redis}/12", *common],
    }


def run_system(name: str, command: list[str], timeout: float) -> dict[str, Any]:
    log(f"=== {name}: {' '.join(Path(c).name if c.startswith('/') else c for c in command)}")
    started = time.time()
    before = load_average()
    try:
        done = subprocess.run(
            command, stdout=subprocess.PIPE, text=True, timeout=timeout, cwd=ROOT, check=False
        )
        stdout, code = done.stdout, done.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout
        stdout, code = (out.decode() if isinstance(out, bytes) else out or ""), -1
    record: dict[str, Any] = {
        "command": command,
        "returncode": code,
        "started": started,
        "seconds": time.time() - started,
        "load_before": before,
        "load_after": load_average(),
        "results": {},
        "meta": {},
    }
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARK):
            payload = json.loads(line[len(RESULT_MARK) :])
            record["results"], record["meta"] = payload["results"], payload["meta"]
    if code != 0:
        log(f"{name} exited with {code}")
    log(f"=== {name} done in {record['seconds']:.0f} s")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small N, one run: a smoke test")
    parser.add_argument("--runs", type=int, default=None, help="runs per measurement (default 3; quick 1)")
    parser.add_argument(
        "--systems", default=",".join(ORDER), help=f"comma-separated subset of {','.join(ORDER)}"
    )
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--rss-jobs", type=int, default=None, help="jobs drained in the memory test")
    parser.add_argument("--python", default=sys.executable, help="interpreter that creates the anchors' venv")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per system")
    args = parser.parse_args()
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if not PROJECT_PYTHON.exists():
        raise SystemExit(f"{PROJECT_PYTHON} is missing: run `make test` or `make up` first to create .venv")
    wanted = [name for name in ORDER if name in args.systems.split(",")]

    ensure_anchors(args.python)
    if "http" in wanted:
        ensure_wrk()
    for database in ("jk_bench", "jk_ceiling", "jk_explain", "pgqueuer_bench", "procrastinate_bench"):
        ensure_database(args.postgres, database)

    started = time.time()
    report: dict[str, Any] = {
        "started": started,
        "quick": args.quick,
        "runs": args.runs,
        "command": " ".join(["python", "bench/run.py", *sys.argv[1:]]),
        "machine": machine(args.postgres),
        "systems": {},
    }
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else None
    every = commands(args)
    watch = LoadWatch().start()
    for name in wanted:
        report["systems"][name] = run_system(name, every[name], args.timeout)
    report["load"] = watch.stop()
    report["seconds"] = time.time() - started
    if previous and set(wanted) != set(ORDER) and previous.get("quick") == args.quick:
        # A partial run keeps the other systems' latest figures (each keeps its own timestamps).
        for name, record in previous.get("systems", {}).items():
            report["systems"].setdefault(name, record)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1, default=str) + "\n")
    log(f"results: {RESULTS.relative_to(ROOT)} ({report['seconds'] / 60:.1f} min)")
    if not args.no_doc:
        import report as writer

        writer.write(report, DOC)
        log(f"written: {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
