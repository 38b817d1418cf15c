from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import psycopg

from jobkeeper import Client, JobStatus
from jobkeeper.dead_letters import DeadLetterFilter
from jobkeeper.maintenance.rescuer import rescue_stale_jobs
from jobkeeper.types import Job
from tests.payloads import PHONE, VALID, unique


async def _fail(client: Client, db_url: str, jobs: list[Job]) -> None:
    """Fail jobs for good as a lost worker's jobs fail: claimed with every attempt spent, then rescued."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        await conn.execute(
            "UPDATE jobkeeper.jobs SET status = 'processing', attempts = max_attempts, heartbeat_at = now(),"
            " worker_id = gen_random_uuid() WHERE id = ANY(%s)",
            ([job.id for job in jobs],),
        )
        row = await (await conn.execute("SELECT now() + interval '1 minute'")).fetchone()
        assert row is not None
    result = await rescue_stale_jobs(client.pool, lease_seconds=30, now=row[0])
    assert result.failed == len(jobs)


async def test_list_filter_and_page(client: Client, db_url: str) -> None:
    emails = await client.enqueue_many(
        [{"type": "send-email", "payload": unique("send-email", n)} for n in range(5)]
    )
    sms = await client.enqueue("send-sms", VALID["send-sms"] | {"to": PHONE})
    await _fail(client, db_url, [*emails, sms])

    everything = await client.dead_letters.list()
    assert len(everything) == 6
    assert {d.job_id for d in everything} == {job.id for job in [*emails, sms]}
    assert all(d.errors and d.errors[-1]["type"] == "WorkerLost" for d in everything)

    only_sms = await client.dead_letters.list(DeadLetterFilter(type="send-sms"))
    assert [d.job_id for d in only_sms] == [sms.id]
    assert only_sms[0].payload == VALID["send-sms"] | {"to": PHONE}
    assert await client.dead_letters.list(DeadLetterFilter(queue="money")) == []

    first_page = await client.dead_letters.list(limit=4)
    second_page = await client.dead_letters.list(limit=4, after=first_page[-1])
    assert len(first_page) == 4
    assert len(second_page) == 2
    assert {d.id for d in first_page}.isdisjoint(d.id for d in second_page)

    shown = await client.dead_letters.get(only_sms[0].id)
    assert shown == only_sms[0]
    assert await client.dead_letters.get(uuid.uuid4()) is None


async def test_replay_one_makes_a_fresh_pending_job_once(client: Client, db_url: str) -> None:
    original = await client.enqueue("refund-process", {"transactionId": "tx_9", "amount": 500})
    await _fail(client, db_url, [original])
    (dead,) = await client.dead_letters.list()

    replayed = await client.dead_letters.replay_one(dead.id)
    assert replayed is not None
    assert replayed.id != original.id
    assert replayed.status is JobStatus.PENDING
    assert replayed.attempts == 0
    assert (replayed.type, replayed.queue, replayed.payload) == (
        original.type,
        original.queue,
        original.payload,
    )
    assert replayed.idempotency_key == original.idempotency_key == "refund:tx_9"

    again = await client.dead_letters.get(dead.id)
    assert again is not None
    assert again.replayed_job_id == replayed.id
    assert again.replayed_at is not None
    assert await client.dead_letters.replay_one(dead.id) is None  # a dead letter is replayed once

    # The idempotency key now points at the live replay, not the failed original.
    duplicate = await client.enqueue("refund-process", {"transactionId": "tx_9", "amount": 500})
    assert duplicate.id == replayed.id
    assert duplicate.deduplicated


async def test_replay_and_purge_a_filtered_set(client: Client, db_url: str) -> None:
    emails = await client.enqueue_many(
        [{"type": "send-email", "payload": unique("send-email", n)} for n in range(3)]
    )
    pushes = await client.enqueue_many(
        [{"type": "send-push", "payload": unique("send-push", n)} for n in range(2)]
    )
    await _fail(client, db_url, [*emails, *pushes])

    replayed = await client.dead_letters.replay(DeadLetterFilter(type="send-email"))
    assert sorted((job.payload for job in replayed), key=str) == sorted(
        (unique("send-email", n) for n in range(3)), key=str
    )
    assert all(job.status is JobStatus.PENDING for job in replayed)
    assert await client.dead_letters.replay(DeadLetterFilter(type="send-email")) == []

    assert await client.dead_letters.purge(DeadLetterFilter(type="send-push")) == 2
    remaining: list[Any] = await client.dead_letters.list()
    assert {d.type for d in remaining} == {"send-email"}
    assert await client.dead_letters.purge(DeadLetterFilter(replayed=True)) == 3
    assert await client.dead_letters.list() == []
    # Purging dead letters keeps the failed jobs' own rows.
    failed = await client.get_job(pushes[0].id)
    assert failed is not None
    assert failed.status is JobStatus.FAILED


async def test_filters_by_time(client: Client, db_url: str) -> None:
    job = await client.enqueue("send-email", VALID["send-email"])
    await _fail(client, db_url, [job])
    (dead,) = await client.dead_letters.list()
    assert await client.dead_letters.list(DeadLetterFilter(since=dead.failed_at + timedelta(seconds=1))) == []
    assert await client.dead_letters.list(DeadLetterFilter(until=dead.failed_at + timedelta(seconds=1))) == [
        dead
    ]


async def test_a_job_that_fails_again_after_a_retry_is_dead_lettered_again(
    client: Client, db_url: str
) -> None:
    job = await client.enqueue("send-email", unique("send-email", 1))
    await _fail(client, db_url, [job])
    (dead,) = await client.dead_letters.list()
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        # A retry of the same job (as the API's retry does) marks its dead letter replayed.
        await conn.execute(
            "UPDATE jobkeeper.dead_letter_jobs SET replayed_at = now(), replayed_job_id = job_id"
            " WHERE id = %s",
            (dead.id,),
        )
        await conn.execute("UPDATE jobkeeper.jobs SET status = 'pending' WHERE id = %s", (job.id,))
    await _fail(client, db_url, [job])
    (again,) = await client.dead_letters.list()
    assert again.id == dead.id
    assert again.replayed_at is None
    assert again.replayed_job_id is None
    assert len(again.errors) == len(dead.errors) + 1
    assert again.failed_at > dead.failed_at
