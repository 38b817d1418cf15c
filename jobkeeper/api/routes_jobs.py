"""Jobs: add one, add a batch, read, list and filter, retry, cancel."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from jobkeeper.api import cursors, problems
from jobkeeper.api.access import acting_tenant, may_enqueue, queue_visible, tenant_filter
from jobkeeper.api.auth import Caller, Principal, TenantAdmin
from jobkeeper.api.payloads import unknown_type, validate_payload
from jobkeeper.api.problems import FieldError, field_path
from jobkeeper.api.schemas import (
    BatchCreated,
    BatchRequest,
    JobCreated,
    JobDetail,
    JobOut,
    JobPage,
    JobRequest,
    JobType,
    QueueName,
)
from jobkeeper.api.state import ApiState, State
from jobkeeper.api.tenancy import Ahead
from jobkeeper.catalog import Catalog
from jobkeeper.errors import (
    InvalidJobError,
    InvalidValueError,
    JobFinishedError,
    PayloadTooLargeError,
    UnknownReferenceError,
    UnknownTenantError,
)
from jobkeeper.idempotency import MONEY_TYPES
from jobkeeper.payloads import MAX_DEPTH
from jobkeeper.store import dependencies, jobs
from jobkeeper.types import Job, JobStatus, Page, Tier

PREFIX = "/api/v1/queue"
MAX_PAGE = 500
PAYLOAD_FILTER_PREFIX = "payload."
PAYLOAD_SCAN = 20_000
"""Jobs a payload filter looks at per page (it has no index): a page then holds fewer items than `limit`,
even none, with a `next_cursor` to go on from where it stopped."""

router = APIRouter(prefix=PREFIX, tags=["jobs"])

# Names of the client's options (jobkeeper.enqueue) as the API calls them.
_API_FIELDS = {
    "payload": "data",
    "max_attempts": "options.attempts",
    "priority": "options.priority",
    "delay": "options.delay",
    "run_at": "options.delay",
}


@dataclass(slots=True)
class Prepared:
    catalog: Catalog
    items: list[dict[str, Any]] = field(default_factory=list)
    durable: bool = False


async def _prepare(
    state: ApiState, principal: Principal, requests: list[JobRequest], *, batch: bool
) -> Prepared:
    """Validate every request (all errors at once) and turn it into the client's enqueue options."""
    catalog = await state.client.catalog()
    allow_unknown = state.settings.allow_unknown_types
    if any(
        (r.queue is not None and r.queue not in catalog.queues)
        or (not allow_unknown and r.type not in catalog.job_types)
        for r in requests
    ):
        catalog = await state.client.catalog(refresh=True)
    prepared = Prepared(catalog)
    errors: list[FieldError] = []
    for index, request in enumerate(requests):
        base: tuple[str | int, ...] = ("body", "jobs", index) if batch else ("body",)
        tenant = acting_tenant(principal, request.tenant_id)
        type_error = unknown_type(
            request.type, catalog, allow_unknown, platform=principal.is_platform_admin, prefix=base
        )
        if type_error is not None:
            errors.append(type_error)
        payload_errors = validate_payload(request.type, request.data, (*base, "data"))
        if payload_errors:
            errors.extend(payload_errors)
        else:
            may_enqueue(principal, request.type, request.data, tenant)
        registered = catalog.job_types.get(request.type)
        queue_name = request.queue or (registered.queue if registered else state.settings.default_queue)
        queue = catalog.queues.get(queue_name)
        if queue is None or not queue_visible(queue, tenant):
            names = sorted(q.name for q in catalog.queues.values() if queue_visible(q, tenant))
            errors.append(
                FieldError(
                    field_path((*base, "queue")), f"unknown queue {queue_name!r}; queues: {', '.join(names)}"
                )
            )
            continue
        if request.type in MONEY_TYPES and queue.tier is not Tier.DURABLE:
            errors.append(
                FieldError(
                    field_path((*base, "queue")),
                    f"{request.type} moves money and needs a durable queue; "
                    f"{queue_name!r} is {queue.tier.value}",
                )
            )
        prepared.durable |= queue.tier is Tier.DURABLE
        options = request.options
        delay_ms = options.delay if options else None
        prepared.items.append(
            {
                "type": request.type,
                "payload": request.data,
                "queue": queue_name,
                "priority": options.priority if options else None,
                "max_attempts": options.attempts if options else None,
                "delay": delay_ms / 1000 if delay_ms is not None else None,
                "idempotency_key": request.idempotency_key,
                "tenant_id": tenant,
                "depends_on": request.depends_on,
            }
        )
    if errors:
        raise problems.invalid(errors)
    return prepared


def _client_error(exc: InvalidJobError) -> problems.Problem:
    base = "body" if exc.index is None else f"body.jobs[{exc.index}]"
    where = f"{base}.{_API_FIELDS.get(exc.name, exc.name)}"
    if isinstance(exc, PayloadTooLargeError):
        return problems.payload_too_large(exc.reason, where)
    return problems.invalid([FieldError(where, exc.reason)])


async def _enqueue(state: ApiState, principal: Principal, prepared: Prepared, *, route: str) -> list[Job]:
    # A batch without durable jobs commits asynchronously (docs/concepts.md#durability-tiers); otherwise
    # the server's setting holds.
    # The rate limiter's take runs ahead of the transaction, as a transaction of its own (its row lock is
    # not held until this request commits); a request that fails after a granted take gives it back.
    synchronous = None if prepared.durable else False
    cost = len(prepared.items)
    take = state.limiter.take(principal, cost)
    try:
        async with state.tenancy.transaction(principal, synchronous_commit=synchronous, ahead=take) as tx:
            state.limiter.answer(take, principal, route=route)
            # Types and payloads were checked by `_prepare`, with every error at once, against its catalog.
            return await state.client.enqueue_many(
                prepared.items, conn=tx.conn, validate=False, catalog=prepared.catalog
            )
    except InvalidJobError as exc:
        await _give_back(state, principal, take, cost)
        refused = isinstance(exc, InvalidValueError | UnknownReferenceError)
        if refused and not isinstance(exc, UnknownTenantError):
            raise  # the database refused a value: problems answers it, naming only the field
        raise _client_error(exc) from None
    except BaseException:
        await _give_back(state, principal, take, cost)
        raise


async def _give_back(state: ApiState, principal: Principal, take: Ahead, cost: int) -> None:
    if state.limiter.granted(take):
        await state.limiter.give_back(state.tenancy, principal, cost)


_WRITE_ERRORS = problems.responses(400, 401, 403, 413, 422, 429, 503)
_READ_ERRORS = problems.responses(401, 403, 404, 422, 503)


def _ok(model: type[Any], description: str) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "description": description}}


@router.post(
    "/jobs",
    status_code=201,
    response_model=JobCreated,
    responses=_ok(JobCreated, "Duplicate idempotency key: the original job") | _WRITE_ERRORS,
    summary="Add a job",
)
async def add_job(body: JobRequest, principal: Caller, state: State, response: Response) -> JobCreated:
    prepared = await _prepare(state, principal, [body], batch=False)
    (job,) = await _enqueue(state, principal, prepared, route="/jobs")
    response.headers["Location"] = f"{PREFIX}/jobs/{job.id}"
    if job.deduplicated:
        response.status_code = 200
    return JobCreated.of(job)


@router.post(
    "/jobs/batch",
    status_code=201,
    response_model=BatchCreated,
    responses=_ok(BatchCreated, "Every job was a duplicate") | _WRITE_ERRORS,
    summary="Add up to 100 jobs at once, all or none (admin, venue_admin)",
)
async def add_batch(
    body: BatchRequest, principal: TenantAdmin, state: State, response: Response
) -> BatchCreated:
    prepared = await _prepare(state, principal, body.jobs, batch=True)
    added = await _enqueue(state, principal, prepared, route="/jobs/batch")
    duplicates = sum(1 for job in added if job.deduplicated)
    if duplicates == len(added):
        response.status_code = 200
    return BatchCreated(
        jobs=[JobCreated.of(job) for job in added], created=len(added) - duplicates, deduplicated=duplicates
    )


@router.get("/jobs/{job_id}", response_model=JobDetail, responses=_READ_ERRORS, summary="Get a job")
async def get_job(job_id: uuid.UUID, principal: Caller, state: State) -> JobDetail:
    async with state.tenancy.transaction(principal) as tx:
        job = await tx.run(jobs.get(job_id))
        parents = await tx.run(dependencies.parents(job_id)) if job is not None else []
    if job is None:
        raise problems.not_found("job", job_id)
    detail = JobDetail.of(job)
    detail.depends_on = parents
    return detail


def _payload_filter(request: Request, payload: str | None) -> dict[str, Any] | None:
    """`payload={"orderId":"o-1"}` (JSON, any types) merged with `payload.orderId=o-1` (string equality;
    dots reach into nested objects): one containment document."""
    document: dict[str, Any] = {}
    if payload is not None:
        try:
            parsed = json.loads(payload)
        except ValueError as exc:
            raise problems.invalid([FieldError("query.payload", f"is not valid JSON: {exc}")]) from None
        except RecursionError:  # ~1,000 levels fit in the parameter's length: a 500 before
            raise problems.invalid([FieldError("query.payload", "is nested too deeply")]) from None
        if not isinstance(parsed, dict):
            raise problems.invalid([FieldError("query.payload", "must be a JSON object")])
        document = parsed
    seen: set[str] = set()
    for key, value in request.query_params.multi_items():
        if not key.startswith(PAYLOAD_FILTER_PREFIX):
            continue
        where = f"query.{key}"
        if key in seen:
            raise problems.invalid([FieldError(where, "is given more than once")])
        seen.add(key)
        path = key[len(PAYLOAD_FILTER_PREFIX) :].split(".")
        if any(not part or part.startswith("__") for part in path) or len(path) > MAX_DEPTH:
            raise problems.invalid([FieldError(where, "must name a payload field, e.g. payload.orderId")])
        node = document
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise problems.invalid([FieldError(where, "conflicts with another payload filter")])
            node = child
        node[path[-1]] = value
    return document or None


@router.get("/jobs", response_model=JobPage, responses=_READ_ERRORS, summary="List and filter jobs")
async def list_jobs(
    request: Request,
    principal: Caller,
    state: State,
    status: Annotated[list[JobStatus] | None, Query(description="One or more states")] = None,
    type: Annotated[JobType | None, Query()] = None,
    queue: Annotated[QueueName | None, Query()] = None,
    tenant_id: Annotated[uuid.UUID | None, Query(description="Platform admins only")] = None,
    created_after: Annotated[datetime | None, Query(description="created at or after (ISO 8601)")] = None,
    created_before: Annotated[datetime | None, Query(description="created before (ISO 8601)")] = None,
    payload: Annotated[
        str | None,
        Query(
            max_length=4000,
            description='A JSON object the payload must contain (any value types), e.g. {"orderId":"o-1"}. '
            "Single fields can also be given as `payload.<field>=<text>` query parameters, see the "
            "operation's description.",
            # The text is JSON: declared as such (JSON Schema's content keywords), not as any string.
            json_schema_extra={"contentMediaType": "application/json", "contentSchema": {"type": "object"}},
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=cursors.MAX_CURSOR_LENGTH)] = None,
) -> JobPage:
    """Newest first. Tenants see their own jobs; platform admins every tenant's, or one with `tenant_id`.

    **Payload filters by field**: besides `payload`, any number of query parameters named
    `payload.<field>` (e.g. `payload.orderId=o-1`; dots reach nested fields: `payload.customer.id=7`)
    keep the jobs whose payload holds that field with exactly that text (string equality). They combine
    with `payload` and with each other into one containment test; a field given twice is a 422.

    A payload filter has no index: each page looks at no more than 20,000 jobs past the cursor, so a page
    may hold fewer than `limit` items, even none, and still have a `next_cursor`: follow it until it is
    null to search the whole history."""
    scope = tenant_filter(principal, tenant_id)
    document = _payload_filter(request, payload)
    before_created_at, before_id = cursors.time_and_id(cursor)
    for name, value in (("created_after", created_after), ("created_before", created_before)):
        if value is not None and value.tzinfo is None:
            raise problems.invalid([FieldError(f"query.{name}", "must include a time zone (e.g. Z)")])
    where = jobs.JobFilter(
        tenant_id=scope,
        statuses=[s.value for s in status] if status else None,
        type=type,
        queue=queue,
        created_after=created_after,
        created_before=created_before,
        payload=document,
    )
    before = (
        (before_created_at, before_id) if before_created_at is not None and before_id is not None else None
    )
    async with state.tenancy.transaction(principal) as tx:
        page = await tx.run(jobs.list_page(where, Page(before, limit), scan_limit=PAYLOAD_SCAN))
    # A page that is not full with a next_before: the payload filter's window ended, older jobs may match.
    next_cursor = cursors.encode(*page.next_before) if page.next_before is not None else None
    return JobPage(items=[JobOut.of(job) for job in page.jobs], next_cursor=next_cursor)


@router.post(
    "/jobs/{job_id}/retry",
    response_model=JobDetail,
    responses=_READ_ERRORS | problems.responses(409),
    summary="Retry a failed or cancelled job (admin, venue_admin)",
)
async def retry_job(job_id: uuid.UUID, principal: TenantAdmin, state: State) -> JobDetail:
    """Back to pending with a fresh attempt budget, keeping its error history; its dead letter, if any, is
    marked replayed as this same job."""
    retried = await state.tenancy.found(principal, jobs.retry(job_id), "job", job_id)
    if not retried.changed:
        raise problems.conflict(
            f"job {job_id} is {retried.job.status.value}; only failed or cancelled jobs can be retried"
        )
    return JobDetail.of(retried.job)


@router.delete(
    "/jobs/{job_id}",
    response_model=JobDetail,
    responses=_READ_ERRORS
    | problems.responses(409)
    | {202: {"model": JobDetail, "description": "The job is running: its worker has been asked to stop it"}},
    summary="Cancel a job (admin, venue_admin)",
)
async def cancel_job(job_id: uuid.UUID, principal: TenantAdmin, state: State) -> JSONResponse | JobDetail:
    """A pending job is cancelled at once (200); a running one is asked to stop and ends `cancelled` when its
    worker notices (202); cancelling a cancelled job again is a no-op (200)."""
    try:
        async with state.tenancy.transaction(principal) as tx:
            job = await tx.run(jobs.cancel(job_id))
    except JobFinishedError as exc:
        raise problems.conflict(str(exc)) from None
    if job is None:
        raise problems.not_found("job", job_id)
    detail = JobDetail.of(job)
    if job.status is JobStatus.PROCESSING:
        return JSONResponse(detail.model_dump(mode="json"), status_code=202)
    return detail
