"""analytics-track: Segment's /v1/batch and Mixpanel's /import and /track, many jobs per request."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from jobkeeper.errors import Retry
from jobkeeper.processors.analytics import processor as analytics
from jobkeeper.processors.analytics.payload import AnalyticsTrack
from jobkeeper.processors.support import InvalidPayloadError, NotConfiguredError, ProviderRejectedError
from jobkeeper.providers.errors import ProviderError
from jobkeeper.worker import JobContext
from tests.processors.helpers import handler, make_ctx, run, settings
from tests.processors.servers import Reply, http_server
from tests.receivers import Request


def segment_settings(url: str, **overrides: Any) -> Any:
    values = {
        "analytics_provider": "segment",
        "segment_write_key": "wk_test",
        "segment_api_base": url,
        "analytics_batch_wait": 5.0,  # the batches below fill up; a timer flush would be a failure
    }
    return settings(**(values | overrides))


def mixpanel_settings(url: str, **overrides: Any) -> Any:
    values = {"analytics_provider": "mixpanel", "mixpanel_api_base": url, "analytics_batch_wait": 5.0}
    return settings(**(values | overrides))


NOON = "2026-11-23T12:00:00Z"


def event(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "eventType": "ticket.purchased",
        "userId": f"user-{n}",
        "venueId": "venue-9",
        "timestamp": f"2026-11-23T18:00:0{n}Z",
        "properties": {"n": n, "amount": 40},
    } | extra


async def run_together(current: Any, payloads: list[Any]) -> tuple[list[Any], list[JobContext]]:
    """Run one handler for every payload at once, as a worker runs a claimed batch."""
    track = handler(analytics, current)
    contexts = [make_ctx("analytics-track", payload) for payload in payloads]
    results = await asyncio.gather(
        *(track(payload, ctx) for payload, ctx in zip(payloads, contexts, strict=True)),
        return_exceptions=True,
    )
    return list(results), contexts


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:".encode()).decode()


async def test_jobs_run_together_go_to_segment_in_one_request() -> None:
    payloads = [event(n) for n in range(5)]
    with http_server(lambda request: (200, {"success": True})) as http:
        results, contexts = await run_together(segment_settings(http.url, analytics_batch_size=5), payloads)
    (request,) = http.requests
    assert (request.method, request.path) == ("POST", "/v1/batch")
    assert request.headers["authorization"] == basic("wk_test")
    body = request.json()
    assert len(body["batch"]) == 5
    first = body["batch"][0]
    assert first["type"] == "track"
    assert first["event"] == "ticket.purchased"
    assert first["userId"] == "user-0"
    assert first["timestamp"] == "2026-11-23T18:00:00Z"
    assert first["properties"] == {"n": 0, "amount": 40, "venue_id": "venue-9"}
    assert first["context"]["library"]["name"] == "jobkeeper"
    assert [item["messageId"] for item in body["batch"]] == [f"jobkeeper-{ctx.job.id}" for ctx in contexts]
    assert "sentAt" in body
    assert results == [{"provider": "segment", "event": "ticket.purchased", "batch_size": 5}] * 5


async def test_a_full_batch_is_sent_and_a_new_one_started() -> None:
    with http_server(lambda request: (200, {})) as http:
        results, _ = await run_together(
            segment_settings(http.url, analytics_batch_size=2, analytics_batch_wait=0.01),
            [event(n) for n in range(5)],
        )
    assert sorted(len(request.json()["batch"]) for request in http.requests) == [1, 2, 2]
    assert sorted(result["batch_size"] for result in results) == [1, 2, 2, 2, 2]


async def test_the_timer_sends_a_batch_that_does_not_fill_up() -> None:
    with http_server(lambda request: (200, {})) as http:
        results, _ = await run_together(
            segment_settings(http.url, analytics_batch_size=100, analytics_batch_wait=0.01),
            [event(1), event(2)],
        )
    (request,) = http.requests
    assert len(request.json()["batch"]) == 2
    assert [result["batch_size"] for result in results] == [2, 2]


async def test_one_malformed_event_fails_alone() -> None:
    def respond(request: Request) -> Reply:
        if any(item["event"] == "bad" for item in request.json()["batch"]):
            return 400, {"error": "invalid event"}
        return 200, {}

    payloads = [event(0), event(1, eventType="bad"), event(2), event(3)]
    with http_server(respond) as http:
        results, _ = await run_together(segment_settings(http.url, analytics_batch_size=4), payloads)
    good = [result for i, result in enumerate(results) if i != 1]
    assert all(isinstance(result, dict) for result in good)
    assert isinstance(results[1], ProviderRejectedError)
    assert results[1].code == "400"
    # [0,bad,2,3] refused; [0,bad] refused, then [0] accepted and [bad] refused; [2,3] accepted.
    assert [len(request.json()["batch"]) for request in http.requests] == [4, 2, 1, 1, 2]


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ((500, "oops"), ProviderError),
        ((502, "bad gateway"), ProviderError),
        ((429, "slow down", {"Retry-After": "12"}), Retry),
        ((401, "bad write key"), ProviderRejectedError),
    ],
)
async def test_a_failed_request_fails_each_of_its_jobs(reply: Reply, outcome: type[Exception]) -> None:
    with http_server(lambda request: reply) as http:
        results, _ = await run_together(
            segment_settings(http.url, analytics_batch_size=3), [event(n) for n in range(3)]
        )
    assert len(http.requests) == 1
    assert all(isinstance(result, outcome) for result in results)
    assert len({id(result) for result in results}) == 3  # each job raises its own exception
    first = results[0]
    if isinstance(first, Retry):
        assert first.after == 12.0
    elif outcome is ProviderError:
        assert first.retryable


async def test_a_network_failure_is_retried() -> None:
    current = segment_settings("http://127.0.0.1:9", analytics_batch_size=1)
    with pytest.raises(ProviderError) as down:
        await run(analytics, current, event(1))
    assert down.value.retryable
    assert down.value.code == "network"


async def test_mixpanel_import_with_the_api_secret_names_the_refused_records() -> None:
    def respond(request: Request) -> Reply:
        return 400, {
            "code": 400,
            "error": "some data points in the request failed validation",
            "failed_records": [
                {"index": 1, "$insert_id": "x", "field": "properties.time", "message": "too old"}
            ],
            "num_records_imported": 2,
            "status": "Bad Request",
        }

    with http_server(respond) as http:
        current = mixpanel_settings(http.url, mixpanel_api_secret="mp-secret", analytics_batch_size=3)
        results, contexts = await run_together(
            current, [event(0), event(1), event(2, userId=None, anonymousId="anon-2")]
        )
    (request,) = http.requests
    assert request.path == "/import?strict=1"
    assert request.headers["authorization"] == basic("mp-secret")
    first, _, anonymous = request.json()
    assert first["event"] == "ticket.purchased"
    props = first["properties"]
    assert props["distinct_id"] == "user-0"
    assert props["$insert_id"] == contexts[0].job.id.hex
    assert props["time"] == int(datetime(2026, 11, 23, 18, 0, 0, tzinfo=UTC).timestamp() * 1000)
    assert props["venue_id"] == "venue-9"
    assert "token" not in props
    assert anonymous["properties"]["distinct_id"] == "anon-2"
    assert anonymous["properties"]["$device_id"] == "anon-2"
    assert isinstance(results[0], dict)
    assert isinstance(results[2], dict)
    refused = results[1]
    assert isinstance(refused, ProviderRejectedError)
    assert refused.code == "400 properties.time"
    assert "too old" in str(refused)


async def test_mixpanel_track_with_the_project_token() -> None:
    answers = iter([(200, {"status": 1, "error": None}), (200, {"status": 0, "error": "token is invalid"})])
    with http_server(lambda request: next(answers)) as http:
        current = mixpanel_settings(http.url, mixpanel_token="mp-token", analytics_batch_size=1)
        result = await run(analytics, current, event(1))
        with pytest.raises(ProviderRejectedError) as refused:
            await run(analytics, current, event(2))
    request = http.requests[0]
    assert request.path == "/track?verbose=1"
    assert "authorization" not in request.headers
    (sent,) = request.json()
    assert sent["properties"]["token"] == "mp-token"
    assert result["provider"] == "mixpanel"
    assert "token is invalid" in str(refused.value)


async def test_a_job_cancelled_before_its_batch_leaves_is_left_out() -> None:
    with http_server(lambda request: (200, {})) as http:
        current = segment_settings(http.url, analytics_batch_size=10, analytics_batch_wait=0.01)
        track = handler(analytics, current)
        kept = asyncio.ensure_future(track(event(1), make_ctx("analytics-track", event(1))))
        dropped = asyncio.ensure_future(track(event(2), make_ctx("analytics-track", event(2))))
        await asyncio.sleep(0)  # both events are in the open batch
        dropped.cancel()
        assert (await kept)["batch_size"] == 1
    (request,) = http.requests
    assert [item["userId"] for item in request.json()["batch"]] == ["user-1"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"userId": "u", "timestamp": NOON}, "eventType"),
        # userId or anonymousId: the model's own rule, about the payload as a whole.
        ({"eventType": "x", "timestamp": NOON}, ""),
        ({"eventType": "x", "userId": "u", "timestamp": "yesterday"}, "timestamp"),
        ({"eventType": "x", "userId": "u", "timestamp": NOON, "properties": [1]}, "properties"),
        (
            {"eventType": "x", "userId": "u", "timestamp": NOON, "properties": {"blob": "x" * 40_000}},
            "properties",
        ),
    ],
)
async def test_invalid_payloads_fail_permanently_without_a_request(
    payload: dict[str, Any], field: str
) -> None:
    with http_server(lambda request: (200, {})) as http, pytest.raises(InvalidPayloadError) as invalid:
        await run(analytics, segment_settings(http.url), payload)
    assert invalid.value.field == field
    assert http.requests == []


def test_timestamps() -> None:
    def fields(timestamp: str | int) -> analytics.EventFields:
        return analytics.event_fields(AnalyticsTrack(eventType="e", userId="u", timestamp=timestamp))

    seconds, millis = fields(1_700_000_000), fields(1_700_000_000_000)
    assert seconds.timestamp == millis.timestamp == datetime.fromtimestamp(1_700_000_000, UTC)
    assert fields("2026-01-01T11:00:00+01:00").timestamp == datetime(2026, 1, 1, 10, tzinfo=UTC)


async def test_unconfigured_analytics_fails_permanently_naming_the_setting() -> None:
    with pytest.raises(NotConfiguredError) as missing:
        await run(analytics, settings(), event(1))
    assert "JOBKEEPER_ANALYTICS_PROVIDER" in str(missing.value)
    with pytest.raises(NotConfiguredError) as no_key:
        await run(analytics, settings(analytics_provider="segment"), event(1))
    assert "JOBKEEPER_SEGMENT_WRITE_KEY" in str(no_key.value)
    with pytest.raises(NotConfiguredError) as no_token:
        await run(analytics, settings(analytics_provider="mixpanel"), event(1))
    assert "JOBKEEPER_MIXPANEL_TOKEN" in str(no_token.value)
    both = settings(segment_write_key="k", mixpanel_token="t")
    assert "choose one" in analytics.problems(both)["analytics-track"][0]
    assert analytics.provider(settings(mixpanel_api_secret="s")) == "mixpanel"
    assert uuid.UUID(int=0).hex == "0" * 32
