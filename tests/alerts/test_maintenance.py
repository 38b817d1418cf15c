from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from jobkeeper import Client
from jobkeeper.maintenance.alerts import (
    Alert,
    AlertChecker,
    AlertConfig,
    Channel,
    check,
    deliver_alerts,
    evaluate,
)
from jobkeeper.maintenance.channels import EmailChannel, PagerDutyChannel, SmsChannel, WebhookChannel
from jobkeeper.maintenance.rescuer import rescue_stale_jobs
from jobkeeper.providers.pagerduty import PagerDutyConfig
from jobkeeper.providers.smtp import SmtpConfig
from jobkeeper.providers.twilio import TwilioConfig
from tests.maintenance.conftest import pool as pool
from tests.payloads import VALID, unique
from tests.receivers import Request, http_recorder, smtp_recorder


def _stats(queue: str = "money", tier: str = "durable", **values: Any) -> dict[str, Any]:
    row = {
        "queue": queue,
        "tier": tier,
        "paused": False,
        "depth": 0,
        "oldest_seconds": None,
        "completed": 0,
        "failed": 0,
        "live_workers": 1,
    }
    return row | values


def test_seed_thresholds() -> None:
    config = AlertConfig()
    assert evaluate([_stats(depth=50)], config) == []
    (deep,) = evaluate([_stats(depth=51)], config)
    assert (deep.rule, deep.severity, deep.queue) == ("queue_depth", "critical", "money")
    (old,) = evaluate([_stats(depth=1, oldest_seconds=601)], config)
    assert old.rule == "queue_age"
    assert evaluate([_stats("communication", "fast", depth=5000)], config) == []
    assert evaluate([_stats("communication", "fast", depth=5001)], config)[0].severity == "warning"
    assert evaluate([_stats("background", "ephemeral", depth=50_001)], config)[0].rule == "queue_depth"


def test_failure_rate_needs_a_sample_and_workers_are_missed_only_when_work_waits() -> None:
    config = AlertConfig()
    assert evaluate([_stats(completed=5, failed=5)], config) == []  # below the minimum sample
    (rate,) = evaluate([_stats(completed=17, failed=3)], config)  # 15 % of 20
    assert rate.rule == "failure_rate"
    assert evaluate([_stats(completed=18, failed=2)], config) == []  # exactly 10 % is not above
    (idle,) = evaluate([_stats(depth=3, live_workers=0)], config)
    assert idle.rule == "no_workers"
    assert evaluate([_stats(depth=0, live_workers=0)], config) == []
    assert evaluate([_stats(depth=3, live_workers=0, paused=True)], config) == []


async def _db_now(pool: AsyncConnectionPool[Any]) -> datetime:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT now()")).fetchone()
        assert row is not None
        value: datetime = row[0]
        return value


async def test_an_alert_fires_once_then_respects_its_cooldown(
    client: Client, pool: AsyncConnectionPool[Any]
) -> None:
    await client.enqueue_many(
        [{"type": "payment-process", "payload": unique("payment-process", n)} for n in range(51)]
    )
    async with pool.connection() as conn:  # a live worker, so only the depth rule applies
        await conn.execute(
            "INSERT INTO jobkeeper.workers (hostname, pid, concurrency, job_types, heartbeat_at)"
            " VALUES ('w', 1, 1, '{payment-process}', now() + interval '1 hour')"
        )
    now = await _db_now(pool)
    (first,) = await check(pool, now=now)
    assert (first.rule, first.queue, first.severity) == ("queue_depth", "money", "critical")
    assert first.details == {"depth": 51, "limit": 50}
    assert await check(pool, now=now + timedelta(minutes=5)) == []  # cooldown: 15 minutes
    again = await check(pool, now=now + timedelta(minutes=16))
    # Past the cooldown the depth alert repeats; by now the jobs are also older than money's 10 minutes.
    assert sorted(a.rule for a in again) == ["queue_age", "queue_depth"]


async def test_dead_money_jobs_alert_at_once_and_each_new_batch_alerts(
    client: Client, pool: AsyncConnectionPool[Any]
) -> None:
    async def dead_letter(n: int) -> None:
        jobs = await client.enqueue_many(
            [
                {
                    "type": "payment-process",
                    "payload": VALID["payment-process"] | {"orderId": uuid.uuid4().hex},
                }
                for _ in range(n)
            ]
        )
        async with pool.connection() as conn:
            await conn.execute(
                "UPDATE jobkeeper.jobs SET status = 'processing', attempts = max_attempts,"
                " heartbeat_at = now(), worker_id = gen_random_uuid() WHERE id = ANY(%s)",
                ([j.id for j in jobs],),
            )
        await rescue_stale_jobs(pool, lease_seconds=0.0, now=await _db_now(pool) + timedelta(seconds=1))

    await dead_letter(2)
    (alert,) = [a for a in await check(pool) if a.rule == "money_dead_letter"]
    assert alert.severity == "critical"
    assert alert.details["dead"] == 2
    assert [a for a in await check(pool) if a.rule == "money_dead_letter"] == []
    await dead_letter(1)
    (again,) = [a for a in await check(pool) if a.rule == "money_dead_letter"]
    assert again.details["dead"] == 1


def _alert() -> Alert:
    return Alert(
        uuid.uuid4(),
        "queue_depth",
        "money",
        "critical",
        "money: 51 jobs waiting (limit 50)",
        {"depth": 51},
        datetime(2030, 1, 1, tzinfo=UTC),
    )


async def _stored_alert(pool: AsyncConnectionPool[Any]) -> Alert:
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            "INSERT INTO jobkeeper.alert_history (rule, queue, severity, message, details)"
            " VALUES ('queue_depth', 'money', 'critical', 'money: 51 jobs waiting', '{\"depth\": 51}')"
            " RETURNING id, rule, queue, severity, message, details, created_at"
        )
        row = await cur.fetchone()
        assert row is not None
        return Alert(**row)


async def _deliveries(pool: AsyncConnectionPool[Any], alert: Alert) -> list[dict[str, Any]]:
    async with pool.connection() as conn:
        row = await (
            await conn.execute("SELECT deliveries FROM jobkeeper.alert_history WHERE id = %s", (alert.id,))
        ).fetchone()
        assert row is not None
        deliveries: list[dict[str, Any]] = row[0]
        return deliveries


async def test_each_channel_delivers_to_a_local_receiver(pool: AsyncConnectionPool[Any]) -> None:
    alert = await _stored_alert(pool)

    def provider(request: Request) -> tuple[int, dict[str, Any] | str]:
        if request.path.endswith("/Messages.json"):
            return 201, {"sid": "SM123", "status": "queued"}
        if request.path == "/v2/enqueue":
            return 202, {"status": "success", "dedup_key": request.json()["dedup_key"]}
        return 200, "ok"

    with http_recorder(provider) as http, smtp_recorder() as mail:
        channels: list[Channel] = [
            WebhookChannel(f"{http.url}/hooks/T000/B000/XXX"),
            SmsChannel(
                TwilioConfig("AC123", "secret-token", "+15550000000", base_url=http.url), ("+15551112222",)
            ),
            PagerDutyChannel(PagerDutyConfig("routing-key-1", base_url=http.url)),
            EmailChannel(
                SmtpConfig("127.0.0.1", mail.port, security="none", from_address="ops@jk.test"),
                ("oncall@jk.test",),
            ),
        ]
        assert await deliver_alerts(pool, [alert], channels) == 0

    slack, sms, pager = http.requests
    assert slack.path == "/hooks/T000/B000/XXX"
    assert "money: 51 jobs waiting" in slack.json()["text"]
    assert slack.json()["blocks"][0]["type"] == "header"
    assert sms.path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert sms.headers["authorization"] == "Basic " + base64.b64encode(b"AC123:secret-token").decode()
    assert sms.form()["To"] == "+15551112222"
    assert sms.form()["From"] == "+15550000000"
    assert "queue_depth" in sms.form()["Body"]
    event = pager.json()
    assert (event["routing_key"], event["event_action"], event["dedup_key"]) == (
        "routing-key-1",
        "trigger",
        "jobkeeper:queue_depth:money",
    )
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["custom_details"]["alert_id"] == str(alert.id)
    (message,) = mail.messages
    assert message["Subject"] == "[CRITICAL] jobkeeper queue_depth on money"
    assert mail.envelopes == [("ops@jk.test", ["oncall@jk.test"])]
    assert [(d["channel"], d["ok"]) for d in await _deliveries(pool, alert)] == [
        ("webhook", True),
        ("sms", True),
        ("pagerduty", True),
        ("email", True),
    ]


async def test_a_failing_channel_is_retried_recorded_and_never_raises(pool: AsyncConnectionPool[Any]) -> None:
    alert = await _stored_alert(pool)
    answers = iter([(500, "down"), (503, "down"), (200, "ok")])
    with http_recorder(lambda request: next(answers)) as flaky:
        assert await deliver_alerts(pool, [alert], [WebhookChannel(flaky.url)], backoff=0.01) == 0
        assert len(flaky.requests) == 3
    with http_recorder(lambda request: (500, "down")) as broken:
        failures = await deliver_alerts(pool, [alert], [WebhookChannel(broken.url)], attempts=2, backoff=0.01)
    assert failures == 1
    last = (await _deliveries(pool, alert))[-1]
    assert last["ok"] is False
    assert "HTTP 500" in last["error"]


class Hanging:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.sent = 0
        self.name = "hanging"

    async def send(self, alert: Alert) -> None:
        await self.release.wait()
        self.sent += 1


async def test_a_slow_channel_never_holds_the_check(client: Client, pool: AsyncConnectionPool[Any]) -> None:
    await client.enqueue_many(
        [{"type": "payment-process", "payload": unique("payment-process", n)} for n in range(60)]
    )
    channel = Hanging()
    checker = AlertChecker([channel])
    await asyncio.wait_for(checker.run(pool), timeout=5)  # returns although the channel has not answered
    assert channel.sent == 0
    channel.release.set()
    await asyncio.wait_for(checker.drain(), timeout=5)
    assert channel.sent >= 1


async def test_jobs_no_live_worker_can_run_are_reported(
    client: Client, pool: AsyncConnectionPool[Any]
) -> None:
    await client.declare_type("resize-image", queue="background")
    await client.enqueue_many(
        [{"type": "resize-image", "queue": "background", "payload": {"n": n}} for n in range(3)]
    )
    await client.enqueue("send-email", VALID["send-email"])
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO jobkeeper.workers (hostname, pid, concurrency, job_types, heartbeat_at)"
            " VALUES ('w', 1, 1, '{send-email,analytics-track}', now() + interval '1 hour')"
        )
    found = [a for a in await check(pool) if a.rule == "no_handler"]
    assert [(a.queue, a.details) for a in found] == [
        ("background", {"types": [{"type": "resize-image", "waiting": 3}]})
    ]
