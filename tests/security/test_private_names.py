"""No tenant-private name reaches another tenant or an anonymous caller (issue 15 #3).

Tenant B has a queue of its own and a job type registered on it; a live worker serves both, next to shared
ones. Tenant A's dashboard (overview, its live fragment, the limiters page) and an anonymous /metrics
scrape never show either name; B and the platform admin see them, and so does a scraper that sends
JOBKEEPER_METRICS_TOKEN (without which, once set, /metrics answers 401).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from jobkeeper import Settings
from jobkeeper.api.auth import Role, mint_token
from jobkeeper.api.metrics import PRIVATE
from jobkeeper.dashboard.session import COOKIE
from tests.api.support import Conn, assert_problem, insert_job, running
from tests.fixtures import Tenants

SCRAPE_TOKEN = "scrape-" + "x" * 24


@dataclass(frozen=True)
class Private:
    queue: str
    job_type: str


@pytest.fixture
async def private(owner: Conn, tenants: Tenants) -> Private:
    """B's queue and job type (on the shared `stripe` limiter), a live worker serving them and shared
    ones, and jobs of B's in every state the metrics count."""
    suffix = uuid.uuid4().hex[:8]
    names = Private(queue=f"b-private-{suffix}", job_type=f"b-secret-type-{suffix}")
    await owner.execute(
        """
        INSERT INTO jobkeeper.queues (name, tenant_id, tier, max_attempts, backoff, backoff_base_seconds,
                                      backoff_max_seconds, timeout_seconds, default_priority)
        VALUES (%s, %s, 'durable', 3, 'exponential', 1, 60, 30, 5)
        """,
        (names.queue, tenants.b),
    )
    await owner.execute(
        "INSERT INTO jobkeeper.job_types (name, queue, limiter) VALUES (%s, %s, 'stripe')",
        (names.job_type, names.queue),
    )
    await owner.execute(
        "INSERT INTO jobkeeper.workers (hostname, pid, queues, job_types, concurrency) "
        "VALUES (%s, %s, %s, %s, 4)",
        (
            f"host-{suffix}",
            os.getpid(),
            ["background", names.queue],
            ["generate-report", names.job_type],
        ),
    )
    for status in ("pending", "processing", "completed", "failed"):
        await insert_job(
            owner, tenants.b, status=status, queue=names.queue, job_type=names.job_type, run_seconds=0.5
        )
    # a type of B's own name in a shared queue: not registered there, so private too
    await insert_job(owner, tenants.b, status="completed", queue="background", job_type=names.job_type)
    return names


def _dashboard(settings: Settings, role: Role, tenant: uuid.UUID) -> dict[str, str]:
    token = mint_token(settings, role=role, tenant_id=tenant, subject="viewer", ttl_seconds=600)
    return {"Cookie": f"{COOKIE}={token}"}


async def _pages(http: httpx.AsyncClient, headers: dict[str, str]) -> str:
    texts = []
    for path in ("/dashboard/", "/dashboard/fragments/overview", "/dashboard/limiters"):
        response = await http.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        texts.append(response.text)
    return "\n".join(texts)


async def test_a_tenant_never_sees_another_tenants_queue_or_handler_names(
    http: httpx.AsyncClient, settings: Settings, tenants: Tenants, private: Private
) -> None:
    for role in (Role.USER, Role.VENUE_ADMIN):
        seen_by_a = await _pages(http, _dashboard(settings, role, tenants.a))
        assert private.queue not in seen_by_a, role
        assert private.job_type not in seen_by_a, role
        assert "generate-report" in seen_by_a  # the shared names of the same worker stay
        assert "background" in seen_by_a
    seen_by_b = await _pages(http, _dashboard(settings, Role.USER, tenants.b))
    assert private.queue in seen_by_b
    assert private.job_type in seen_by_b
    seen_by_admin = await _pages(http, _dashboard(settings, Role.ADMIN, tenants.a))
    assert private.queue in seen_by_admin
    assert private.job_type in seen_by_admin


async def test_an_anonymous_scrape_shows_private_names_only_summed(
    http: httpx.AsyncClient, private: Private
) -> None:
    for path in ("/metrics", "/api/v1/queue/metrics/prometheus"):
        response = await http.get(path)
        assert response.status_code == 200
        text = response.text
        assert private.queue not in text
        assert private.job_type not in text
        assert f'jobkeeper_queue_depth{{queue="{PRIVATE}",state="processing"}}' in text
        assert f'queue="{PRIVATE}",result="failed"' in text
        assert f'jobkeeper_job_duration_seconds_count{{queue="{PRIVATE}",type="{PRIVATE}"}}' in text
        assert f'jobkeeper_job_duration_seconds_count{{queue="background",type="{PRIVATE}"}}' in text
        assert 'jobkeeper_queue_depth{queue="money",state="waiting"}' in text  # shared names stay


async def test_with_a_scrape_token_only_its_holder_may_scrape_and_sees_every_name(
    make_app: Callable[..., FastAPI], private: Private
) -> None:
    async with running(make_app(metrics_token=SCRAPE_TOKEN)) as http:
        for path in ("/metrics", "/api/v1/queue/metrics/prometheus"):
            refused = assert_problem(await http.get(path), 401)
            assert "scrape token" in refused["detail"]
            for wrong in ("Bearer nope", f"Basic {SCRAPE_TOKEN}", f"Bearer {SCRAPE_TOKEN}x"):
                response = await http.get(path, headers={"Authorization": wrong})
                assert_problem(response, 401)
                assert SCRAPE_TOKEN not in response.text
            scraped = await http.get(path, headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
            assert scraped.status_code == 200
            assert f'queue="{private.queue}"' in scraped.text
            assert f'type="{private.job_type}"' in scraped.text
            assert PRIVATE not in scraped.text


def test_the_scrape_token_must_be_long_and_is_never_printed() -> None:
    from jobkeeper.errors import ConfigError

    with pytest.raises(ConfigError, match="JOBKEEPER_METRICS_TOKEN must be at least 16 bytes") as refused:
        Settings.from_env({"JOBKEEPER_METRICS_TOKEN": "short-secret"})
    assert "short-secret" not in str(refused.value)
    settings = Settings.from_env({"JOBKEEPER_METRICS_TOKEN": SCRAPE_TOKEN})
    assert settings.metrics_token == SCRAPE_TOKEN
    assert SCRAPE_TOKEN not in repr(settings)
