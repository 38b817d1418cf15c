"""The processors under a real Worker: results stored, permanent failures dead-lettered after one attempt,
retryable ones put back, analytics jobs claimed together sent in one request, problems found at start."""

from __future__ import annotations

from typing import Any

import psycopg

from jobkeeper import Client
from jobkeeper.processors import configuration_problems, register_builtins
from jobkeeper.processors.analytics import processor as analytics
from jobkeeper.processors.email import processor as email
from jobkeeper.processors.sms import processor as sms
from jobkeeper.worker import JobContext, Registry
from tests.payloads import unique
from tests.processors.conftest import WorkerFactory
from tests.processors.helpers import settings
from tests.processors.servers import http_server, smtp_server
from tests.worker.helpers import dead_letter, wait_for_all, wait_for_row, wait_for_status

Conn = psycopg.AsyncConnection[Any]
SID = "AC" + "0123456789abcdef" * 2


async def test_send_email_end_to_end(client: Client, db: Conn, make_worker: WorkerFactory) -> None:
    registry = Registry()
    with smtp_server() as server:
        current = settings(
            email_transport="smtp",
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_security="none",
            email_from="tickets@jk.example.com",
        )
        email.register(registry, current)
        data = {"customer_name": "Ann", "order_id": "o-1", "amount": "$10.00"}
        job = await client.enqueue(
            "send-email", {"to": "ann@example.com", "template": "refund", "data": data}
        )
        async with make_worker(registry):
            row = await wait_for_status(db, job.id, "completed")
    (delivery,) = server.deliveries
    assert delivery.message["Subject"] == "Your refund for order o-1"
    assert row["result"]["transport"] == "smtp"
    assert row["result"]["to"] == ["ann@example.com"]
    assert row["attempts"] == 1


async def test_permanent_and_retryable_failures_under_a_worker(
    client: Client, db: Conn, make_worker: WorkerFactory
) -> None:
    def respond(request: Any) -> Any:
        to = request.form()["To"]
        if to == "+14155550100":
            return 400, {"code": 21211, "message": "The 'To' number is not a valid phone number."}
        return 503, "maintenance"

    registry = Registry()
    unconfigured = Registry()
    with http_server(respond) as http:
        sms.register(
            registry,
            settings(
                twilio_account_sid=SID,
                twilio_auth_token="t",
                twilio_from="+14155550199",
                twilio_api_base=http.url,
            ),
        )
        refused = await client.enqueue("send-sms", {"to": "+14155550100", "body": "x"})
        busy = await client.enqueue("send-sms", {"to": "+14155550101", "body": "x"})
        async with make_worker(registry):
            failed = await wait_for_status(db, refused.id, "failed")
            retried = await wait_for_row(
                db,
                busy.id,
                lambda row: row["status"] == "pending" and row["errors"],
                what="a retry of the busy job",
            )
    assert failed["attempts"] == 1  # permanent: no retry
    assert "21211" in failed["last_error"]
    assert failed["errors"][0]["type"] == "ProviderRejectedError"
    assert await dead_letter(db, refused.id) is not None
    assert retried["attempts"] == 1
    assert retried["errors"][0]["type"] == "ProviderError"
    assert "HTTP 503" in retried["errors"][0]["message"]

    # A provider that is not configured fails its job permanently, naming the setting.
    sms.register(unconfigured, settings())
    lonely = await client.enqueue("send-sms", {"to": "+14155550102", "body": "x"})
    async with make_worker(unconfigured, queues=["communication"]):
        row = await wait_for_status(db, lonely.id, "failed")
    assert row["attempts"] == 1
    assert row["errors"][-1]["type"] == "NotConfiguredError"
    assert "JOBKEEPER_TWILIO_ACCOUNT_SID" in row["last_error"]


async def test_analytics_jobs_claimed_together_go_out_in_one_request(
    client: Client, db: Conn, make_worker: WorkerFactory
) -> None:
    registry = Registry()
    count = 8
    with http_server(lambda request: (200, {"success": True})) as http:
        current = settings(
            segment_write_key="wk",
            segment_api_base=http.url,
            analytics_batch_size=count,
            analytics_batch_wait=5.0,  # the batch is sent because it is full, not by the timer
        )
        analytics.register(registry, current)
        jobs = await client.enqueue_many(
            [{"type": "analytics-track", "payload": unique("analytics-track", n)} for n in range(count)]
        )
        async with make_worker(registry, batch_size=count):
            await wait_for_all(db, [job.id for job in jobs], "completed")
    (request,) = http.requests
    assert sorted(item["userId"] for item in request.json()["batch"]) == sorted(f"u{n}" for n in range(count))
    cur = await db.execute(
        "SELECT DISTINCT result->>'batch_size' FROM jobkeeper.jobs WHERE type = 'analytics-track'"
    )
    assert await cur.fetchall() == [(str(count),)]


async def test_builtins_register_unless_replaced_and_report_their_problems(db_url: str) -> None:
    registry = Registry()

    @registry.task("send-email", queue="communication")
    async def my_email(payload: Any, ctx: JobContext) -> str:
        return "mine"

    register_builtins(registry, settings(database_url=db_url))
    assert registry["send-email"].handler is my_email
    assert {"send-sms", "send-push", "analytics-track", "cleanup-old-data", "generate-report"} <= set(
        registry.names
    )
    problems = configuration_problems(registry, settings(database_url=db_url))
    assert "send-email" not in problems  # yours: not checked
    assert "JOBKEEPER_TWILIO_ACCOUNT_SID is not set" in problems["send-sms"]
    assert "JOBKEEPER_PUSH_TRANSPORT" in problems["send-push"][0]
    assert "cleanup-old-data" not in problems
    assert "generate-report" not in problems
