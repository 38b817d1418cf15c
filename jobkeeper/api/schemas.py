"""Request and response bodies of the HTTP API. Requests reject unknown fields (extra="forbid") and are
strict: `"5"` is not a number, `1` and `"yes"` are not booleans (docs/api.md, Validation)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from jobkeeper.api.ratelimit import MAX_BATCH
from jobkeeper.enqueue import MAX_DEPENDENCIES
from jobkeeper.types import DeadLetter, Job

QUEUE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
MAX_DELAY_MS = 10 * 365 * 86400 * 1000


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000), which PostgreSQL cannot store")
    return value


NoNul = AfterValidator(_no_nul)
"""Every free-text input carries this: PostgreSQL text cannot hold NUL, and the database must never be
the one to say so."""

QueueName = Annotated[str, Field(pattern=QUEUE_PATTERN, description="A queue name, e.g. `money`")]
JobType = Annotated[str, Field(min_length=1, max_length=200, description="e.g. `payment-process`"), NoNul]


UuidText = Annotated[uuid.UUID, Strict(False)]
DateTimeText = Annotated[datetime, Strict(False)]
"""JSON has no UUID or date-time: they arrive as text, which a strict model would refuse (FastAPI validates
the parsed body as Python objects), so these two, and only these, are parsed from strings."""

REQUEST = ConfigDict(extra="forbid", strict=True)
"""The configuration of every request body, here and in the route modules that declare their own."""


class _Request(BaseModel):
    model_config = REQUEST


class _DataBody(_Request):
    """A body that carries a job's data, in `data` (docs/decisions.md, "One word for a job's data")."""

    # Python and JSON lines say `payload`: a body that does gets pointed at `data`, not a bare "Extra
    # inputs are not permitted". Hidden from the spec; never set on a valid body.
    payload: SkipJsonSchema[None] = Field(default=None, exclude=True)

    @field_validator("payload", mode="before")
    @classmethod
    def _payload_is_data(cls, value: Any) -> Any:
        raise ValueError("is not a field of the API: a job's data goes in `data` (use `data`, not `payload`)")


class JobOptions(_Request):
    priority: Annotated[StrictInt, Field(ge=1, le=10, description="1 to 10, higher runs first")] | None = None
    delay: (
        Annotated[
            StrictInt, Field(ge=0, le=MAX_DELAY_MS, description="Milliseconds to wait before the job may run")
        ]
        | None
    ) = None
    attempts: Annotated[StrictInt, Field(ge=1, le=1000, description="Attempt budget, 1 to 1000")] | None = (
        None
    )


class JobRequest(_DataBody):
    queue: QueueName | None = Field(
        default=None, description="Defaults to the job type's queue (money, communication, background…)"
    )
    type: JobType
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="The payload. Built-in types are validated by their schema (see components "
        "`Payload_*`); keys beginning with `__` are refused. Stored verbatim.",
    )
    options: JobOptions | None = None
    idempotency_key: Annotated[str, Field(min_length=1, max_length=255), NoNul] | None = Field(
        default=None,
        description="A duplicate key within the type's TTL returns the original job (200). Money types "
        "derive one from their payload when none is given.",
    )
    tenant_id: UuidText | None = Field(
        default=None, description="Platform admins only: enqueue for this tenant (default: the token's)"
    )
    depends_on: (
        Annotated[list[UuidText | Annotated[StrictInt, Field(ge=0)]], Field(max_length=MAX_DEPENDENCIES)]
        | None
    ) = Field(
        default=None,
        description="Ids of jobs of the same tenant (at most 100) that must complete first: the job is "
        "`waiting` until then, and is cancelled if one of them fails or is cancelled. In a batch, an "
        "integer names an earlier job of the same batch by its index.",
    )


class BatchRequest(_Request):
    jobs: Annotated[list[JobRequest], Field(min_length=1, max_length=MAX_BATCH)]


class JobOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    queue: str
    type: str
    data: Any
    status: str
    tier: str
    priority: int
    attempts: int
    max_attempts: int
    last_error: str | None
    result: Any
    progress: Any
    idempotency_key: str | None
    scheduled_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(**_job_fields(job))


class JobDetail(JobOut):
    errors: list[dict[str, Any]] = Field(description="Every failed attempt: at, attempt, type, message")
    depends_on: list[uuid.UUID] | None = Field(
        default=None, description="GET only: the jobs this job depends on (null in other responses)"
    )

    @classmethod
    def of(cls, job: Job) -> JobDetail:
        return cls(**_job_fields(job), errors=job.errors)


class JobCreated(JobOut):
    deduplicated: bool = Field(description="True: the idempotency key was taken; this is the original job")

    @classmethod
    def of(cls, job: Job) -> JobCreated:
        return cls(**_job_fields(job), deduplicated=job.deduplicated)


def _job_fields(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "tenant_id": job.tenant_id,
        "queue": job.queue,
        "type": job.type,
        "data": job.payload,
        "status": job.status.value,
        "tier": job.tier.value,
        "priority": job.priority,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "last_error": job.last_error,
        "result": job.result,
        "progress": job.progress,
        "idempotency_key": job.idempotency_key,
        "scheduled_at": job.scheduled_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }


class BatchCreated(BaseModel):
    jobs: list[JobCreated]
    created: int
    deduplicated: int


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last")


class QueueOut(BaseModel):
    name: str
    tenant_id: uuid.UUID | None = Field(description="null: a shared platform queue")
    tier: str
    max_attempts: int
    backoff: str
    backoff_base_seconds: float
    backoff_max_seconds: float
    timeout_seconds: float
    default_priority: int
    paused: bool


class QueueList(BaseModel):
    items: list[QueueOut]


class QueueCounts(BaseModel):
    waiting: int = Field(description="pending and due")
    scheduled: int = Field(description="pending, due later (delayed or backing off)")
    processing: int
    completed: int
    failed: int
    cancelled: int
    awaiting_dependencies: int = Field(
        description="status `waiting`: jobs whose dependencies have not all completed yet"
    )


class QueueStats(BaseModel):
    queue: str
    tier: str
    paused: bool
    tenant_id: uuid.UUID | None = Field(description="The tenant counted; null: every tenant (platform admin)")
    counts: QueueCounts
    oldest_waiting_seconds: float | None
    dead_letters: int = Field(description="Dead letters not yet replayed")
    measured_at: datetime
    cached: bool = Field(description="True when served from the short-lived statistics cache")


class CleanResult(BaseModel):
    queue: str
    deleted: int
    statuses: list[str]
    more: bool = Field(description="True when the limit was reached: call again to delete more")


class CacheStats(BaseModel):
    name: str
    entries: int
    max_entries: int
    ttl_seconds: float
    hits: int
    misses: int


class CacheFlushed(BaseModel):
    name: str
    flushed: int


class JobTypeDeclaration(_Request):
    name: JobType
    queue: QueueName | None = Field(
        default=None, description="Its default queue, a shared one; a new type without: the default queue"
    )


class JobTypeOut(BaseModel):
    name: str
    queue: str
    max_attempts: int | None
    priority: int | None
    builtin: bool


class JobTypeList(BaseModel):
    items: list[JobTypeOut]


class DeadLetterOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    job_id: uuid.UUID
    queue: str
    type: str
    data: Any
    priority: int
    attempts: int
    max_attempts: int
    last_error: str | None
    errors: list[dict[str, Any]]
    idempotency_key: str | None
    failed_at: datetime
    replayed_at: datetime | None
    replayed_job_id: uuid.UUID | None

    @classmethod
    def of(cls, dead: DeadLetter) -> DeadLetterOut:
        return cls(
            id=dead.id,
            tenant_id=dead.tenant_id,
            job_id=dead.job_id,
            queue=dead.queue,
            type=dead.type,
            data=dead.payload,
            priority=dead.priority,
            attempts=dead.attempts,
            max_attempts=dead.max_attempts,
            last_error=dead.last_error,
            errors=dead.errors,
            idempotency_key=dead.idempotency_key,
            failed_at=dead.failed_at,
            replayed_at=dead.replayed_at,
            replayed_job_id=dead.replayed_job_id,
        )


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: str | None


class DeadLetterSelection(_Request):
    ids: Annotated[list[UuidText], Field(min_length=1, max_length=1000)] | None = None
    queue: QueueName | None = None
    type: JobType | None = None
    tenant_id: UuidText | None = Field(default=None, description="Platform admins only")
    since: DateTimeText | None = Field(default=None, description="failed at or after")
    until: DateTimeText | None = Field(default=None, description="failed before")


class ReplayRequest(DeadLetterSelection):
    limit: Annotated[StrictInt, Field(ge=1, le=1000)] = 100


class PurgeRequest(DeadLetterSelection):
    replayed: bool | None = Field(default=None, description="true: only replayed ones; false: only not")
    all: StrictBool = Field(default=False, description="Must be true to purge with no other criterion")


class ReplayResult(BaseModel):
    replayed: int
    jobs: list[JobOut]


class PurgeResult(BaseModel):
    purged: int


MissedPolicy = Literal["skip", "run_once", "catch_up"]
OverlapPolicy = Literal["allow", "skip"]
Cron = Annotated[
    str,
    Field(
        min_length=9,
        max_length=200,
        description="Five fields (minute hour day month weekday) or six with seconds first",
    ),
    NoNul,
]
Timezone = Annotated[
    str, Field(min_length=1, max_length=64, description="IANA name, e.g. Europe/Paris"), NoNul
]
ScheduleName = Annotated[str, Field(min_length=1, max_length=200), NoNul]


class ScheduleRequest(_DataBody):
    name: ScheduleName
    cron: Cron
    timezone: Timezone = "UTC"
    queue: QueueName | None = None
    type: JobType
    data: dict[str, Any] = Field(default_factory=dict)
    priority: Annotated[StrictInt, Field(ge=1, le=10)] | None = None
    active: StrictBool = True
    missed_policy: MissedPolicy = "skip"
    catch_up_window_seconds: Annotated[float, Field(gt=0, le=30 * 86400)] = 3600.0
    overlap_policy: OverlapPolicy = "allow"
    tenant_id: UuidText | None = Field(default=None, description="Platform admins only")


def _as_refused(schema: dict[str, Any]) -> None:
    """ScheduleUpdate's spec: no field has a default (left out: unchanged), and null is declared only for
    `priority`, the one field that takes it."""
    for name, field in schema.get("properties", {}).items():
        field.pop("default", None)
        branches = field.get("anyOf", [])
        if name != "priority" and {"type": "null"} in branches:
            branches.remove({"type": "null"})
            if len(branches) == 1:
                del field["anyOf"]
                field.update(branches[0])


class ScheduleUpdate(_DataBody):
    """Only the fields given change. Every field but `priority` (null: the queue's default) refuses null."""

    model_config = REQUEST | ConfigDict(json_schema_extra=_as_refused)

    name: ScheduleName | None = None
    cron: Cron | None = None
    timezone: Timezone | None = None
    queue: QueueName | None = None
    type: JobType | None = None
    data: dict[str, Any] | None = None
    priority: Annotated[StrictInt, Field(ge=1, le=10)] | None = None
    active: StrictBool | None = None
    missed_policy: MissedPolicy | None = None
    catch_up_window_seconds: Annotated[float, Field(gt=0, le=30 * 86400)] | None = None
    overlap_policy: OverlapPolicy | None = None

    @field_validator(
        "name",
        "cron",
        "timezone",
        "queue",
        "type",
        "data",
        "active",
        "missed_policy",
        "catch_up_window_seconds",
        "overlap_policy",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null; leave the field out to keep its value")
        return value


class ScheduleOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    cron: str
    timezone: str
    queue: str
    type: str
    data: Any
    priority: int | None
    active: bool
    missed_policy: str
    catch_up_window_seconds: float
    overlap_policy: str
    last_run_at: datetime | None
    next_run_at: datetime | None
    last_job_id: uuid.UUID | None
    missed_runs: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: dict[str, Any]) -> ScheduleOut:
        fields = dict(row)
        fields["type"] = fields.pop("job_type")
        fields["data"] = fields.pop("payload")
        return cls(**fields)


class SchedulePage(BaseModel):
    items: list[ScheduleOut]
    next_cursor: str | None


class AlertOut(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID | None = Field(description="null: a platform alert (visible to admins)")
    queue: str | None
    rule: str
    severity: str
    message: str
    details: Any
    deliveries: Any
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    created_at: datetime


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None


class Check(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, Check]


class Liveness(BaseModel):
    status: Literal["ok"]


class ServiceInfo(BaseModel):
    service: str
    version: str
    api: str
    docs: str
    openapi: str
    metrics: str
