"""The async client against a real PostgreSQL: enqueue, bulk enqueue, transactions, idempotency."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from jobkeeper import (
    DEV_TENANT_ID,
    Client,
    DatabaseUnavailableError,
    InvalidJobError,
    JobStatus,
    Settings,
    Tier,
    UnknownQueueError,
    UnknownTenantError,
)
from jobkeeper.errors import InvalidPayloadError
from tests.payloads import PHONE, VALID, unique
from tests.support import eventually


async def _count(url: str, where: str = "true") -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(f"SELECT count(*) FROM jobkeeper.jobs WHERE {where}")
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


async def test_enqueue_applies_the_queue_policy_of_a_registered_type(client: Client) -> None:
    job = await client.enqueue("payment-process", VALID["payment-process"])
    assert job.queue == "money"
    assert job.tier is Tier.DURABLE
    assert job.priority == 7
    assert job.max_attempts == 10
    assert job.status is JobStatus.PENDING
    assert job.attempts == 0
    assert job.tenant_id == DEV_TENANT_ID
    assert job.payload == VALID["payment-process"]
    assert job.scheduled_at == job.created_at
    assert not job.deduplicated
    assert await client.get_job(job.id) == job
    assert await client.get_job(str(job.id)) == job


async def test_get_job_of_an_unknown_id_is_none(client: Client) -> None:
    assert await client.get_job(uuid.uuid4()) is None
    with pytest.raises(InvalidJobError, match="must be a job id"):
        await client.get_job("42")


async def test_each_tier_lands_in_its_partition(client: Client, db_url: str) -> None:
    money = await client.enqueue("payment-process", VALID["payment-process"])
    email = await client.enqueue("send-email", VALID["send-email"])
    report = await client.enqueue("generate-report", VALID["generate-report"])
    assert (money.tier, email.tier, report.tier) == (Tier.DURABLE, Tier.FAST, Tier.EPHEMERAL)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute("SELECT tableoid::regclass::text, id FROM jobkeeper.jobs")
        where = {row[1]: row[0] for row in await cur.fetchall()}
    assert where == {
        money.id: "jobkeeper.jobs_logged",
        email.id: "jobkeeper.jobs_logged",
        report.id: "jobkeeper.jobs_ephemeral",
    }


async def test_delay_and_run_at_are_measured_on_the_database_clock(client: Client) -> None:
    delayed = await client.enqueue("send-sms", VALID["send-sms"], delay=90)
    assert delayed.scheduled_at - delayed.created_at == timedelta(seconds=90)
    at = datetime(2031, 5, 17, 12, 0, tzinfo=UTC)
    scheduled = await client.schedule("send-sms", VALID["send-sms"], at)
    assert scheduled.scheduled_at == at
    later = await client.schedule("send-sms", VALID["send-sms"], timedelta(minutes=5))
    assert later.scheduled_at - later.created_at == timedelta(minutes=5)


async def test_options_override_defaults(client: Client) -> None:
    tenant = DEV_TENANT_ID
    await client.declare_type("custom-type")
    job = await client.enqueue(
        "custom-type", {"x": 1}, queue="money", priority=10, max_attempts=1, tenant_id=str(tenant)
    )
    assert (job.queue, job.priority, job.max_attempts, job.tier) == ("money", 10, 1, Tier.DURABLE)


async def test_unknown_tenant_is_a_typed_error(client: Client) -> None:
    stranger = uuid.uuid4()
    with pytest.raises(UnknownTenantError, match=f"no tenant with id {stranger}"):
        await client.enqueue("send-sms", VALID["send-sms"], tenant_id=stranger)


async def test_queue_created_after_the_catalog_was_loaded_is_found(client: Client, db_url: str) -> None:
    await client.declare_type("x")
    await client.enqueue("send-sms", VALID["send-sms"])  # loads the catalog
    with pytest.raises(UnknownQueueError):
        await client.enqueue("x", {}, queue="reports")
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO jobkeeper.queues (name, tier, max_attempts, backoff, backoff_base_seconds,"
            " backoff_max_seconds, timeout_seconds, default_priority)"
            " VALUES ('reports', 'durable', 4, 'fixed', 1, 1, 30, 3)"
        )
    job = await client.enqueue("x", {}, queue="reports")
    assert (job.queue, job.max_attempts, job.priority) == ("reports", 4, 3)


async def test_enqueue_many_writes_thousands_in_order(client: Client, db_url: str) -> None:
    items = [
        {"type": "analytics-track", "payload": unique("analytics-track", n), "priority": 1 + n % 10}
        for n in range(5000)
    ]
    jobs = await client.enqueue_many(items)
    assert [job.payload for job in jobs] == [unique("analytics-track", n) for n in range(5000)]
    assert [job.priority for job in jobs] == [1 + n % 10 for n in range(5000)]
    assert len({job.id for job in jobs}) == 5000
    assert await _count(db_url) == 5000


async def test_enqueue_many_is_all_or_nothing_across_chunks(client: Client, db_url: str) -> None:
    items: list[dict[str, Any]] = [
        {"type": "analytics-track", "payload": unique("analytics-track", n)} for n in range(12_000)
    ]
    items[-1]["tenant_id"] = uuid.uuid4()  # fails in the last statement, after 10,000 rows were written
    with pytest.raises(UnknownTenantError):
        await client.enqueue_many(items)
    assert await _count(db_url) == 0
    assert len(await client.enqueue_many(items[:-1])) == 11_999


async def test_empty_batch_is_a_no_op(client: Client) -> None:
    assert await client.enqueue_many([]) == []


async def test_enqueue_in_the_callers_transaction_rolls_back_with_it(client: Client, db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        async with conn.transaction(force_rollback=True):
            job = await client.enqueue("send-email", VALID["send-email"] | {"to": "a@example.com"}, conn=conn)
            cur = await conn.execute("SELECT count(*) FROM jobkeeper.jobs WHERE id = %s", (job.id,))
            assert await cur.fetchone() == (1,)
        assert await client.get_job(job.id) is None
        async with conn.transaction():
            kept = await client.enqueue(
                "send-email", VALID["send-email"] | {"to": "b@example.com"}, conn=conn
            )
    assert await client.get_job(kept.id) == kept


async def test_enqueue_in_a_transaction_notifies_at_commit(client: Client, db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as listener:
        await listener.execute("LISTEN jobkeeper_jobs")
        async with await psycopg.AsyncConnection.connect(db_url) as conn, conn.transaction():
            await client.enqueue_many(
                [
                    {"type": "send-email", "payload": VALID["send-email"]},
                    {"type": "payment-process", "payload": VALID["payment-process"]},
                ],
                conn=conn,
            )
        notifies = listener.notifies(timeout=5, stop_after=1)
        received = [n async for n in notifies]
    assert len(received) == 1
    assert sorted(received[0].payload.split(",")) == ["communication", "money"]


async def test_duplicate_idempotency_key_returns_the_original(client: Client, db_url: str) -> None:
    payment = VALID["payment-process"]
    first = await client.enqueue("payment-process", payment | {"amount": 1}, idempotency_key="order-1")
    again = await client.enqueue("payment-process", payment | {"amount": 999}, idempotency_key="order-1")
    assert again.id == first.id
    assert again.payload == payment | {"amount": 1}
    assert again.deduplicated
    assert not first.deduplicated
    other_tenant = uuid.uuid4()
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO jobkeeper.tenants (id, name, slug) VALUES (%s, 'Other', 'other')", (other_tenant,)
        )
    theirs = await client.enqueue(
        "payment-process", payment, idempotency_key="order-1", tenant_id=other_tenant
    )
    assert theirs.id != first.id  # keys are scoped per tenant
    assert await _count(db_url) == 2


async def test_duplicate_keys_inside_one_batch_resolve_to_one_job(client: Client, db_url: str) -> None:
    jobs = await client.enqueue_many(
        [
            {"type": "send-email", "payload": unique("send-email", 1), "idempotency_key": "k"},
            {"type": "send-email", "payload": unique("send-email", 2)},
            {"type": "send-email", "payload": unique("send-email", 3), "idempotency_key": "k"},
        ]
    )
    assert jobs[0].id == jobs[2].id
    assert jobs[2].payload == unique("send-email", 1)
    assert jobs[2].deduplicated
    assert await _count(db_url) == 2


async def test_concurrent_duplicate_enqueues_create_one_job(db_url: str, settings: Settings) -> None:
    clients = [Client(db_url, settings=settings) for _ in range(4)]
    for c in clients:
        await c.open()
    try:
        jobs = await asyncio.gather(
            *(
                clients[n % 4].enqueue(
                    "payment-process", unique("payment-process", n), idempotency_key="charge-7"
                )
                for n in range(40)
            )
        )
    finally:
        for c in clients:
            await c.close()
    assert len({job.id for job in jobs}) == 1
    assert sum(not job.deduplicated for job in jobs) == 1
    assert await _count(db_url) == 1


async def test_an_expired_key_is_taken_over_by_a_new_job(client: Client) -> None:
    email = VALID["send-email"]
    first = await client.enqueue("send-email", email, idempotency_key="welcome")  # 24 h TTL
    later = datetime.now(UTC) + timedelta(hours=25)
    item = {"type": "send-email", "payload": email, "idempotency_key": "welcome"}
    (second,) = await client.enqueue_many([item], now=later)
    assert second.id != first.id
    assert not second.deduplicated
    (third,) = await client.enqueue_many([item], now=later)
    assert third.id == second.id
    assert third.deduplicated


async def test_payload_with_sql_and_markup_is_stored_verbatim(client: Client) -> None:
    text = "'); DELETE FROM jobkeeper.jobs; -- <script>alert('x')</script> SELECT UNION"
    payload = VALID["send-email"] | {"subject": text, "data": {"nested": {"list": [1, "two", None]}}}
    job = await client.enqueue("send-email", payload)
    fetched = await client.get_job(job.id)
    assert fetched is not None
    assert fetched.payload == payload


async def test_unreachable_database_is_a_typed_error_not_a_hang() -> None:
    settings = Settings.from_env({}, pool_min=0, pool_max=1, acquire_timeout=1.0, connect_timeout=1.0)
    async with Client("postgresql://nobody@127.0.0.1:1/none", settings=settings) as unreachable:
        with pytest.raises(DatabaseUnavailableError):
            await unreachable.get_job(uuid.uuid4())


async def test_derived_keys_deduplicate_money_jobs_without_an_explicit_key(client: Client) -> None:
    payload = {"venueId": "v1", "userId": "u1", "eventId": "e1", "amount": 1200, "currency": "usd"}
    first = await client.enqueue("payment-process", payload)
    second = await client.enqueue("payment-process", dict(reversed(payload.items())))
    assert first.idempotency_key == "payment:v1:u1:e1:1200"
    assert second.id == first.id
    assert second.deduplicated
    other = await client.enqueue("payment-process", payload | {"orderId": "o-2"})
    assert other.id != first.id


async def test_email_and_sms_keys_are_bucketed_by_the_database_clock(client: Client) -> None:
    email = {"type": "send-email", "payload": {"template": "receipt", "to": "a@example.com"}}
    sms = {"type": "send-sms", "payload": {"template": "otp", "to": PHONE}}
    morning = datetime(2031, 3, 1, 8, 5, tzinfo=UTC)
    first_email, first_sms = await client.enqueue_many([email, sms], now=morning)
    assert first_email.idempotency_key == "email:receipt:a@example.com:2031-03-01"
    assert first_sms.idempotency_key == f"sms:{PHONE}:otp:2031-03-01T08"
    same_hour = await client.enqueue_many([email, sms], now=morning + timedelta(minutes=50))
    assert [job.id for job in same_hour] == [first_email.id, first_sms.id]
    next_hour = await client.enqueue_many([email, sms], now=morning + timedelta(hours=1))
    assert next_hour[0].id == first_email.id  # same day: the email is still a duplicate
    assert next_hour[1].id != first_sms.id  # a new hour: a new SMS
    next_day = await client.enqueue_many([email], now=morning + timedelta(days=1))
    assert next_day[0].id != first_email.id


async def test_plain_jobs_are_not_deduplicated_unless_asked(client: Client) -> None:
    await client.declare_type("resize-image")
    a = await client.enqueue("resize-image", {"id": 1})
    b = await client.enqueue("resize-image", {"id": 1})
    assert a.id != b.id
    c = await client.enqueue("resize-image", {"id": 2}, idempotency_key=True)
    d = await client.enqueue("resize-image", {"id": 2}, idempotency_key=True)
    assert c.id == d.id


async def test_false_opts_a_money_job_out_of_its_derived_key(client: Client) -> None:
    payload = {"venueId": "v1", "userId": "u1", "eventId": "e1", "amount": 500, "currency": "USD"}
    first = await client.enqueue("payment-process", payload, idempotency_key=False)
    second = await client.enqueue("payment-process", payload, idempotency_key=False)
    assert first.id != second.id
    assert first.idempotency_key is None


async def test_a_key_committed_during_an_enqueue_is_not_taken_for_a_vanished_one(
    client: Client, db_url: str
) -> None:
    # The second enqueue of a key waits for the first's commit; its snapshot predates that job, which it
    # must not mistake for a job that no longer exists (the key of a vanished job is free again).
    async with await psycopg.AsyncConnection.connect(db_url) as first:
        original = await client.enqueue("generate-report", {"hours": 1}, idempotency_key="k", conn=first)
        second = asyncio.create_task(client.enqueue("generate-report", {"hours": 1}, idempotency_key="k"))
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as watcher:

            async def waiting() -> bool:
                cur = await watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
                row = await cur.fetchone()
                return bool(row and row[0])

            await eventually(waiting, what="the second enqueue to wait for the first")
        await first.commit()
    duplicate = await asyncio.wait_for(second, timeout=10)
    assert (duplicate.id, duplicate.deduplicated) == (original.id, True)


async def test_a_batch_error_names_the_item_in_every_problem(client: Client, db_url: str) -> None:
    bad = {"eventType": "ticket.viewed"}  # no timestamp, and no userId or anonymousId
    items = [
        {"type": "analytics-track", "payload": VALID["analytics-track"]},
        {"type": "analytics-track", "payload": bad | {"n": 1}},
    ]
    with pytest.raises(InvalidPayloadError) as caught:
        await client.enqueue_many(items)
    fields = [field for field, _ in caught.value.problems]
    assert fields == ["jobs[1].payload.timestamp", "jobs[1].payload.n"]
    assert caught.value.field == "jobs[1].payload.timestamp"
    assert "; jobs[1].payload.n: is not a field of this job type" in str(caught.value)
    assert await _count(db_url) == 0
