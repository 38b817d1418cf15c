"""Job-list paging at scale, made visible with a small window (docs/api.md, "List jobs"): the payload
filter's bounded window goes on from where it ended, so following `next_cursor` finds every match; a queue
filter reads only its tier's partition and still finds every job of the queue."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from jobkeeper.api import routes_jobs
from jobkeeper.store.queries import query_infos
from tests.api.support import Conn, create_queue, insert_job, running
from tests.fixtures import Tokens

JOBS = "/api/v1/queue/jobs"


async def test_a_payload_filter_finds_every_match_across_its_windows(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes_jobs, "PAYLOAD_SCAN", 4)
    wanted = []
    for n in range(13):  # oldest first: matches at n = 0, 5 and 10
        order = "wanted" if n % 5 == 0 else f"o-{n}"
        job = await insert_job(owner, tokens.tenants.a, payload={"orderId": order, "n": n})
        if order == "wanted":
            wanted.append(str(job))
    await insert_job(owner, tokens.tenants.b, payload={"orderId": "wanted"})
    found: list[str] = []
    pages = 0
    cursor: str | None = None
    short_pages = 0
    while True:
        params: dict[str, str | int] = {"payload.orderId": "wanted", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await http.get(JOBS, params=params, headers=tokens.user_a)).json()
        found += [item["id"] for item in page["items"]]
        short_pages += len(page["items"]) < 2 and page["next_cursor"] is not None
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert found == list(reversed(wanted))
    assert short_pages >= 1, "some page stopped at its window, short of the limit"
    # Without a payload filter nothing changes: full pages until the end.
    first = (await http.get(JOBS, params={"limit": 5}, headers=tokens.user_a)).json()
    assert len(first["items"]) == 5
    assert first["next_cursor"] is not None


async def test_a_queue_filter_finds_every_job_of_the_queue(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    await create_queue(owner, "own-durable", tokens.tenants.a)
    expected: dict[str, set[str]] = {}
    for queue in ("money", "communication", "background", "own-durable"):
        for _ in range(2):
            job = await insert_job(owner, tokens.tenants.a, queue=queue)
            expected.setdefault(queue, set()).add(str(job))
    for queue, ids in expected.items():
        page = (await http.get(JOBS, params={"queue": queue}, headers=tokens.user_a)).json()
        assert {item["id"] for item in page["items"]} == ids, queue
        admin = (await http.get(JOBS, params={"queue": queue}, headers=tokens.admin)).json()
        assert {item["id"] for item in admin["items"]} == ids, queue
    none = (await http.get(JOBS, params={"queue": "no-such-queue"}, headers=tokens.user_a)).json()
    assert none["items"] == []


async def test_list_queries_are_planned_for_their_values_never_prepared(
    make_app: Callable[..., FastAPI], tokens: Tokens, owner: Conn
) -> None:
    """A prepared statement may switch to one generic plan after five runs, and a generic plan cannot use
    the indexes behind optional filters (`%(x)s IS NULL OR …`): the job lists run unprepared, while other
    queries are still prepared."""
    job = await insert_job(owner, tokens.tenants.a)
    app = make_app(pool_min=1, pool_max=1)
    async with running(app) as http:
        for params in ({}, {"status": "pending"}, {"type": "send-sms"}, {"queue": "money"}) * 3:
            assert (await http.get(JOBS, params=params, headers=tokens.user_a)).status_code == 200
            assert (await http.get(f"{JOBS}/{job}", headers=tokens.user_a)).status_code == 200
        async with app.state.api.pool.connection() as conn:
            cur = await conn.execute("SELECT statement FROM pg_prepared_statements")
            prepared = [row[0] for row in await cur.fetchall()]
    assert prepared, "other queries are prepared after five runs"
    # Compared with psycopg's placeholders ($1, $2, …) written as the query files write them.
    per_call = {name: _shape(info.text) for name, info in query_infos().items() if info.per_call}
    assert "list_jobs" in per_call
    assert not [text for text in prepared if _shape(text) in per_call.values()]


def _shape(text: str) -> str:
    return re.sub(r"\$\d+|%\(\w+\)[sb]", "$", text).strip()
