"""The store's operations on jobs, dependencies and tenants (jobkeeper/store/jobs.py, dependencies.py,
tenants.py) against the real database, each test in a transaction rolled back after it."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from jobkeeper.catalog import Catalog, catalog_from_rows
from jobkeeper.config import Settings
from jobkeeper.enqueue import prepare
from jobkeeper.errors import InvalidJobError, JobFinishedError
from jobkeeper.store import dependencies, jobs, tenants
from jobkeeper.store.run import Steps, named, run_sync
from jobkeeper.types import JobStatus, Page

SETTINGS = Settings.from_env({})


def _catalog() -> Steps[Catalog]:
    queues = yield named("load_queues")
    types = yield named("load_job_types")
    return catalog_from_rows(queues, types)


def _insert(conn: psycopg.Connection[Any], items: list[dict[str, Any]]) -> list[Any]:
    batch = prepare(items, run_sync(conn, _catalog()), SETTINGS, validate=False)
    return run_sync(conn, jobs.insert_many(batch, own_transaction=False))


def _job(n: int, **extra: Any) -> dict[str, Any]:
    return {"type": "store-test", "payload": {"n": n}, "idempotency_key": False, **extra}


def test_insert_many_returns_the_jobs_in_order_and_originals_for_taken_keys(
    conn: psycopg.Connection[Any],
) -> None:
    key = uuid.uuid4().hex
    first, second = _insert(conn, [_job(1, idempotency_key=key), _job(2)])
    again = _insert(conn, [_job(3, idempotency_key=key)])
    assert [first.payload, second.payload] == [{"n": 1}, {"n": 2}]
    assert again[0].id == first.id
    assert again[0].deduplicated
    assert run_sync(conn, jobs.get(first.id)) == first
    assert {j.id for j in run_sync(conn, jobs.get_many([first.id, second.id]))} == {first.id, second.id}
    assert run_sync(conn, jobs.get(uuid.uuid4())) is None


def test_insert_many_links_parents_and_refuses_a_missing_one_at_its_index(
    conn: psycopg.Connection[Any],
) -> None:
    parent, child = _insert(conn, [_job(1), _job(2, depends_on=[0])])
    assert child.status is JobStatus.WAITING
    assert run_sync(conn, dependencies.parents(child.id)) == [parent.id]
    relations = run_sync(conn, dependencies.related(parent.id))
    assert [(r["relation"], r["id"]) for r in relations] == [("child", child.id)]
    with pytest.raises(InvalidJobError) as refused:
        _insert(conn, [_job(3), _job(4, depends_on=[str(uuid.uuid4())])])
    assert (refused.value.index, refused.value.name, refused.value.field) == (
        1,
        "depends_on",
        "jobs[1].depends_on",
    )


def test_cancel_settles_the_dependents_and_refuses_a_finished_job(conn: psycopg.Connection[Any]) -> None:
    parent, child = _insert(conn, [_job(1), _job(2, depends_on=[0])])
    cancelled = run_sync(conn, jobs.cancel(parent.id))
    assert cancelled is not None
    assert cancelled.status is JobStatus.CANCELLED
    settled = run_sync(conn, jobs.get(child.id))
    assert settled is not None
    assert settled.status is JobStatus.CANCELLED
    assert run_sync(conn, jobs.cancel(uuid.uuid4())) is None
    (done,) = _insert(conn, [_job(3)])
    conn.execute(
        "UPDATE jobkeeper.jobs SET status = 'completed', completed_at = now() WHERE id = %s", (done.id,)
    )
    with pytest.raises(JobFinishedError):
        run_sync(conn, jobs.cancel(done.id))


def test_retry_says_whether_the_job_changed(conn: psycopg.Connection[Any]) -> None:
    (job,) = _insert(conn, [_job(1)])
    pending = run_sync(conn, jobs.retry(job.id))
    assert pending is not None
    assert not pending.changed
    run_sync(conn, jobs.cancel(job.id))
    retried = run_sync(conn, jobs.retry(job.id))
    assert retried is not None
    assert retried.changed
    assert retried.job.status is JobStatus.PENDING
    assert run_sync(conn, jobs.retry(uuid.uuid4())) is None


def test_list_page_pages_newest_first_and_a_payload_window_gives_its_edge(
    conn: psycopg.Connection[Any],
) -> None:
    tag = uuid.uuid4().hex
    made = _insert(conn, [_job(n, payload={"tag": tag, "n": n}) for n in range(5)])
    where = jobs.JobFilter(payload={"tag": tag})
    page = run_sync(conn, jobs.list_page(where, Page(None, 2), scan_limit=1000))
    assert len(page.jobs) == 2
    assert page.next_before == (page.jobs[-1].created_at, page.jobs[-1].id)
    rest = run_sync(conn, jobs.list_page(where, Page(page.next_before, 10), scan_limit=1000))
    assert {j.id for j in page.jobs + rest.jobs} == {j.id for j in made}
    assert rest.next_before is None
    narrow = run_sync(
        conn, jobs.list_page(jobs.JobFilter(payload={"tag": "none"}), Page(None, 10), scan_limit=1)
    )
    assert narrow.jobs == []
    assert narrow.next_before is not None


def test_bulk_count_cancel_and_retry_by_filter(conn: psycopg.Connection[Any]) -> None:
    tag = uuid.uuid4().hex
    _parent, child = _insert(
        conn, [_job(1, payload={"tag": tag}), _job(2, payload={"x": tag}, depends_on=[0])]
    )
    where = jobs.JobFilter(payload={"tag": tag})
    assert run_sync(conn, jobs.count_actionable(where, ["pending"], 10)) == 1
    assert run_sync(conn, jobs.cancel_matching(where, 10)) == 1
    settled = run_sync(conn, jobs.get(child.id))
    assert settled is not None
    assert settled.status is JobStatus.CANCELLED
    assert run_sync(conn, jobs.retry_matching(where, 10)) == 1


def test_detail_and_diagnose_read_one_job(conn: psycopg.Connection[Any]) -> None:
    (job,) = _insert(conn, [_job(1)])
    detail = run_sync(conn, jobs.detail(job.id))
    assert detail is not None
    assert detail["id"] == job.id
    assert "tenant_name" in detail
    diagnosis = run_sync(conn, jobs.diagnose(job.id, 60.0))
    assert diagnosis is not None
    assert diagnosis["status"] == "pending"
    assert run_sync(conn, jobs.detail(uuid.uuid4())) is None


def test_prunes_count_what_they_delete(conn: psycopg.Connection[Any]) -> None:
    assert run_sync(conn, jobs.prune_finished(older_than=3600.0, now=None, limit=10)) >= 0
    assert run_sync(conn, jobs.prune_idempotency_keys(now=None, limit=10)) >= 0


def test_sweep_settles_and_finished_parents_reads_tuples(conn: psycopg.Connection[Any]) -> None:
    parent, child = _insert(conn, [_job(1), _job(2, depends_on=[0])])
    conn.execute(
        "UPDATE jobkeeper.jobs SET status = 'completed', completed_at = now() WHERE id = %s", (parent.id,)
    )
    swept = run_sync(conn, dependencies.sweep(1000))
    assert (child.id, "pending", False) in swept
    assert dependencies.finished_parents([(parent.id, "completed", True), (child.id, "pending", True)]) == [
        parent.id
    ]
    assert run_sync(conn, dependencies.settle([parent.id])) == []  # already settled: idempotent


def test_tenants_missing_and_list(conn: psycopg.Connection[Any]) -> None:
    unknown = uuid.uuid4()
    assert run_sync(conn, tenants.missing([SETTINGS.default_tenant, unknown])) == [unknown]
    assert SETTINGS.default_tenant in {row["id"] for row in run_sync(conn, tenants.list_all())}
