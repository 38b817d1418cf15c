"""Validation of enqueue requests and the parameters of the bulk insert, shared by both clients.

Nothing here does I/O: a request is checked against a `Catalog` of queues and job types and becomes one
column of each array that `insert_jobs` unnests.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from jobkeeper.catalog import Catalog
from jobkeeper.config import Settings
from jobkeeper.errors import (
    InvalidJobError,
    PayloadTooLargeError,
    UnknownJobTypeError,
    UnknownQueueError,
    did_you_mean,
)
from jobkeeper.idempotency import MONEY_TYPES, derive
from jobkeeper.types import JsonValue, Tier

ENQUEUE_OPTIONS = (
    "type",
    "payload",
    "queue",
    "delay",
    "run_at",
    "max_attempts",
    "priority",
    "idempotency_key",
    "tenant_id",
    "depends_on",
)
MAX_TYPE_LENGTH = 200
MAX_DEPENDENCIES = 100
"""Jobs one job may depend on (docs/concepts.md, "Dependencies")."""
MAX_KEY_LENGTH = 255
MAX_ATTEMPTS = 1000


@dataclass(slots=True)
class InsertBatch:
    """Column arrays for `insert_jobs`, one entry per job, in request order."""

    tenant_ids: list[uuid.UUID] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    payloads: list[str] = field(default_factory=list)
    tiers: list[str] = field(default_factory=list)
    priorities: list[int] = field(default_factory=list)
    max_attempts: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    run_ats: list[datetime | None] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)
    key_ttls: list[float] = field(default_factory=list)
    key_buckets: list[str | None] = field(default_factory=list)
    depends_on: list[list[uuid.UUID | int]] = field(default_factory=list)
    """Each job's parents: job ids, or indexes of earlier jobs of the same call. Not a column of
    `insert_jobs`: a job with parents is inserted `waiting` and `add_dependencies` links and settles it."""
    referenced: list[bool] = field(default_factory=list)
    """True for a job that a later job of the same call depends on (inserted with has_dependents)."""

    def __len__(self) -> int:
        return len(self.types)

    def params(
        self, *, own_transaction: bool, now: datetime | None = None, notify: bool = True
    ) -> dict[str, Any]:
        """Parameters of `insert_jobs`, which `jobkeeper.store.jobs.insert_many` sends. In its own
        transaction, a batch with no durable job commits asynchronously (docs/concepts.md#durability-tiers);
        inside the caller's transaction the caller's setting is kept."""
        synchronous_commit: str | None = None
        if own_transaction:
            synchronous_commit = "on" if Tier.DURABLE in self.tiers else "off"
        return {
            "tenant_ids": self.tenant_ids,
            "queues": self.queues,
            "types": self.types,
            "payloads": self.payloads,
            "tiers": self.tiers,
            "priorities": self.priorities,
            "max_attempts": self.max_attempts,
            "delays": self.delays,
            "run_ats": self.run_ats,
            "keys": self.keys,
            "key_ttls": self.key_ttls,
            "key_buckets": self.key_buckets,
            # NULL when no job of the batch has a dependency: nothing to encode on the common path.
            "waiting": [bool(parents) for parents in self.depends_on] if any(self.depends_on) else None,
            "has_dependents": self.referenced if any(self.referenced) else None,
            "now": now,
            "synchronous_commit": synchronous_commit,
            "notify": notify,
        }


def needs_refresh(items: Sequence[Mapping[str, Any]], catalog: Catalog, *, types: bool = False) -> bool:
    """True when a request names a queue the catalog does not know, or (with `types`) a job type: it may
    have been created, registered by a worker or declared since the catalog was loaded."""
    return any(
        (isinstance(q := item.get("queue"), str) and q not in catalog.queues)
        or (types and isinstance(t := item.get("type"), str) and t not in catalog.job_types)
        for item in items
    )


def prepare(
    items: Sequence[Mapping[str, Any]], catalog: Catalog, settings: Settings, *, validate: bool = True
) -> InsertBatch:
    """The insert's columns for `items`. With `validate` (the default) each job's type must be known
    and its payload must follow its type's rules (`jobkeeper.payloads`); callers that checked both
    already (the API, to report every error at once; the scheduler, whose schedules were checked when
    created) pass False."""
    batch = InsertBatch()
    for index, item in enumerate(items):
        try:
            _add(batch, item, catalog, settings, validate)
            parents = _depends_on(item.get("depends_on"), index)
        except InvalidJobError as exc:
            if len(items) > 1:
                # locate, not at: a payload error prefixes every problem it lists (InvalidPayloadError).
                exc.locate(f"jobs[{index}]")
                exc.index = index
            raise
        batch.depends_on.append(parents)
        batch.referenced.append(False)
        for parent in parents:
            if isinstance(parent, int):
                batch.referenced[parent] = True
    return batch


def _add(
    batch: InsertBatch, item: Mapping[str, Any], catalog: Catalog, settings: Settings, validate: bool
) -> None:
    unknown = [key for key in item if key not in ENQUEUE_OPTIONS]
    if unknown:
        name = str(unknown[0])
        # `data` is the HTTP API's word for the payload (docs/decisions.md): point at this surface's.
        hint = did_you_mean("payload" if name == "data" else name, ENQUEUE_OPTIONS)
        raise InvalidJobError(name, f"unknown option{hint}; options are {', '.join(ENQUEUE_OPTIONS)}")

    job_type = _type_name(item.get("type"))
    registered = catalog.job_types.get(job_type)
    if registered is None and validate and not settings.allow_unknown_types:
        raise UnknownJobTypeError(job_type, sorted(catalog.job_types))
    queue_name = item.get("queue")
    if queue_name is None:
        queue_name = registered.queue if registered is not None else settings.default_queue
    if not isinstance(queue_name, str):
        raise InvalidJobError("queue", f"must be a queue name (string), got {queue_name!r}")
    queue = catalog.queues.get(queue_name)
    if queue is None:
        raise UnknownQueueError(queue_name, sorted(catalog.queues))

    payload_object = item.get("payload") or {}
    payload_text = encode_payload(payload_object, settings.max_payload_bytes)

    priority = _bounded_int(item.get("priority"), "priority", 1, 10)
    if priority is None:
        priority = registered.priority if registered and registered.priority else queue.default_priority
    max_attempts = _bounded_int(item.get("max_attempts"), "max_attempts", 1, MAX_ATTEMPTS)
    if max_attempts is None:
        max_attempts = (
            registered.max_attempts if registered and registered.max_attempts else queue.max_attempts
        )

    delay = _delay(item.get("delay"))
    run_at = _run_at(item.get("run_at"))
    if run_at is not None and delay:
        raise InvalidJobError("run_at", "give either delay or run_at, not both")

    key, bucket = _idempotency_key(item.get("idempotency_key"), job_type, payload_object)
    ttl = registered.idempotency_ttl_seconds if registered and registered.idempotency_ttl_seconds else None

    tenant = item.get("tenant_id")
    tenant_id = settings.default_tenant if tenant is None else parse_job_id(tenant, "tenant_id", "a UUID")
    if validate:
        # Imported on first use: the models cost ~50 ms to build, which `import jobkeeper` need not pay.
        from jobkeeper.payloads import check_payload

        check_payload(job_type, payload_object)

    batch.tenant_ids.append(tenant_id)
    batch.queues.append(queue.name)
    batch.types.append(job_type)
    batch.payloads.append(payload_text)
    batch.tiers.append(queue.tier.value)
    batch.priorities.append(priority)
    batch.max_attempts.append(max_attempts)
    batch.delays.append(delay)
    batch.run_ats.append(run_at)
    batch.keys.append(key)
    batch.key_buckets.append(bucket)
    batch.key_ttls.append(ttl if ttl is not None else settings.idempotency_ttl)


def _type_name(job_type: object) -> str:
    if not isinstance(job_type, str) or not job_type.strip():
        raise InvalidJobError("type", f"must be a non-empty string, got {job_type!r}")
    if "\x00" in job_type:
        raise InvalidJobError("type", "contains a NUL character, which PostgreSQL cannot store")
    if len(job_type) > MAX_TYPE_LENGTH:
        raise InvalidJobError("type", f"must be at most {MAX_TYPE_LENGTH} characters, got {len(job_type)}")
    return job_type


def check_declaration(job_type: object, queue_name: str | None, catalog: Catalog) -> str:
    """The name of a job type to declare (`declare_job_type`), checked with its queue: a shared platform
    queue (a type is every tenant's), durable for a type that moves money."""
    name = _type_name(job_type)
    if queue_name is None:
        return name
    shared = sorted(q.name for q in catalog.queues.values() if q.tenant_id is None)
    queue = catalog.queues.get(queue_name)
    if queue is None or queue.tenant_id is not None:
        raise UnknownQueueError(queue_name, shared)
    if name in MONEY_TYPES and queue.tier is not Tier.DURABLE:
        raise InvalidJobError("queue", f"{name} moves money and needs a durable queue; {queue_name!r} is not")
    return name


def _idempotency_key(
    value: object, job_type: str, payload: Mapping[str, Any]
) -> tuple[str | None, str | None]:
    """An explicit key is used as given; None derives one by the type's rule (money types always get
    one); True derives one for any type, falling back to a hash of the type and payload; False means no
    key at all (a deliberate repeat of an identical money job)."""
    if value is False:
        return None, None
    if value is None or value is True:
        derived = derive(job_type, payload, fallback=value is True)
        if derived is None:
            return None, None
        return derived.key, derived.bucket.value if derived.bucket else None
    if isinstance(value, str) and "\x00" in value:
        raise InvalidJobError("idempotency_key", "contains a NUL character, which PostgreSQL cannot store")
    if not isinstance(value, str) or not value or len(value) > MAX_KEY_LENGTH:
        raise InvalidJobError(
            "idempotency_key", f"must be a string of 1 to {MAX_KEY_LENGTH} characters, True or False"
        )
    return value, None


def _depends_on(value: object, index: int) -> list[uuid.UUID | int]:
    """The parents of job `index` of a call: job ids (UUID or its text), or the index of an earlier job
    of the same call (an int), without repeats."""
    if value is None:
        return []
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence | set | frozenset):
        raise InvalidJobError("depends_on", f"must be a list of job ids, got {value!r}")
    if len(value) > MAX_DEPENDENCIES:
        raise InvalidJobError(
            "depends_on", f"a job may depend on at most {MAX_DEPENDENCIES} jobs, got {len(value)}"
        )
    parents: list[uuid.UUID | int] = []
    for item in value:
        parent: uuid.UUID | int
        if isinstance(item, int) and not isinstance(item, bool):
            if not 0 <= item < index:
                raise InvalidJobError(
                    "depends_on",
                    f"{item} is not the index of an earlier job of this call (this job is number {index})",
                )
            parent = item
        elif isinstance(item, uuid.UUID):
            parent = item
        elif isinstance(item, str):
            try:
                parent = uuid.UUID(item)
            except ValueError:
                raise InvalidJobError("depends_on", f"{item!r} is not a job id (UUID)") from None
        else:
            raise InvalidJobError("depends_on", f"{item!r} is not a job id (UUID)")
        if parent not in parents:
            parents.append(parent)
    return parents


def encode_payload(payload: JsonValue, limit: int) -> str:
    """The payload as compact JSON text, or an `InvalidJobError` saying precisely why it cannot be."""
    if payload is None:
        payload = {}
    if not isinstance(payload, Mapping):
        raise InvalidJobError("payload", f"must be a JSON object (a dict), got {type(payload).__name__}")
    try:
        text = json.dumps(payload, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except TypeError as exc:
        raise InvalidJobError("payload", f"is not JSON-serialisable: {exc}") from None
    except ValueError as exc:
        if "circular" in str(exc).lower():
            raise InvalidJobError("payload", "contains a circular reference") from None
        raise InvalidJobError("payload", "contains NaN or Infinity, which JSON cannot represent") from None
    if "\\u0000" in text:
        raise InvalidJobError("payload", "contains a NUL character (\\u0000), which PostgreSQL cannot store")
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > limit:
        raise PayloadTooLargeError(size, limit)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidJobError(
            "payload", "contains a lone surrogate, which is not valid Unicode text"
        ) from None
    return text


def _bounded_int(value: object, name: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidJobError(name, f"must be a whole number from {low} to {high}, got {value!r}")
    if not low <= value <= high:
        raise InvalidJobError(name, f"must be from {low} to {high}, got {value}")
    return value


def _delay(value: object) -> float:
    if value is None:
        return 0.0
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise InvalidJobError("delay", f"must be seconds (a number) or a timedelta, got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidJobError("delay", f"must be a finite number of seconds ≥ 0, got {value!r}")
    if seconds > 10 * 365 * 86400:
        raise InvalidJobError("delay", "must be at most ten years")
    return seconds


def _run_at(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidJobError("run_at", f"must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidJobError("run_at", "must be timezone-aware (naive datetimes are ambiguous)")
    return value


def parse_job_id(value: object, field: str = "id", expected: str = "a job id (UUID)") -> uuid.UUID:
    """`value` as a UUID (a UUID or its text); else InvalidJobError on `field`."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise InvalidJobError(field, f"must be {expected}, got {value!r}")
