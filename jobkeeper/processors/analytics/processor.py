"""`analytics-track`: events to Segment's or Mixpanel's HTTP tracking API, many jobs per request.

Payload (`payload.py`):
    {"eventType": "ticket.purchased", "userId": "u_1" (or anonymousId), "venueId": "v_9",
     "timestamp": "2026-11-23T18:00:00Z" (or epoch seconds or milliseconds), "properties": {...}}

Provider (`JOBKEEPER_ANALYTICS_PROVIDER`): `segment` (POST /v1/batch, HTTP basic auth with the write key)
or `mixpanel` (POST /import?strict=1 with the project's API secret, else POST /track?verbose=1 with the
project token); unset, the configured one. Each event carries an id derived from its job (Segment
`messageId`, Mixpanel `$insert_id`), so an event re-sent after a crash is deduplicated by the provider.

Batching. One analytics event per job keeps the queue's guarantees (each event is retried, dead-lettered
and visible on its own), but one HTTP request per event would waste the providers' batch APIs. So the jobs
of a worker share an in-process `Batcher`: a job validates its payload, adds its event and awaits the
outcome of the request its event goes out in. A batch is sent when it holds `JOBKEEPER_ANALYTICS_BATCH_SIZE`
events, or `JOBKEEPER_ANALYTICS_BATCH_WAIT` seconds (default 0.05) after its first event. A worker starts
every job of a claimed batch at once, so the jobs claimed together end up in one request. (Grouping at
claim time was the alternative; it would have made the worker know about job types.)

Each job gets its own event's outcome: a request that failed in a way a retry may fix (network, timeout,
429, 5xx) fails every job in it for a retry; Mixpanel's /import names the records it refused, and only
those jobs fail permanently; a whole batch refused as malformed (400, 413) is split in halves and re-sent
until the event at fault is alone, so one bad event never fails the others. A job cancelled before its
batch is sent is left out of it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from jobkeeper import __version__
from jobkeeper.config import Settings
from jobkeeper.errors import Retry
from jobkeeper.processors.analytics.payload import JOB_TYPE, AnalyticsTrack
from jobkeeper.processors.support import (
    InvalidPayloadError,
    NotConfiguredError,
    ProviderRejectedError,
    json_body,
    parse,
    post,
    processor,
    retry_after,
)
from jobkeeper.providers.errors import ProviderError
from jobkeeper.worker.context import JobContext
from jobkeeper.worker.registry import Registry

SEGMENT_MAX_EVENT_BYTES = 32 * 1024
SEGMENT_MAX_BATCH_BYTES = 450 * 1024
"""Segment takes 500 KB per batch request; the rest is the envelope's margin."""
SEGMENT_MAX_EVENTS = 500
MIXPANEL_MAX_EVENT_BYTES = 1024 * 1024
MIXPANEL_MAX_BATCH_BYTES = 9 * 1024 * 1024
MIXPANEL_MAX_EVENTS = {"import": 2000, "track": 50}


# -- configuration ----------------------------------------------------------------------------------------


def provider(settings: Settings) -> str | None:
    if settings.analytics_provider is not None:
        return settings.analytics_provider
    has_segment = settings.segment_write_key is not None
    has_mixpanel = settings.mixpanel_token is not None or settings.mixpanel_api_secret is not None
    if has_segment != has_mixpanel:
        return "segment" if has_segment else "mixpanel"
    return None


def problems(settings: Settings) -> dict[str, list[str]]:
    chosen = provider(settings)
    if chosen is None:
        if settings.segment_write_key is not None:
            message = "both Segment and Mixpanel are configured: choose one with JOBKEEPER_ANALYTICS_PROVIDER"
        else:
            message = (
                "JOBKEEPER_ANALYTICS_PROVIDER is not set: set it to segment (with "
                "JOBKEEPER_SEGMENT_WRITE_KEY) or mixpanel (with JOBKEEPER_MIXPANEL_API_SECRET or "
                "JOBKEEPER_MIXPANEL_TOKEN)"
            )
        return {JOB_TYPE: [message]}
    if chosen == "segment" and settings.segment_write_key is None:
        return {
            JOB_TYPE: ["JOBKEEPER_SEGMENT_WRITE_KEY is not set (JOBKEEPER_ANALYTICS_PROVIDER is segment)"]
        }
    if chosen == "mixpanel" and settings.mixpanel_token is None and settings.mixpanel_api_secret is None:
        return {
            JOB_TYPE: [
                "JOBKEEPER_MIXPANEL_API_SECRET (for /import) or JOBKEEPER_MIXPANEL_TOKEN (for /track) is not "
                "set (JOBKEEPER_ANALYTICS_PROVIDER is mixpanel)"
            ]
        }
    return {JOB_TYPE: []}


# -- outcomes ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure:
    """Why one event was not accepted; each job raises its own exception from it."""

    provider: str
    code: str | None
    message: str
    retryable: bool
    after: float | None = None
    splittable: bool = False
    """The whole request was refused as malformed: sending its events in smaller batches may isolate the
    event at fault."""

    def exception(self) -> Exception:
        if self.after is not None:
            return Retry(self.after, f"{self.provider}: {self.message}")
        if self.retryable:
            return ProviderError(self.provider, self.message, retryable=True, code=self.code)
        return ProviderRejectedError(self.provider, self.code, f"{self.provider}: {self.message}")


def classify(name: str, response: httpx.Response, code: str | None = None) -> Failure | None:
    """The outcome of a whole request (None: accepted), like `support.check`."""
    if response.is_success:
        return None
    status = response.status_code
    message = f"HTTP {status}: {response.text[:300]}"
    after = retry_after(response) if status in (429, 503) else None
    retryable = status in (408, 409, 425, 429) or status >= 500
    return Failure(name, code or str(status), message, retryable, after, splittable=status in (400, 413))


Outcomes = list[Failure | None]
PostOnce = Callable[[Sequence[dict[str, Any]]], Awaitable[Outcomes]]


async def bisecting(post_once: PostOnce, events: Sequence[dict[str, Any]]) -> Outcomes:
    """Send `events`; when the request is refused as malformed as a whole, send each half on its own."""
    outcomes = await post_once(events)
    if len(events) > 1 and all(o is not None and o.splittable for o in outcomes):
        middle = len(events) // 2
        return await bisecting(post_once, events[:middle]) + await bisecting(post_once, events[middle:])
    return outcomes


def chunks(
    events: Sequence[dict[str, Any]], sizes: Sequence[int], max_events: int, max_bytes: int
) -> list[list[dict[str, Any]]]:
    """Consecutive groups of at most `max_events` events and `max_bytes` bytes of JSON."""
    groups: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    total = 0
    for event, size in zip(events, sizes, strict=True):
        if current and (len(current) >= max_events or total + size > max_bytes):
            groups.append(current)
            current, total = [], 0
        current.append(event)
        total += size
    if current:
        groups.append(current)
    return groups


def _size(event: Mapping[str, Any]) -> int:
    return len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())


# -- Segment ----------------------------------------------------------------------------------------------


def segment_event(data: AnalyticsTrack, ctx: JobContext) -> dict[str, Any]:
    fields = event_fields(data)
    event: dict[str, Any] = {
        "type": "track",
        "event": fields.name,
        "properties": fields.properties,
        "timestamp": fields.timestamp.isoformat().replace("+00:00", "Z"),
        "messageId": f"jobkeeper-{ctx.job.id}",
        "context": {"library": {"name": "jobkeeper", "version": __version__}},
    }
    if fields.user_id is not None:
        event["userId"] = fields.user_id
    if fields.anonymous_id is not None:
        event["anonymousId"] = fields.anonymous_id
    size = _size(event)
    if size > SEGMENT_MAX_EVENT_BYTES:
        raise InvalidPayloadError("properties", f"the event is {size} bytes; Segment takes at most 32 KB")
    return event


async def send_segment(settings: Settings, events: Sequence[dict[str, Any]]) -> Outcomes:
    assert settings.segment_write_key is not None
    auth = (settings.segment_write_key, "")

    async def post_once(batch: Sequence[dict[str, Any]]) -> Outcomes:
        body = {"batch": list(batch), "sentAt": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
        try:
            response = await post(
                "segment",
                f"{settings.segment_api_base}/v1/batch",
                timeout=settings.provider_timeout,
                json=body,
                auth=auth,
            )
        except ProviderError as exc:
            return [Failure("segment", exc.code, str(exc).removeprefix("segment: "), retryable=True)] * len(
                batch
            )
        return [classify("segment", response)] * len(batch)

    outcomes: Outcomes = []
    sizes = [_size(event) for event in events]
    for group in chunks(
        events, sizes, min(settings.analytics_batch_size, SEGMENT_MAX_EVENTS), SEGMENT_MAX_BATCH_BYTES
    ):
        outcomes += await bisecting(post_once, group)
    return outcomes


# -- Mixpanel ---------------------------------------------------------------------------------------------


def mixpanel_endpoint(settings: Settings) -> str:
    return "import" if settings.mixpanel_api_secret is not None else "track"


def mixpanel_event(data: AnalyticsTrack, ctx: JobContext, settings: Settings) -> dict[str, Any]:
    fields = event_fields(data)
    properties: dict[str, Any] = {
        **fields.properties,
        "time": int(fields.timestamp.timestamp() * 1000),
        "distinct_id": fields.user_id or fields.anonymous_id,
        "$insert_id": ctx.job.id.hex,
    }
    if fields.user_id is None:
        properties["$device_id"] = fields.anonymous_id
    if settings.mixpanel_token is not None:
        properties["token"] = settings.mixpanel_token
    event = {"event": fields.name, "properties": properties}
    size = _size(event)
    if size > MIXPANEL_MAX_EVENT_BYTES:
        raise InvalidPayloadError("properties", f"the event is {size} bytes; Mixpanel takes at most 1 MB")
    return event


def _mixpanel_outcomes(response: httpx.Response, count: int) -> Outcomes:
    detail = json_body(response)
    if (
        response.status_code == 400
        and isinstance(detail, dict)
        and isinstance(detail.get("failed_records"), list)
    ):
        # /import?strict=1 imported every other record; only these are refused, each for a reason of its own.
        outcomes: Outcomes = [None] * count
        for record in detail["failed_records"]:
            if not isinstance(record, dict) or not isinstance(record.get("index"), int):
                continue
            index = record["index"]
            if 0 <= index < count:
                reason = f"{record.get('field', 'event')}: {record.get('message', 'refused')}"
                outcomes[index] = Failure(
                    "mixpanel", f"400 {record.get('field', 'invalid')}", reason, retryable=False
                )
        return outcomes
    if response.is_success and isinstance(detail, dict) and detail.get("status") == 0:
        # /track?verbose=1 answers 200 with status 0 when it refuses the batch.
        message = f"refused: {detail.get('error') or 'unknown error'}"
        return [Failure("mixpanel", "0", message, retryable=False, splittable=True)] * count
    return [classify("mixpanel", response)] * count


async def send_mixpanel(settings: Settings, events: Sequence[dict[str, Any]]) -> Outcomes:
    endpoint = mixpanel_endpoint(settings)
    if endpoint == "import":
        assert settings.mixpanel_api_secret is not None
        url, auth = f"{settings.mixpanel_api_base}/import?strict=1", (settings.mixpanel_api_secret, "")
    else:
        url, auth = f"{settings.mixpanel_api_base}/track?verbose=1", None

    async def post_once(batch: Sequence[dict[str, Any]]) -> Outcomes:
        try:
            response = await post(
                "mixpanel",
                url,
                timeout=settings.provider_timeout,
                json=list(batch),
                auth=auth,
                headers={"Accept": "application/json"},
            )
        except ProviderError as exc:
            return [Failure("mixpanel", exc.code, str(exc).removeprefix("mixpanel: "), retryable=True)] * len(
                batch
            )
        return _mixpanel_outcomes(response, len(batch))

    outcomes: Outcomes = []
    sizes = [_size(event) for event in events]
    limit = min(settings.analytics_batch_size, MIXPANEL_MAX_EVENTS[endpoint])
    for group in chunks(events, sizes, limit, MIXPANEL_MAX_BATCH_BYTES):
        outcomes += await bisecting(post_once, group)
    return outcomes


# -- payloads ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventFields:
    name: str
    user_id: str | None
    anonymous_id: str | None
    timestamp: datetime
    properties: dict[str, Any]


def _timestamp(value: str | float) -> datetime:
    """An ISO 8601 time with its zone, or epoch seconds, or milliseconds (the model allows all three)."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).astimezone(UTC)
    seconds = value / 1000 if value > 1e11 else value
    return datetime.fromtimestamp(seconds, UTC)


def event_fields(data: AnalyticsTrack) -> EventFields:
    properties = dict(data.properties or {})
    if data.venueId is not None:
        properties.setdefault("venue_id", data.venueId)
    return EventFields(data.eventType, data.userId, data.anonymousId, _timestamp(data.timestamp), properties)


# -- batching ---------------------------------------------------------------------------------------------

Sender = Callable[[Settings, Sequence[dict[str, Any]]], Awaitable[Outcomes]]


@dataclass(slots=True)
class _Entry:
    event: dict[str, Any]
    future: asyncio.Future[int]
    """Resolves to the size of the batch the event went out in; raises the job's failure."""


@dataclass(slots=True)
class _Open:
    """The batch being filled, on one event loop."""

    loop: asyncio.AbstractEventLoop
    settings: Settings | None = None
    sender: Sender | None = None
    entries: list[_Entry] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    sending: set[asyncio.Task[None]] = field(default_factory=set)


class Batcher:
    """Collects the events of concurrently running jobs and sends them in as few requests as possible."""

    def __init__(self) -> None:
        self._open: _Open | None = None
        self.requests = 0
        """Batches flushed so far (for tests and metrics)."""

    async def submit(self, settings: Settings, sender: Sender, event: dict[str, Any]) -> int:
        """Add `event` to the open batch and wait until it is sent; returns the batch's size, or raises
        this event's failure."""
        loop = asyncio.get_running_loop()
        state = self._open
        if state is None or state.loop is not loop:
            state = self._open = _Open(loop)
        if state.entries and (state.settings is not settings or state.sender is not sender):
            self._flush(state)  # a batch goes to one provider with one configuration
        entry = _Entry(event, loop.create_future())
        state.settings, state.sender = settings, sender
        state.entries.append(entry)
        if len(state.entries) >= max(1, settings.analytics_batch_size):
            self._flush(state)
        elif state.timer is None:
            state.timer = loop.call_later(settings.analytics_batch_wait, self._flush, state)
        return await entry.future

    def _flush(self, state: _Open) -> None:
        if state.timer is not None:
            state.timer.cancel()
            state.timer = None
        entries = [entry for entry in state.entries if not entry.future.done()]  # cancelled jobs stay out
        state.entries = []
        if not entries or state.settings is None or state.sender is None:
            return
        self.requests += 1
        task = state.loop.create_task(self._send(state.settings, state.sender, entries))
        state.sending.add(task)
        task.add_done_callback(state.sending.discard)

    async def _send(self, settings: Settings, sender: Sender, entries: list[_Entry]) -> None:
        try:
            outcomes = await sender(settings, [entry.event for entry in entries])
        except Exception as exc:  # a bug, not a provider answer: every job retries
            failure = Failure("analytics", "internal", f"{type(exc).__name__}: {exc}", retryable=True)
            outcomes = [failure] * len(entries)
        for entry, outcome in zip(entries, outcomes, strict=True):
            if entry.future.done():
                continue
            if outcome is None:
                entry.future.set_result(len(entries))
            else:
                entry.future.set_exception(outcome.exception())


# -- the job ----------------------------------------------------------------------------------------------


def register(registry: Registry, settings: Settings | None = None, *, batcher: Batcher | None = None) -> None:
    """Register `analytics-track` in `registry` unless the type has a handler already (yours wins)."""
    shared = batcher if batcher is not None else Batcher()

    @processor(registry, JOB_TYPE, "background", settings)
    async def analytics_track(payload: Any, ctx: JobContext, current: Settings) -> dict[str, Any]:
        found = problems(current)[JOB_TYPE]
        if found:
            raise NotConfiguredError(JOB_TYPE, found)
        data = parse(AnalyticsTrack, payload)
        if provider(current) == "segment":
            event, sender, name = segment_event(data, ctx), send_segment, "segment"
        else:
            event, sender, name = mixpanel_event(data, ctx, current), send_mixpanel, "mixpanel"
        size = await shared.submit(current, sender, event)
        return {"provider": name, "event": event.get("event"), "batch_size": size}
