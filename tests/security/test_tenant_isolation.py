"""Tenant isolation, property-based (issue 10, item 9): random programs of operations by two tenants' venue
admins and users, through every tenant-scoped endpoint of the API and through the Python client on a
tenant-scoped connection. After every operation:

- no answer names anything of the other tenant (its jobs, dead letters, schedules, alerts or its id);
- the other tenant's rows in every tenant table (found from the catalog, so new tables are covered) are
  exactly as they were;
- an operation aimed at the other tenant's record answers 404 (403 where the role may not act at all),
  never a success or a conflict that would reveal its state; lists and statistics count own rows only;
- nothing answers 5xx.

Deterministic (derandomize, no example database) and bounded (MAX_EXAMPLES programs of up to MAX_STEPS
operations), so CI sees the same runs every time. tests/api/ checks each endpoint's isolation once by
hand; this explores sequences of them (a replay after a purge, a retry of a job another tenant cancelled…).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg import sql

from jobkeeper.api.auth import Role
from jobkeeper.api.state import ApiState
from jobkeeper.client import Client
from tests.api.support import Conn, dead_letter, insert_alert, insert_job, running
from tests.fixtures import Tokens

# psycopg_pool's background tasks (new connections, reconnect delays) draw from the global `random` for
# their jitter; when one runs while hypothesis generates an example, hypothesis reports "random used inside
# a strategy" (a deprecation, an error here). The draws do not touch hypothesis's own choices.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies:hypothesis.errors.HypothesisDeprecationWarning"
)
MAX_EXAMPLES = 40
MAX_STEPS = 10
P = "/api/v1/queue"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SMS = {"type": "send-sms", "data": {"to": "+14155552671", "body": "hi"}}
SCHEDULE = {"cron": "0 3 * * *", "type": "generate-report", "data": {"hours": 24}}

# Tables with tenant rows: every table of the schema with a tenant_id column (partitions excluded).
TENANT_TABLES = """
SELECT c.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
WHERE n.nspname = 'jobkeeper' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname
"""

KINDS = {"job": "jobs", "dead_letter": "dead_letter_jobs", "schedule": "schedules", "alert": "alert_history"}


@dataclass(frozen=True)
class Actor:
    tenant: str  # "a" or "b"
    role: Role

    @property
    def other(self) -> str:
        return "b" if self.tenant == "a" else "a"


@dataclass(frozen=True)
class Step:
    actor: Actor
    op: str
    aim: str
    """Whose record a targeted operation aims at: "other" (the interesting case, drawn twice as often) or
    "own"."""
    pick: int
    """Which of that tenant's records (modulo how many there are)."""
    variant: int

    @property
    def target_tenant(self) -> str:
        return self.actor.other if self.aim == "other" else self.actor.tenant


# Venue admins twice as often as users: a user's writes all end at the role check.
ACTORS = [Actor(t, r) for t in ("a", "b") for r in (Role.VENUE_ADMIN, Role.VENUE_ADMIN, Role.USER)]
# operation -> (kind of record it targets or None, least role: USER or VENUE_ADMIN)
OPERATIONS: dict[str, tuple[str | None, Role]] = {
    "add_job": (None, Role.USER),
    "add_job_naming_tenant": (None, Role.USER),
    "add_batch": (None, Role.VENUE_ADMIN),
    "list_jobs": (None, Role.USER),
    "list_jobs_naming_tenant": (None, Role.USER),
    "get_job": ("job", Role.USER),
    "retry_job": ("job", Role.VENUE_ADMIN),
    "cancel_job": ("job", Role.VENUE_ADMIN),
    "list_dead_letters": (None, Role.USER),
    "get_dead_letter": ("dead_letter", Role.USER),
    "replay_dead_letter": ("dead_letter", Role.VENUE_ADMIN),
    "replay_dead_letters_by_id": ("dead_letter", Role.VENUE_ADMIN),
    "replay_all_dead_letters": (None, Role.VENUE_ADMIN),
    "purge_dead_letters": (None, Role.VENUE_ADMIN),
    "delete_dead_letter": ("dead_letter", Role.VENUE_ADMIN),
    "create_schedule": (None, Role.VENUE_ADMIN),
    "list_schedules": (None, Role.USER),
    "get_schedule": ("schedule", Role.USER),
    "update_schedule": ("schedule", Role.VENUE_ADMIN),
    "pause_schedule": ("schedule", Role.VENUE_ADMIN),
    "resume_schedule": ("schedule", Role.VENUE_ADMIN),
    "delete_schedule": ("schedule", Role.VENUE_ADMIN),
    "list_alerts": (None, Role.USER),
    "get_alert": ("alert", Role.USER),
    "acknowledge_alert": ("alert", Role.VENUE_ADMIN),
    "queue_stats": (None, Role.USER),
    "queues": (None, Role.USER),
    "limiters": (None, Role.USER),
    "queue_metrics": (None, Role.USER),
    "client_enqueue_for_other": (None, Role.USER),
    "client_cancel": ("job", Role.USER),
}

steps = st.builds(
    Step,
    actor=st.sampled_from(ACTORS),
    op=st.sampled_from(sorted(OPERATIONS)),
    aim=st.sampled_from(["other", "other", "own"]),
    pick=st.integers(0, 7),
    variant=st.integers(0, 3),
)
programs = st.lists(steps, min_size=1, max_size=MAX_STEPS)
# Run first, whatever hypothesis draws: every operation by every role, aimed at the other tenant, then at its
# own records, so each endpoint is always covered both ways.
SWEEP = [
    Step(Actor(tenant, role), op, aim, pick, 0)
    for aim in ("other", "own")
    for tenant, pick in (("a", 0), ("b", 1))
    for role in (Role.VENUE_ADMIN, Role.USER)
    for op in sorted(OPERATIONS)
]


class World:
    """The app, both tenants, and the owner's view of the database (the truth the answers are held to)."""

    def __init__(
        self, http: httpx.AsyncClient, tokens: Tokens, owner: Conn, client: Client, url: str
    ) -> None:
        self.http = http
        self.tokens = tokens
        self.owner = owner
        self.client = client
        self.url = url
        self.ids = {"a": tokens.tenants.a, "b": tokens.tenants.b}
        self.tables: list[str] = []
        self.created = 0

    def headers(self, actor: Actor) -> dict[str, str]:
        return self.tokens.headers(actor.role, self.ids[actor.tenant], subject=f"{actor.role}-{actor.tenant}")

    async def records(self, tenant: str, kind: str) -> list[uuid.UUID]:
        table = sql.Identifier("jobkeeper", KINDS[kind])
        cur = await self.owner.execute(
            sql.SQL("SELECT id FROM {} WHERE tenant_id = %s ORDER BY created_at, id").format(table),
            (self.ids[tenant],),
        )
        return [row[0] for row in await cur.fetchall()]

    async def exists(self, kind: str, ident: uuid.UUID) -> bool:
        table = sql.Identifier("jobkeeper", KINDS[kind])
        cur = await self.owner.execute(sql.SQL("SELECT 1 FROM {} WHERE id = %s").format(table), (ident,))
        return await cur.fetchone() is not None

    async def identifiers(self, tenant: str) -> set[str]:
        """Every id of the tenant's records, and the tenant's own id."""
        parts = [
            sql.SQL("SELECT id FROM {} WHERE tenant_id = %(t)s").format(sql.Identifier("jobkeeper", table))
            for table in KINDS.values()
        ]
        cur = await self.owner.execute(sql.SQL(" UNION ALL ").join(parts), {"t": self.ids[tenant]})
        return {str(self.ids[tenant])} | {str(row[0]) for row in await cur.fetchall()}

    async def fingerprint(self, tenant: str) -> list[tuple[str, int, str]]:
        """A digest of the tenant's rows in every tenant table, in one round trip."""
        if not self.tables:
            cur = await self.owner.execute(TENANT_TABLES)
            self.tables = [row[0] for row in await cur.fetchall()]
        parts = [
            sql.SQL(
                "SELECT {name}, count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), ''))"
                " FROM {table} t WHERE tenant_id = %(t)s"
            ).format(name=sql.Literal(name), table=sql.Identifier("jobkeeper", name))
            for name in self.tables
        ]
        cur = await self.owner.execute(sql.SQL(" UNION ALL ").join(parts), {"t": self.ids[tenant]})
        return [(row[0], int(row[1]), row[2]) for row in await cur.fetchall()]


async def _count_jobs(world: World, tenant: str, queue: str) -> dict[str, int]:
    cur = await world.owner.execute(
        "SELECT status, count(*) FROM jobkeeper.jobs WHERE tenant_id = %s AND queue = %s GROUP BY status",
        (world.ids[tenant], queue),
    )
    return {status: int(n) for status, n in await cur.fetchall()}


async def _client_step(world: World, step: Step, target: uuid.UUID | None) -> str:
    """The Python client on a connection scoped like an API request (role jobkeeper_api, the actor's tenant);
    the answer is a text standing in for an HTTP body."""
    async with await psycopg.AsyncConnection.connect(world.url) as conn:
        try:
            async with conn.transaction():
                await conn.execute("SET LOCAL ROLE jobkeeper_api")
                await conn.execute(
                    "SELECT set_config('jobkeeper.tenant_id', %s, true)", (str(world.ids[step.actor.tenant]),)
                )
                if step.op == "client_enqueue_for_other":
                    job = await world.client.enqueue(
                        "send-sms", SMS["data"], tenant_id=world.ids[step.actor.other], conn=conn
                    )
                    raise AssertionError(f"enqueued {job.id} for the other tenant")
                assert target is not None
                cancelled = await world.client.cancel(target, conn=conn)
                return repr(cancelled)
        except AssertionError:
            raise
        except Exception as exc:  # refused by row-level security: what matters is that nothing changed
            return type(exc).__name__


async def pick(world: World, step: Step) -> uuid.UUID | None:
    """The record a targeted step aims at: one of the target tenant's, or an unknown id when it has none."""
    kind, _ = OPERATIONS[step.op]
    if kind is None:
        return None
    found = await world.records(step.target_tenant, kind)
    return found[step.pick % len(found)] if found else None


async def run_step(world: World, step: Step, target: uuid.UUID | None) -> tuple[int, str]:
    """Perform one step; returns (HTTP status or 0 for the client, the answer's text)."""
    actor, op = step.actor, step.op
    if OPERATIONS[op][0] is not None and target is None:
        target = uuid.uuid4()
    headers = world.headers(actor)
    other = str(world.ids[actor.other])
    http = world.http
    response: httpx.Response
    if op.startswith("client_"):
        return 0, await _client_step(world, step, target)
    world.created += 1
    if op == "add_job":
        data = {"to": "+14155552671", "body": f"n{world.created}"}
        response = await http.post(f"{P}/jobs", json={"type": "send-sms", "data": data}, headers=headers)
    elif op == "add_job_naming_tenant":
        response = await http.post(f"{P}/jobs", json=SMS | {"tenant_id": other}, headers=headers)
    elif op == "add_batch":
        batch = {"jobs": [SMS, SMS | {"tenant_id": other}] if step.variant == 0 else [SMS, SMS]}
        response = await http.post(f"{P}/jobs/batch", json=batch, headers=headers)
    elif op == "list_jobs":
        filters: list[dict[str, Any]] = [
            {},
            {"status": ["failed", "cancelled"]},
            {"type": "send-sms"},
            {"payload.to": "+14155552671"},
        ]
        params = filters[step.variant]
        response = await http.get(f"{P}/jobs", params=params | {"limit": 500}, headers=headers)
    elif op == "list_jobs_naming_tenant":
        response = await http.get(f"{P}/jobs", params={"tenant_id": other}, headers=headers)
    elif op == "get_job":
        response = await http.get(f"{P}/jobs/{target}", headers=headers)
    elif op == "retry_job":
        response = await http.post(f"{P}/jobs/{target}/retry", headers=headers)
    elif op == "cancel_job":
        response = await http.delete(f"{P}/jobs/{target}", headers=headers)
    elif op == "list_dead_letters":
        response = await http.get(f"{P}/dead-letters", params={"limit": 1000}, headers=headers)
    elif op == "get_dead_letter":
        response = await http.get(f"{P}/dead-letters/{target}", headers=headers)
    elif op == "replay_dead_letter":
        response = await http.post(f"{P}/dead-letters/{target}/replay", headers=headers)
    elif op == "replay_dead_letters_by_id":
        response = await http.post(f"{P}/dead-letters/replay", json={"ids": [str(target)]}, headers=headers)
    elif op == "replay_all_dead_letters":
        response = await http.post(f"{P}/dead-letters/replay", json={"limit": 1000}, headers=headers)
    elif op == "purge_dead_letters":
        body: dict[str, Any] = {"all": True} if step.variant < 2 else {"queue": "communication"}
        response = await http.post(f"{P}/dead-letters/purge", json=body, headers=headers)
    elif op == "delete_dead_letter":
        response = await http.delete(f"{P}/dead-letters/{target}", headers=headers)
    elif op == "create_schedule":
        body = SCHEDULE | {"name": f"s-{world.created}"}
        response = await http.post(f"{P}/schedules", json=body, headers=headers)
    elif op == "list_schedules":
        response = await http.get(f"{P}/schedules", params={"limit": 500}, headers=headers)
    elif op == "get_schedule":
        response = await http.get(f"{P}/schedules/{target}", headers=headers)
    elif op == "update_schedule":
        response = await http.patch(f"{P}/schedules/{target}", json={"priority": 3}, headers=headers)
    elif op in ("pause_schedule", "resume_schedule"):
        response = await http.post(f"{P}/schedules/{target}/{op.removesuffix('_schedule')}", headers=headers)
    elif op == "delete_schedule":
        response = await http.delete(f"{P}/schedules/{target}", headers=headers)
    elif op == "list_alerts":
        response = await http.get(f"{P}/alerts", params={"limit": 500}, headers=headers)
    elif op == "get_alert":
        response = await http.get(f"{P}/alerts/{target}", headers=headers)
    elif op == "acknowledge_alert":
        response = await http.post(f"{P}/alerts/{target}/acknowledge", headers=headers)
    elif op == "queue_stats":
        queue = ["communication", "money", "background", "communication"][step.variant]
        response = await http.get(f"{P}/queues/{queue}/stats", headers=headers)
        if response.status_code == 200:
            counts = response.json()["counts"]
            truth = await _count_jobs(world, actor.tenant, queue)
            finished = {k: counts[k] for k in ("processing", "completed", "failed", "cancelled")}
            assert finished == {k: truth.get(k, 0) for k in finished}, (finished, truth)
            assert counts["waiting"] + counts["scheduled"] == truth.get("pending", 0)
    elif op == "queues":
        response = await http.get(f"{P}/queues", headers=headers)
    elif op == "limiters":
        response = await http.get(f"{P}/limiters", headers=headers)
    elif op == "queue_metrics":
        response = await http.get(f"{P}/queues/communication/metrics", headers=headers)
    else:  # pragma: no cover - every operation is handled above
        raise AssertionError(op)
    return response.status_code, response.text


def expected(step: Step, status: int, text: str, existed: bool) -> str | None:
    """What is wrong with `status` for this step, or None."""
    kind, least = OPERATIONS[step.op]
    if status >= 500:
        return "a server error"
    if step.op.startswith("client_"):
        return None
    if least is Role.VENUE_ADMIN and step.actor.role is Role.USER:
        return None if status == 403 else "a user did what only a tenant admin may"
    if step.op in ("add_job_naming_tenant", "list_jobs_naming_tenant"):
        return None if status == 403 else "named the other tenant and was not refused"
    if step.op == "add_batch" and step.variant == 0:
        return None if status == 403 else "a batch naming the other tenant was not refused"
    if kind is None:
        return None if status < 400 else f"an operation on its own records failed ({status})"
    if step.target_tenant != step.actor.tenant:
        if step.op == "replay_dead_letters_by_id":  # a selection: the other tenant's ids select nothing
            selected_nothing = status < 300 and '"replayed":0' in text.replace(" ", "")
            return None if selected_nothing else "a replay naming another tenant's dead letter selected it"
        return None if status == 404 else "reached the other tenant's record"
    if status == 404 and existed:
        return "its own record was not found"
    return None


@pytest.fixture
async def world(
    make_app: Callable[..., FastAPI], tokens: Tokens, owner: Conn, db_url: str
) -> AsyncIterator[World]:
    """Both tenants with jobs in every state, dead letters, alerts and a schedule; an app without a statistics
    cache (so counts can be compared) and with rate limits out of the way."""
    for key in ("a", "b"):
        tenant = tokens.tenants.a if key == "a" else tokens.tenants.b
        for status in ("pending", "processing", "completed", "failed", "cancelled"):
            await insert_job(owner, tenant, status=status)
        for _ in range(2):
            await dead_letter(owner, tenant)
        await insert_alert(owner, tenant)
    await insert_alert(owner, None)  # platform-wide: visible to platform admins only
    app = make_app(api_stats_cache_ttl=0.0, api_rate_burst=100_000, api_rate_per_second=100_000.0)
    async with running(app) as http:
        state: ApiState = app.state.api
        world = World(http, tokens, owner, state.client, db_url)
        for key in ("a", "b"):
            venue = world.headers(Actor(key, Role.VENUE_ADMIN))
            created = await http.post(f"{P}/schedules", json=SCHEDULE | {"name": "seeded"}, headers=venue)
            assert created.status_code == 201, created.text
        yield world


@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(program=SWEEP)
@given(program=programs)
async def test_no_operation_crosses_tenants(world: World, program: list[Step]) -> None:
    for step in program:
        other = step.actor.other
        before = await world.fingerprint(other)
        foreign = await world.identifiers(other)
        target = await pick(world, step)
        status, text = await run_step(world, step, target)
        # The id the caller sent may come back in a 404's detail: that reveals nothing it did not know.
        leaked = set(UUID.findall(text)) & foreign - {str(target)}
        assert not leaked, f"{step}: the answer names the other tenant's {sorted(leaked)}"
        assert await world.fingerprint(other) == before, f"{step}: the other tenant's rows changed"
        problem = expected(step, status, text, existed=target is not None)
        assert problem is None, f"{step}: {problem}: {status} {text[:300]}"
