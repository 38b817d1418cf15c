"""Real worker processes, load generators and measurements for the fault scenarios."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, LiteralString

import httpx
import psycopg

from jobkeeper import DEV_TENANT_ID, Client, JobkeeperError, Settings
from jobkeeper.api.auth import Role, mint_token
from tests.support import eventually

log = logging.getLogger(__name__)

Conn = psycopg.AsyncConnection[Any]
ROOT = Path(__file__).resolve().parents[2]
HANDLERS = "tests.fault.handlers"
MISBEHAVING = "tests.fault.misbehaving"

LEASE_SECONDS = 3.0
"""The worker lease in every scenario: a dead worker's jobs are rescued, and a dead leader replaced,
within a few seconds rather than the default 30."""
HEARTBEAT_SECONDS = 0.5

FAST_ENV = {
    "JOBKEEPER_LEASE_SECONDS": str(LEASE_SECONDS),
    "JOBKEEPER_HEARTBEAT_INTERVAL": str(HEARTBEAT_SECONDS),
    "JOBKEEPER_POLL_INTERVAL": "0.5",
    "JOBKEEPER_SHUTDOWN_TIMEOUT": "5",
    "JOBKEEPER_POOL_MIN": "1",
    "JOBKEEPER_POOL_MAX": "4",
    "JOBKEEPER_LOG_LEVEL": "INFO",
}


class ProducerSettings(Settings):
    """Settings of the test's own enqueuing client: its connections are named `fault-producer`, so that
    faults aimed at jobkeeper's connections (by application_name) hit the workers, not the load."""

    def connection_kwargs(self) -> dict[str, Any]:
        return {**super().connection_kwargs(), "application_name": "fault-producer"}


def producer_settings() -> Settings:
    return ProducerSettings.from_env({}, pool_min=1, pool_max=4, acquire_timeout=10.0)


class WorkerProcess:
    """`python -m jobkeeper worker --no-builtins --import …` in a child process, logging to a file."""

    def __init__(
        self, name: str, db_url: str, log_dir: Path, args: Sequence[str], env: Mapping[str, str]
    ) -> None:
        self.name = name
        self.db_url = db_url
        self.log_path = log_dir / f"{name}.log"
        self.args = list(args)
        self.env = dict(env)
        self.process: subprocess.Popen[bytes] | None = None
        self.worker_id: uuid.UUID | None = None

    def start(self) -> WorkerProcess:
        environ = {**os.environ, **FAST_ENV, **self.env, "DATABASE_URL": self.db_url, "PYTHONPATH": str(ROOT)}
        environ.pop("JOBKEEPER_TEST_DATABASE_URL", None)
        command = [sys.executable, "-m", "jobkeeper", "worker", "--no-builtins", *self.args]
        with self.log_path.open("ab") as log_file:
            log_file.write(f"--- {' '.join(command)}\n".encode())
            log_file.flush()
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=environ, stdout=log_file, stderr=subprocess.STDOUT
            )
        self.worker_id = None
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def registered(self, db: Conn, timeout: float = 30.0) -> uuid.UUID:
        """Wait until the worker registered itself; its id."""

        async def found() -> bool:
            assert self.alive, f"{self.name} exited with {self.returncode}:\n{self.log_tail()}"
            cur = await db.execute(
                "SELECT id FROM jobkeeper.workers WHERE pid = %s AND stopped_at IS NULL"
                " ORDER BY started_at DESC LIMIT 1",
                (self.pid,),
            )
            row = await cur.fetchone()
            if row is not None:
                self.worker_id = row[0]
            return row is not None

        await eventually(found, timeout=timeout, what=f"{self.name} to register")
        assert self.worker_id is not None
        return self.worker_id

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind."""
        if self.alive:
            self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the exit status."""
        assert self.process is not None
        if self.alive:
            self.signal(signal.SIGTERM)
        return await asyncio.to_thread(self.process.wait, timeout)

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def rss_mb(self) -> float:
        """Resident memory of the worker process (not its children), from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError(f"no VmRSS for {self.name}")

    def job_processes(self) -> list[str]:
        """Command lines of the worker's live children that run a job (process isolation), leaving out
        multiprocessing's resource tracker, which lives as long as the worker."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if int(fields[1]) == self.pid and fields[0] != "Z" and "resource_tracker" not in command:
                    found.append(f"{entry.name}: {command}")
        return found

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


class Fleet:
    """The scenario's worker processes; every one still running is killed at the end."""

    def __init__(self, db_url: str, log_dir: Path) -> None:
        self.db_url = db_url
        self.log_dir = log_dir
        self.workers: list[WorkerProcess] = []
        self._names = itertools.count(1)

    def start(
        self,
        *args: str,
        imports: Sequence[str] = (HANDLERS,),
        env: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> WorkerProcess:
        flags = [arg for module in imports for arg in ("--import", module)]
        worker = WorkerProcess(
            name or f"worker-{next(self._names)}", self.db_url, self.log_dir, [*flags, *args], env or {}
        )
        self.workers.append(worker.start())
        return worker

    async def start_many(
        self, db: Conn, count: int, *args: str, imports: Sequence[str] = (HANDLERS,), **kw: Any
    ) -> list[WorkerProcess]:
        started = [self.start(*args, imports=imports, **kw) for _ in range(count)]
        for worker in started:
            await worker.registered(db)
        return started

    def restart(self, worker: WorkerProcess) -> WorkerProcess:
        """A fresh process with the same arguments and log (a supervisor's restart)."""
        worker.kill()
        return worker.start()

    def kill_all(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):
                worker.kill()

    async def stop_all(self, timeout: float = 30.0) -> None:
        """SIGTERM every live worker at once and check that each exits cleanly."""
        live = [w for w in self.workers if w.alive]
        codes = await asyncio.gather(*(w.terminate(timeout) for w in live))
        for worker, code in zip(live, codes, strict=True):
            assert code == 0, f"{worker.name} exited with {code}:\n{worker.log_tail()}"

    def count_in_logs(self, text: str) -> int:
        """How many log lines of all the workers contain `text`."""
        return sum(line.count(text) for w in self.workers for line in w.log_text().splitlines())

    def logs(self) -> str:
        return "\n".join(f"=== {w.name}\n{w.log_tail(30)}" for w in self.workers)


class ApiProcess:
    """`python -m jobkeeper api` on a free loopback port in a child process, logging to a file, with a
    token of the development tenant (platform admin) signed with the test's secret."""

    SECRET = "fault-suite-jwt-secret-of-at-least-32-bytes"
    AUDIENCE = "jobkeeper-fault"
    ISSUER = "https://fault.test"

    def __init__(self, db_url: str, log_dir: Path) -> None:
        self.db_url = db_url
        self.log_path = log_dir / "api.log"
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "JOBKEEPER_JWT_SECRET": self.SECRET,
            "JOBKEEPER_JWT_AUDIENCE": self.AUDIENCE,
            "JOBKEEPER_JWT_ISSUER": self.ISSUER,
            "JOBKEEPER_API_ACQUIRE_TIMEOUT": "2",
        }
        settings = Settings.from_env(
            {}, jwt_secret=self.SECRET, jwt_audience=self.AUDIENCE, jwt_issuer=self.ISSUER
        )
        token = mint_token(
            settings, role=Role.ADMIN, tenant_id=DEV_TENANT_ID, subject="fault-suite", ttl_seconds=3600
        )
        self.headers = {"Authorization": f"Bearer {token}"}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ApiProcess:
        environ = {**os.environ, **FAST_ENV, **self.env, "DATABASE_URL": self.db_url, "PYTHONPATH": str(ROOT)}
        environ.pop("JOBKEEPER_TEST_DATABASE_URL", None)
        command = [sys.executable, "-m", "jobkeeper", "api", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=environ, stdout=log_file, stderr=subprocess.STDOUT
            )
        return self

    async def ready(self, timeout: float = 30.0) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as http:

            async def answers() -> bool:
                assert self.process is not None
                assert self.process.poll() is None, self.log_tail()
                with contextlib.suppress(httpx.TransportError):
                    return (await http.get("/health")).status_code == 200
                return False

            await eventually(answers, timeout=timeout, what="the API to answer")

    async def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.to_thread(self.process.wait, 30)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ApiProbe:
    """Adds a money job through the API every `every` seconds and records each answer (monotonic time,
    HTTP status, or 0 for no answer). An answer that was lost may still have enqueued its job: the same
    idempotency key is sent again until one is answered, so the job exists once either way."""

    api: ApiProcess
    every: float = 0.1
    answers: list[tuple[float, int]] = field(default_factory=list)
    acknowledged: list[uuid.UUID] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> ApiProbe:
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> list[uuid.UUID]:
        self._stop.set()
        if self._task is not None:
            await self._task
        return self.acknowledged

    async def _run(self) -> None:
        n = 0
        async with httpx.AsyncClient(
            base_url=self.api.base_url, headers=self.api.headers, timeout=10.0
        ) as http:
            while not self._stop.is_set():
                body = {"type": "fault-money", "data": {"op": f"api-{n}"}, "idempotency_key": f"pay:api-{n}"}
                try:
                    answer = await http.post("/api/v1/queue/jobs", json=body)
                except httpx.TransportError:
                    self.answers.append((time.monotonic(), 0))
                else:
                    self.answers.append((time.monotonic(), answer.status_code))
                    if answer.status_code in (200, 201):
                        self.acknowledged.append(uuid.UUID(answer.json()["id"]))
                        n += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.every)

    def first_success_after(self, since: float) -> float | None:
        """Seconds from `since` (monotonic) to the first 2xx answered after it."""
        for at, status in self.answers:
            if at >= since and status in (200, 201):
                return at - since
        return None

    def statuses_since(self, since: float) -> dict[int, int]:
        counts: dict[int, int] = {}
        for at, status in self.answers:
            if at >= since:
                counts[status] = counts.get(status, 0) + 1
        return counts


# -- load ----------------------------------------------------------------------------------------------

JobSpec = dict[str, Any]
Summary = Callable[[str], None]
"""The `summary` fixture: prints a scenario's summary line and repeats it at the end of the run."""


@dataclass
class Producer:
    """Enqueues jobs from a background task: `rate` jobs per second, or enough to keep `backlog` jobs
    pending. A batch that fails (database down) is retried with the same idempotency keys, so an enqueue
    that committed but whose answer was lost is not duplicated."""

    client: Client
    make: Callable[[int], JobSpec]
    rate: float | None = None
    backlog: int | None = None
    tick: float = 0.1
    max_batch: int = 500
    db_url: str | None = None
    acknowledged: list[uuid.UUID] = field(default_factory=list)
    failures: int = 0
    _counter: Iterator[int] = field(default_factory=itertools.count)
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> Producer:
        assert (self.rate is None) != (self.backlog is None), "give a rate or a backlog"
        assert self.backlog is None or self.db_url is not None, "a backlog needs db_url to count"
        self._task = asyncio.create_task(self._run())
        return self

    async def stop(self) -> list[uuid.UUID]:
        self._stop.set()
        if self._task is not None:
            await self._task
        return self.acknowledged

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        sent = 0
        pending: list[JobSpec] = []
        while not self._stop.is_set():
            if not pending:
                want = await self._wanted(loop.time() - started, sent)
                pending = [self.make(next(self._counter)) for _ in range(min(want, self.max_batch))]
            if pending:
                try:
                    jobs = await self.client.enqueue_many(pending)
                except (JobkeeperError, psycopg.Error) as exc:
                    self.failures += 1
                    log.info("enqueue failed (%s); retrying the same batch", exc)
                else:
                    self.acknowledged.extend(job.id for job in jobs)
                    sent += len(pending)
                    pending = []
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.tick)

    async def _wanted(self, elapsed: float, sent: int) -> int:
        if self.rate is not None:
            return max(0, math.floor(elapsed * self.rate) - sent)
        assert self.backlog is not None
        assert self.db_url is not None
        try:
            async with await psycopg.AsyncConnection.connect(self.db_url, autocommit=True) as conn:
                cur = await conn.execute("SELECT count(*) FROM jobkeeper.jobs WHERE status = 'pending'")
                row = await cur.fetchone()
        except psycopg.OperationalError:
            return 0
        assert row is not None
        return max(0, self.backlog - int(row[0]))


def job(kind: str, op: str, *, max_attempts: int | None = None, **payload: Any) -> JobSpec:
    """A job of `tests.fault.handlers` (kind: money, comms or background) for operation `op`. Money jobs
    carry an explicit idempotency key; the others get the default one (a hash of type and payload)."""
    spec: JobSpec = {"type": f"fault-{kind}", "payload": {"op": op, **payload}}
    if kind == "money":
        spec["idempotency_key"] = f"pay:{op}"
    if max_attempts is not None:
        spec["max_attempts"] = max_attempts
    return spec


# -- measurements --------------------------------------------------------------------------------------


async def connect(url: str) -> Conn:
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def db_now(db: Conn) -> datetime:
    cur = await db.execute("SELECT now()")
    row = await cur.fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


async def scalar(db: Conn, sql: LiteralString, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
    cur = await db.execute(sql, params)
    row = await cur.fetchone()
    assert row is not None
    return row[0]


async def count_status(db: Conn, *statuses: str) -> int:
    return int(
        await scalar(db, "SELECT count(*) FROM jobkeeper.jobs WHERE status = ANY(%s)", (list(statuses),))
    )


async def wait_until_finished(
    db: Conn, ids: Sequence[uuid.UUID], *, timeout: float, fleet: Fleet | None = None
) -> float:
    """Wait until none of `ids` is pending or processing; seconds waited."""
    started = time.monotonic()

    async def finished() -> bool:
        left = await scalar(
            db,
            "SELECT count(*) FROM jobkeeper.jobs WHERE id = ANY(%s) AND status IN ('pending', 'processing')",
            (list(ids),),
        )
        return int(left) == 0

    try:
        await eventually(finished, timeout=timeout, what=f"{len(ids)} jobs to finish")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{fleet.logs() if fleet else ''}") from None
    return time.monotonic() - started


async def completions_per_second(db: Conn, since: datetime, until: datetime) -> list[int]:
    """Jobs completed in each whole second from `since` to `until` (database clock)."""
    cur = await db.execute(
        "SELECT floor(extract(epoch FROM completed_at - %(since)s))::int AS second, count(*)"
        " FROM jobkeeper.jobs"
        " WHERE status = 'completed' AND completed_at >= %(since)s AND completed_at < %(until)s"
        " GROUP BY 1",
        {"since": since, "until": until},
    )
    buckets = dict(await cur.fetchall())
    seconds = max(0, math.floor((until - since).total_seconds()))
    return [int(buckets.get(s, 0)) for s in range(seconds)]


async def rate(db: Conn, since: datetime, until: datetime) -> float:
    """Completions per second between two instants."""
    done = await scalar(
        db,
        "SELECT count(*) FROM jobkeeper.jobs WHERE status = 'completed'"
        " AND completed_at >= %s AND completed_at < %s",
        (since, until),
    )
    return int(done) / max((until - since).total_seconds(), 1e-9)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[rank]


async def terminate_backends(db: Conn, pattern: str = "jobkeeper%") -> int:
    """pg_terminate_backend on every connection of this database whose application_name matches."""
    cur = await db.execute(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE %s",
        (pattern,),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def pause(seconds: float) -> None:
    """Let the load run for a fixed time: the scenario's duration, not a wait for a condition."""
    await asyncio.sleep(seconds)


async def recovery_time(
    url: str,
    since: datetime,
    baseline: float,
    *,
    fraction: float = 0.9,
    window: float = 1.0,
    timeout: float = 30.0,
) -> float:
    """Seconds from `since` to the end of the first `window` after it in which jobs completed at no less
    than `fraction` of `baseline` per second (database clock). Fails after `timeout` seconds."""
    need = fraction * baseline * window
    deadline = time.monotonic() + timeout + window
    while True:
        with contextlib.suppress(psycopg.OperationalError):
            async with await connect(url) as db:
                now = await db_now(db)
                cur = await db.execute(
                    "SELECT completed_at FROM jobkeeper.jobs"
                    " WHERE status = 'completed' AND completed_at >= %s",
                    (since,),
                )
                done = sorted((row[0] - since).total_seconds() for row in await cur.fetchall())
            horizon = (now - since).total_seconds()
            start, low = 0.0, 0
            while start + window <= horizon:
                while low < len(done) and done[low] < start:
                    low += 1
                high = low
                while high < len(done) and done[high] < start + window:
                    high += 1
                if high - low >= need:
                    return start + window
                start += 0.1
        if time.monotonic() > deadline:
            raise AssertionError(
                f"throughput did not return to {fraction:.0%} of {baseline:.1f}/s within {timeout:g} s"
            )
        await asyncio.sleep(0.5)
