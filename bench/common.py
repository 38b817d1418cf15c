"""Helpers shared by every benchmark script: standard library only, so that the anchors' virtual environment
(which has no jobkeeper) imports it as well as the project's.

Each system's script prints one JSON document on its last stdout line (`emit`): a mapping of measurement
name to a list of samples (one per run), each sample a mapping of figures. `bench/run.py` collects them.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

RESULT_MARK = "BENCH-RESULT "

Sample = dict[str, Any]
Results = dict[str, list[Sample]]


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (as PostgreSQL's percentile_cont)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def emit(results: Results, meta: dict[str, Any]) -> None:
    """Print the results for `bench/run.py` (one line, marked) and flush."""
    print(RESULT_MARK + json.dumps({"results": results, "meta": meta}, default=str), flush=True)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- processes -------------------------------------------------------------------------------------------


def rss_bytes(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process from /proc, in bytes; (0, 0) when it is gone."""
    current = peak = 0
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    current = int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return current, peak


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0.0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    # After the command: state is field 0, utime field 11, stime field 12.
    return (int(fields[11]) + int(fields[12])) / ticks


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as stat:
        parts = [float(x) for x in stat.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0.0)
    total = sum(parts[:8])
    return total - idle, total


@dataclass
class ProcessWatch:
    """Samples the RSS of some processes every `interval` seconds on a thread, and their CPU time."""

    pids: list[int]
    interval: float = 0.25
    peak_rss: dict[int, int] = field(default_factory=dict)
    trace: list[tuple[float, int]] = field(default_factory=list)
    """(seconds since start, summed RSS) samples."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _cpu0: dict[int, float] = field(default_factory=dict)
    _machine0: tuple[float, float] = (0.0, 0.0)
    _t0: float = 0.0

    def start(self) -> ProcessWatch:
        self._t0 = time.monotonic()
        self._cpu0 = {pid: cpu_seconds(pid) for pid in self.pids}
        self._machine0 = machine_cpu()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        total = 0
        for pid in self.pids:
            current, peak = rss_bytes(pid)
            total += current
            self.peak_rss[pid] = max(self.peak_rss.get(pid, 0), peak, current)
        self.trace.append((time.monotonic() - self._t0, total))

    def stop(self) -> dict[str, Any]:
        """Stop sampling; the figures: peak RSS (max over the processes), CPU seconds and utilisation."""
        self.sample()
        wall = time.monotonic() - self._t0
        cpu = {pid: cpu_seconds(pid) - self._cpu0.get(pid, 0.0) for pid in self.pids}
        busy1, total1 = machine_cpu()
        busy0, total0 = self._machine0
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        return {
            "peak_rss_mb": max(self.peak_rss.values(), default=0) / 1e6,
            "worker_cpu_s": sum(cpu.values()),
            "worker_cpu_pct": 100.0 * sum(cpu.values()) / wall if wall > 0 else None,
            "machine_cpu_pct": 100.0 * (busy1 - busy0) / (total1 - total0) if total1 > total0 else None,
            "watch_wall_s": wall,
        }


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.1, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what or 'a condition'}")
        time.sleep(interval)


def paced_schedule(rate: float, seconds: float, tick: float = 0.01) -> Iterable[tuple[float, int]]:
    """(offset in seconds, jobs to send then) for an arrival rate of `rate` jobs/s over `seconds`: one
    batch every `tick` seconds, the batch sizes adding up exactly to rate * seconds."""
    ticks = max(1, round(seconds / tick))
    sent = 0
    for index in range(1, ticks + 1):
        due = round(rate * tick * index)
        if due > sent:
            yield (index - 1) * tick, due - sent
            sent = due


# -- a worker-side recorder (Celery, Dramatiq: brokers without timestamps) ------------------------------


class FileRecorder:
    """Records, inside a worker process, each job's start and end (time.time(), the machine's clock) and its
    enqueue→start delay when the job carries its send time; writes a summary file every 0.2 s that the
    benchmark reads. Used where the broker keeps no timestamps (Redis)."""

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, f"worker-{os.getpid()}.json")
        self.count = 0
        self.first_start: float | None = None
        self.last_end: float | None = None
        self.delays: list[float] = []
        self._lock = threading.Lock()
        self._starts: dict[Any, float] = {}
        threading.Thread(target=self._flush_loop, daemon=True).start()

    def started(self, key: Any, sent_at: float | None) -> None:
        now = time.time()
        with self._lock:
            self._starts[key] = now
            if self.first_start is None or now < self.first_start:
                self.first_start = now
            if sent_at is not None:
                self.delays.append(now - sent_at)

    def finished(self, key: Any) -> None:
        now = time.time()
        with self._lock:
            self._starts.pop(key, None)
            self.count += 1
            if self.last_end is None or now > self.last_end:
                self.last_end = now

    def _flush_loop(self) -> None:
        while True:
            time.sleep(0.2)
            with self._lock:
                data = {
                    "count": self.count,
                    "first_start": self.first_start,
                    "last_end": self.last_end,
                    "delays": list(self.delays),
                }
            tmp = self.path + ".tmp"
            with open(tmp, "w") as out:
                json.dump(data, out)
            os.replace(tmp, self.path)


def read_recorders(directory: str) -> dict[str, Any]:
    """Merge the summary files of every worker process in `directory`."""
    count = 0
    first: float | None = None
    last: float | None = None
    delays: list[float] = []
    for name in os.listdir(directory):
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(directory, name)) as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            continue
        count += data["count"]
        if data["first_start"] is not None:
            first = data["first_start"] if first is None else min(first, data["first_start"])
        if data["last_end"] is not None:
            last = data["last_end"] if last is None else max(last, data["last_end"])
        delays.extend(data["delays"])
    return {"count": count, "first_start": first, "last_end": last, "delays": delays}


# -- the anchors' harness --------------------------------------------------------------------------------


class Harness:
    """Runs named measurements `runs` times each, keeping every sample (a failed run is kept as an error)
    and the worker processes an anchor script starts (`script --worker ...` with the same interpreter)."""

    system = "anchor"

    def __init__(self, runs: int, only: set[str] | None) -> None:
        self.runs = runs
        self.only = only
        self.results: Results = {}

    def wanted(self, name: str) -> bool:
        return not self.only or name in self.only

    async def measure(self, name: str, once: Callable[[], Any], runs: int | None = None) -> list[Sample]:
        if not self.wanted(name):
            return []
        samples: list[Sample] = []
        total = runs or self.runs
        for run in range(total):
            log(f"{self.system} {name} run {run + 1}/{total}")
            try:
                sample = await once()
            except Exception as exc:  # a failed run is reported; the others go on
                log(f"{self.system} {name} run {run + 1} failed: {exc!r}")
                sample = {"error": repr(exc)}
            log("  " + brief(sample))
            samples.append(sample)
        self.results[name] = samples
        return samples

    @staticmethod
    def start_script_workers(
        script: str, count: int, args: Sequence[str], env: dict[str, str] | None = None
    ) -> list[Any]:
        import subprocess

        command = [sys.executable, script, "--worker", *args]
        # The workers' own output goes to stderr: stdout carries only the result line.
        return [subprocess.Popen(command, env=env, stdout=sys.stderr) for _ in range(count)]

    @staticmethod
    def check_alive(processes: Sequence[Any]) -> None:
        """Raise when a worker process has exited (a benchmark would otherwise wait for it forever)."""
        for process in processes:
            code = process.poll()
            if code is not None:
                raise RuntimeError(f"worker process {process.pid} exited with code {code}")

    @staticmethod
    def stop_workers(processes: Sequence[Any], timeout: float = 30.0) -> None:
        import signal
        import subprocess

        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def brief(sample: Sample) -> str:
    keys = ("jobs_per_s", "p50_ms", "p99_ms", "peak_rss_mb", "worker_cpu_pct", "error")
    return ", ".join(
        f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in sample.items() if k in keys
    )


def sizes(quick: bool) -> dict[str, Any]:
    """The N of each measurement (the issue's; --quick: a smoke run)."""
    return {
        "enqueue_one": 300 if quick else 1000,
        "enqueue_bulk": 2000 if quick else 20_000,
        "drain": 2000 if quick else 10_000,
        "pickup_idle": 50 if quick else 200,
        "pickup_load_seconds": 2.0 if quick else 10.0,
    }


async def paced_send(
    send_one: Callable[[], Any] | None,
    send_many: Callable[[int], Any] | None,
    *,
    jobs: int,
    rate: float | None,
    seconds: float,
) -> tuple[int, float]:
    """Low load (rate None): `jobs` single jobs 20 ms apart. Under load: batches every 10 ms at `rate` jobs/s
    for `seconds`. Returns (jobs sent, achieved jobs/s). Sends are awaited when they return awaitables."""
    import asyncio
    import inspect

    t0 = time.perf_counter()
    sent = 0
    if rate is None:
        assert send_one is not None
        for i in range(jobs):
            delay = t0 + i * 0.020 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            result = send_one()
            if inspect.isawaitable(result):
                await result
            sent += 1
    else:
        assert send_many is not None
        for offset, count in paced_schedule(rate, seconds):
            delay = t0 + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            result = send_many(count)
            if inspect.isawaitable(result):
                await result
            sent += count
    return sent, sent / (time.perf_counter() - t0)
