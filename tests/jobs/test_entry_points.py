"""Every way in applies the same rules as the API: one payload definition per built-in type
(`jobkeeper.payloads`) and only known job types, through `Client`, `SyncClient` and `prepare` itself."""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg
import pytest

from jobkeeper import Client, Settings, SyncClient
from jobkeeper.catalog import Catalog
from jobkeeper.enqueue import prepare
from jobkeeper.errors import InvalidJobError, InvalidPayloadError, UnknownJobTypeError
from jobkeeper.store import queues
from jobkeeper.store.run import run
from tests.payloads import INVALID, VALID


@pytest.fixture
async def catalog(shared_db_url: str) -> Catalog:
    async with await psycopg.AsyncConnection.connect(shared_db_url) as conn:
        return await run(conn, queues.load_catalog())


def _client_field(api_field: str) -> str:
    """The API's `body.data.to` is the client's `payload.to`."""
    return "payload" + api_field.removeprefix("body.data")


@pytest.mark.parametrize(("job_type", "data", "field"), INVALID, ids=[f"{t}:{f}" for t, _, f in INVALID])
def test_prepare_refuses_what_the_api_refuses_naming_the_same_field(
    catalog: Catalog, settings: Settings, job_type: str, data: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidPayloadError) as caught:
        prepare([{"type": job_type, "payload": data}], catalog, settings)
    assert _client_field(field) in [f for f, _ in caught.value.problems]


@pytest.mark.parametrize("job_type", sorted(VALID))
def test_prepare_accepts_what_the_api_accepts(catalog: Catalog, settings: Settings, job_type: str) -> None:
    assert len(prepare([{"type": job_type, "payload": VALID[job_type]}], catalog, settings)) == 1


def test_keys_beginning_with_two_underscores_are_refused_for_any_type(
    catalog: Catalog, settings: Settings
) -> None:
    any_type = dataclasses.replace(settings, allow_unknown_types=True)
    with pytest.raises(InvalidPayloadError, match=r"payload\.a\[0\]\.__proto__"):
        prepare([{"type": "my-own", "payload": {"a": [{"__proto__": 1}]}}], catalog, any_type)


async def test_the_async_client_refuses_invalid_payloads_and_unknown_types(client: Client) -> None:
    with pytest.raises(InvalidPayloadError, match=r"payload\.to: is not a valid email address") as caught:
        await client.enqueue("send-email", {"to": "not-an-email", "template": "receipt"})
    assert isinstance(caught.value, InvalidJobError)
    assert caught.value.field == "payload.to"
    with pytest.raises(InvalidPayloadError, match=r"payload\.hours: Input should be a valid number"):
        await client.enqueue("generate-report", {"hours": "lots"})
    with pytest.raises(UnknownJobTypeError, match="did you mean 'generate-report'"):
        await client.enqueue("generate-reprot", {})
    with pytest.raises(InvalidJobError, match=r"jobs\[1\]\.type: unknown job type 'no-such-type'"):
        await client.enqueue_many([{"type": "generate-report"}, {"type": "no-such-type"}])
    assert await client.enqueue("generate-report", {"hours": 2})


def test_the_sync_client_refuses_invalid_payloads_and_unknown_types(sync_client: SyncClient) -> None:
    with pytest.raises(InvalidPayloadError, match=r"payload\.to: is not a valid email address"):
        sync_client.enqueue("send-email", {"to": "not-an-email", "template": "receipt"})
    with pytest.raises(InvalidPayloadError, match=r"payload\.hours"):
        sync_client.enqueue("generate-report", {"hours": "lots"})
    with pytest.raises(UnknownJobTypeError, match="did you mean 'generate-report'"):
        sync_client.enqueue("generate-reprot", {})


async def test_a_type_is_known_once_declared_or_registered_by_a_worker(
    db_url: str, settings: Settings
) -> None:
    async with Client(db_url, settings=settings) as client:
        with pytest.raises(UnknownJobTypeError):
            await client.enqueue("resize-image", {"w": 800})
        # A type a worker registered (or a declared one) appears after the catalog was cached: the
        # client looks again before refusing it.
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO jobkeeper.job_types (name, queue) VALUES ('resize-image', 'background')"
            )
        job = await client.enqueue("resize-image", {"w": 800})
        assert job.queue == "background"


async def test_the_setting_allows_any_type(db_url: str, settings: Settings) -> None:
    any_type = dataclasses.replace(settings, allow_unknown_types=True)
    assert Settings.from_env({"JOBKEEPER_ALLOW_UNKNOWN_TYPES": "true"}).allow_unknown_types
    async with Client(db_url, settings=any_type) as client:
        job = await client.enqueue("generate-reprot", {"anything": 1})
    assert job.type == "generate-reprot"


async def test_the_clients_declare_types(db_url: str, settings: Settings) -> None:
    async with Client(db_url, settings=settings) as client:
        declared = await client.declare_type("video-transcode", queue="money")
        assert (declared.name, declared.queue) == ("video-transcode", "money")
        assert (await client.enqueue("video-transcode", {"file": "a.mp4"})).queue == "money"
        with pytest.raises(InvalidJobError, match="moves money and needs a durable queue"):
            await client.declare_type("payment-process", queue="background")
    with SyncClient(db_url, settings=settings) as sync:
        assert sync.declare_type("thumbnail").queue == settings.default_queue
        assert sync.enqueue("thumbnail", {}).type == "thumbnail"
