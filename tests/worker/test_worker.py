"""The worker end to end: handlers run, results and progress are stored, registration, wake-ups."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from typing import Any

import psycopg
import pytest

from jobkeeper import Client, ConfigError, JobContext
from jobkeeper.lifecycle import Service
from jobkeeper.worker import Registry
from tests.payloads import VALID, unique
from tests.support import eventually
from tests.worker.conftest import WorkerFactory
from tests.worker.helpers import job_row, wait_for_all, wait_for_status

Conn = psycopg.AsyncConnection[Any]


async def test_async_and_sync_handlers_run_and_their_results_are_stored(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    seen: list[tuple[str, int, str]] = []

    @registry.task("send-email")
    async def send_email(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        seen.append(("async", ctx.attempt, ctx.job.type))
        return {"sent_to": payload["to"]}

    @registry.task("generate-report")
    def generate_report(payload: dict[str, Any], ctx: JobContext) -> list[int]:
        assert threading.current_thread() is not threading.main_thread()
        seen.append(("sync", ctx.attempt, ctx.job.type))
        return [1, 2, 3]

    email = await client.enqueue("send-email", {"to": "a@example.com", "template": "receipt"})
    report = await client.enqueue("generate-report", {})
    async with make_worker():
        email_row = await wait_for_status(db, email.id, "completed")
        report_row = await wait_for_status(db, report.id, "completed")
    assert email_row["result"] == {"sent_to": "a@example.com"}
    assert report_row["result"] == [1, 2, 3]
    assert email_row["attempts"] == 1
    assert email_row["completed_at"] is not None
    assert email_row["worker_id"] is None
    assert sorted(seen) == [("async", 1, "send-email"), ("sync", 1, "generate-report")]


async def test_a_result_is_stored_on_the_idempotency_key(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    @registry.task("payment-process")
    async def pay(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return {"charge": "ch_1", "amount": payload["amount"]}

    payment = VALID["payment-process"] | {"amount": 100}
    job = await client.enqueue("payment-process", payment, idempotency_key="order-1")
    async with make_worker():
        await wait_for_status(db, job.id, "completed")
    cur = await db.execute(
        "SELECT result, processed_at FROM jobkeeper.idempotency_keys WHERE key = 'order-1' AND job_id = %s",
        (job.id,),
    )
    row = await cur.fetchone()
    assert row is not None
    assert row[0] == {"charge": "ch_1", "amount": 100}
    assert row[1] is not None
    again = await client.enqueue("payment-process", payment, idempotency_key="order-1")
    assert again.deduplicated
    assert again.result == {"charge": "ch_1", "amount": 100}


async def test_progress_is_stored_while_the_job_runs(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    release = asyncio.Event()

    @registry.task("generate-report")
    async def report(payload: dict[str, Any], ctx: JobContext) -> None:
        await ctx.progress(1, 4, "first quarter")
        await release.wait()

    job = await client.enqueue("generate-report")
    async with make_worker():

        async def has_progress() -> bool:
            return (await job_row(db, job.id))["progress"] is not None

        await eventually(has_progress, what="progress")
        row = await job_row(db, job.id)
        assert row["progress"] == {"current": 1, "total": 4, "percent": 25.0, "note": "first quarter"}
        assert row["status"] == "processing"
        release.set()
        await wait_for_status(db, job.id, "completed")


async def test_the_context_logger_names_the_job(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    @registry.task("send-push")
    async def push(payload: dict[str, Any], ctx: JobContext) -> None:
        ctx.logger.warning("pushing")

    job = await client.enqueue("send-push", VALID["send-push"])
    with caplog.at_level(logging.WARNING, logger="jobkeeper.job"):
        async with make_worker():
            await wait_for_status(db, job.id, "completed")
    (record,) = [r for r in caplog.records if "pushing" in r.getMessage()]
    assert str(job.id) in record.getMessage()
    assert record.__dict__["job_id"] == str(job.id)
    assert record.__dict__["queue"] == "communication"
    assert record.__dict__["job_type"] == "send-push"
    assert record.__dict__["attempt"] == 1
    assert record.__dict__["tenant_id"] == str(job.tenant_id)


async def test_the_worker_registers_itself_and_its_job_types(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    @registry.task("my-report", queue="background", max_attempts=4, timeout=12.5, priority=9)
    def my_report(payload: dict[str, Any], ctx: JobContext) -> None:
        return None

    worker = make_worker(concurrency=3, queues=["background"])
    await worker.start()
    cur = await db.execute(
        "SELECT hostname, pid, queues, job_types, concurrency, stopped_at"
        " FROM jobkeeper.workers WHERE id = %s",
        (worker.id,),
    )
    row = await cur.fetchone()
    assert row is not None
    assert row[1] > 0
    assert row[2] == ["background"]
    assert row[3] == ["my-report"]
    assert row[4] == 3
    assert row[5] is None
    cur = await db.execute(
        "SELECT queue, max_attempts, timeout_seconds, priority"
        " FROM jobkeeper.job_types WHERE name = 'my-report'"
    )
    assert await cur.fetchone() == ("background", 4, 12.5, 9)
    # Enqueue now uses the task's options as the type's defaults.
    job = await client.enqueue("my-report")
    assert (job.queue, job.max_attempts, job.priority) == ("background", 4, 9)
    await wait_for_status(db, job.id, "completed")
    await worker.stop()
    await worker.stop()  # idempotent
    cur = await db.execute("SELECT stopped_at FROM jobkeeper.workers WHERE id = %s", (worker.id,))
    stopped = await cur.fetchone()
    assert stopped is not None
    assert stopped[0] is not None


async def test_a_handler_in_an_unknown_queue_is_a_config_error(
    registry: Registry, make_worker: WorkerFactory
) -> None:
    @registry.task("x", queue="comunication")
    async def x(payload: Any, ctx: JobContext) -> None:
        return None

    with pytest.raises(ConfigError, match="did you mean 'communication'"):
        await make_worker().start()


async def test_priorities_decide_the_order_jobs_start_in(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    started: list[int] = []

    @registry.task("send-email")
    async def send(payload: dict[str, Any], ctx: JobContext) -> None:
        started.append(ctx.job.priority)

    jobs = await client.enqueue_many(
        [
            {"type": "send-email", "priority": p, "payload": unique("send-email", n)}
            for n, p in enumerate([3, 9, 1, 5, 10, 5])
        ]
    )
    async with make_worker(concurrency=1, batch_size=1):
        await wait_for_all(db, [j.id for j in jobs], "completed")
    assert started == [10, 9, 5, 5, 3, 1]


async def test_a_notification_wakes_an_idle_worker_at_once(
    client: Client, db: Conn, db_url: str, registry: Registry, make_worker: WorkerFactory
) -> None:
    @registry.task("send-sms")
    async def sms(payload: dict[str, Any], ctx: JobContext) -> None:
        return None

    worker = make_worker(poll_interval=30.0)
    async with worker:
        await eventually(_listening(worker), what="LISTEN")
        job = await client.enqueue("send-sms", VALID["send-sms"])
        await db.execute("SELECT pg_notify('jobkeeper_jobs', 'communication')")
        await wait_for_status(db, job.id, "completed", timeout=3.0)
        # The LISTEN connection dies: the worker listens again on a new one and is woken as before.
        first = worker.notifier.connection.backend_pid
        await db.execute("SELECT pg_terminate_backend(%s)", (first,))

        async def reconnected() -> bool:
            pid = worker.notifier.connection.backend_pid
            return worker.notifier.listening and pid is not None and pid != first

        await eventually(reconnected, what="LISTEN on a new connection")
        job = await client.enqueue("send-sms", VALID["send-sms"])
        await db.execute("SELECT pg_notify('jobkeeper_jobs', 'communication')")
        await wait_for_status(db, job.id, "completed", timeout=3.0)


def _listening(worker: Any) -> Any:
    async def check() -> bool:
        return bool(worker.notifier.listening)

    return check


async def test_many_jobs_complete_exactly_once(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory
) -> None:
    runs: dict[uuid.UUID, int] = {}

    @registry.task("analytics-track")
    async def track(payload: dict[str, Any], ctx: JobContext) -> int:
        runs[ctx.job.id] = runs.get(ctx.job.id, 0) + 1
        return int(payload["properties"]["n"])

    jobs = await client.enqueue_many(
        [
            {"type": "analytics-track", "payload": unique("analytics-track", n) | {"properties": {"n": n}}}
            for n in range(500)
        ]
    )
    async with make_worker(concurrency=20, batch_size=10):
        await wait_for_all(db, [j.id for j in jobs], "completed")
    assert len(runs) == 500
    assert set(runs.values()) == {1}


@pytest.mark.parametrize("claims_in_flight", [1, 3])
async def test_claims_in_flight_never_run_more_jobs_than_the_concurrency(
    client: Client, db: Conn, registry: Registry, make_worker: WorkerFactory, claims_in_flight: int
) -> None:
    running = 0
    most = 0
    runs: dict[uuid.UUID, int] = {}

    @registry.task("analytics-track")
    async def track(payload: dict[str, Any], ctx: JobContext) -> None:
        nonlocal running, most
        runs[ctx.job.id] = runs.get(ctx.job.id, 0) + 1
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.002)  # stay running while the other claims return
        running -= 1

    jobs = await client.enqueue_many(
        [{"type": "analytics-track", "payload": unique("analytics-track", n)} for n in range(300)]
    )
    worker = make_worker(concurrency=4, batch_size=4, claims_in_flight=claims_in_flight)
    async with worker:
        await wait_for_all(db, [j.id for j in jobs], "completed")
    assert len(worker.claimer.connections) == claims_in_flight
    assert most <= 4
    assert most == 4  # the slots were used, not left idle by the reservations
    assert len(runs) == 300
    assert set(runs.values()) == {1}
    assert worker.slots.used == 0


async def test_extra_services_run_with_the_worker(registry: Registry, make_worker: WorkerFactory) -> None:
    events: list[str] = []

    class Probe(Service):
        name = "probe"

        def __init__(self, worker_id: uuid.UUID) -> None:
            super().__init__()
            self.worker_id = worker_id

        async def run(self) -> None:
            events.append("started")
            await self.stopping.wait()
            events.append("stopped")

    @registry.task("send-sms")
    async def sms(payload: Any, ctx: JobContext) -> None:
        return None

    probes: list[Probe] = []

    def factory(pool: Any, worker_id: uuid.UUID) -> Probe:
        probes.append(Probe(worker_id))
        return probes[-1]

    worker = make_worker(services=[factory])
    async with worker:
        await eventually(_started(events), what="the service to start")
        assert probes[0].worker_id == worker.id
    assert events == ["started", "stopped"]


def _started(events: list[str]) -> Any:
    async def check() -> bool:
        return bool(events)

    return check
