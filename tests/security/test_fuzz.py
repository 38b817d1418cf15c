"""Hostile input (issue 10, item 11), beyond tests/api/test_validation.py and the schemathesis run of
tests/api/test_schemathesis.py (every operation, generated input, derandomized): explicit worst cases, each
answered with a 4xx and never a 5xx, the service healthy afterwards.

- a 10 MB body is refused with 413 before it is read (declared length) or as soon as the limit is passed
  (chunked), measured by the bytes the app pulled from the connection;
- 10,000 levels of nesting in a body, in a payload filter and in the dashboard's filter;
- invalid UTF-8 in bodies, query strings and paths; NUL bytes everywhere input enters;
- batches of 100,001 items; wrong and missing content types; JSON that is not an object.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
from fastapi import FastAPI
from starlette.types import Message

from jobkeeper.api.auth import Role
from jobkeeper.dashboard.session import COOKIE
from tests.api.support import Conn, assert_problem, insert_worker
from tests.fixtures import Tokens
from tests.payloads import VALID

P = "/api/v1/queue"
JOBS = f"{P}/jobs"
MB = 1024 * 1024
SMS = {"type": "send-sms", "data": {"to": "+14155552671", "body": "hi"}}


class Upload:
    """An ASGI request sent straight to the app (any bytes: no client library in between, so no URL length
    limit and no header encoding): how many body bytes the app pulled, and its answer."""

    def __init__(
        self,
        app: FastAPI,
        path: str,
        headers: dict[str, str],
        chunks: list[bytes] | None = None,
        *,
        method: str = "POST",
        query: bytes = b"",
        raw_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.app = app
        self.path = path
        self.method = method
        self.query = query
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()] + (raw_headers or [])
        self.chunks = chunks or [b""]
        self.read = 0
        self.status = 0
        self.body = b""

    async def send_request(self) -> Upload:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": self.method,
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": self.query,
            "root_path": "",
            "headers": self.headers,
            "client": ("127.0.0.1", 50000),
            "server": ("jobkeeper.test", 80),
        }
        pending = list(self.chunks)

        async def receive() -> Message:
            if not pending:
                return {"type": "http.disconnect"}
            chunk = pending.pop(0)
            self.read += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
            elif message["type"] == "http.response.body":
                self.body += message.get("body", b"")

        await self.app(scope, receive, send)
        return self


async def test_a_10_mb_body_is_refused_before_it_is_read(app: FastAPI, tokens: Tokens) -> None:
    limit = app.state.api.settings.api_max_body_bytes
    chunk = b"x" * MB
    headers = tokens.user_a | {"content-type": "application/json"}
    declared = Upload(app, JOBS, headers | {"content-length": str(10 * MB)}, [chunk] * 10)
    await declared.send_request()
    assert declared.status == 413
    assert declared.read == 0, "the declared length alone decides"
    assert json.loads(declared.body)["status"] == 413
    chunked = Upload(app, JOBS, headers | {"transfer-encoding": "chunked"}, [chunk] * 10)
    await chunked.send_request()
    assert chunked.status == 413
    assert limit < chunked.read <= limit + MB, "read up to the limit and one chunk, no further"
    lying = Upload(app, JOBS, headers | {"content-length": "100"}, [chunk] * 10)  # says 100, sends 10 MB
    await lying.send_request()
    assert lying.status in (400, 413)
    assert lying.read <= limit + MB


async def test_deep_nesting_everywhere(app: FastAPI, http: httpx.AsyncClient, tokens: Tokens) -> None:
    depth = 10_000
    json_headers = tokens.venue_a | {"content-type": "application/json"}
    objects = b'{"a":' * depth + b"1" + b"}" * depth
    arrays = b"[" * depth + b"]" * depth
    for body in (
        b'{"type": "x", "data": ' + objects + b"}",
        b'{"type": "x", "data": {"list": ' + arrays + b"}}",
        b'{"jobs": [{"type": "x", "data": ' + objects + b"}]}",
        objects,
        arrays,
    ):
        for path in (JOBS, f"{JOBS}/batch", f"{P}/schedules", f"{P}/dead-letters/replay"):
            response = await http.post(path, content=body, headers=json_headers)
            assert 400 <= response.status_code < 500, (path, response.status_code)
    document = ("{" + '"a":{' * depth + '"b":1' + "}" * (depth + 1)).encode()
    dotted = ".".join(["a"] * depth).encode()
    session = tokens.headers(Role.VENUE_ADMIN)["Authorization"].removeprefix("Bearer ")
    for path, query, headers in (
        (JOBS, b"payload=" + quote_from_bytes(document).encode(), tokens.user_a),
        (JOBS, b"payload." + dotted + b"=1", tokens.user_a),
        (
            "/dashboard/jobs",
            b"payload=" + quote_from_bytes(document).encode(),
            {"cookie": f"{COOKIE}={session}"},
        ),
    ):
        answer = await Upload(app, path, headers, method="GET", query=query).send_request()
        assert answer.status < 500, (path, answer.status)
        assert answer.status != 200 or path.startswith("/dashboard") or b'"items":[]' in answer.body
    # Deep enough for the JSON parser's recursion limit, short enough for the parameters' length limits
    # (the 10,000 levels above are refused for their length before they are parsed; and the dashboard's
    # JSON filter is `contains`, which `payload=` above never reached).
    arrays = quote_from_bytes(b"[" * 1500 + b"]" * 1500).encode()
    cookie = {"cookie": f"{COOKIE}={session}"}
    for path, query, headers in (
        (JOBS, b"payload=" + arrays, tokens.user_a),
        ("/dashboard/jobs", b"contains=" + arrays, cookie),
        ("/dashboard/jobs/bulk", b"action=retry&contains=" + arrays, cookie),
    ):
        answer = await asyncio.wait_for(
            Upload(app, path, headers, method="GET", query=query).send_request(), timeout=30
        )
        assert answer.status == 422, (path, answer.status, answer.body[:300])
        assert b"nested too deeply" in answer.body, path


async def test_invalid_utf8_and_nul_bytes(app: FastAPI, http: httpx.AsyncClient, tokens: Tokens) -> None:
    json_headers = tokens.venue_a | {"content-type": "application/json"}
    for body in (
        b'{"type": "send-sms", "data": {"to": "+14155552671", "body": "\xff\xfe\xfd"}}',
        b'{"type": "\xc3\x28", "data": {}}',
        b'{"type": "x", "data": {"\xed\xa0\x80": 1}}',  # a UTF-16 surrogate encoded as UTF-8
        b'{"type": "x", "data": {"s": "\\ud800"}}',  # a lone surrogate escape
        b'{"type": "x\x00", "data": {}}',
        b'{"type": "x", "data": {"s": "a\\u0000b"}}',
        b'{"type": "x", "data": {"\\u0000": 1}}',
        b'{"type": "x", "data": {}, "idempotency_key": "k\\u0000"}',
        b'{"type": "x", "data": {}, "queue": "money\\u0000"}',
        b"\x00\x00\x00\x00",
    ):
        response = await http.post(JOBS, content=body, headers=json_headers)
        assert 400 <= response.status_code < 500, (body[:40], response.status_code, response.text)
    schedule = {"name": "n\u0000", "cron": "0 3 * * *", "type": "x", "data": {}}
    assert 400 <= (await http.post(f"{P}/schedules", json=schedule, headers=tokens.venue_a)).status_code < 500
    for path in (
        f"{JOBS}?type=%FF%FE",
        f"{JOBS}?type=a%00b",
        f"{JOBS}?queue=%00",
        f"{JOBS}?payload.to=%00",
        f"{JOBS}?payload.%00=1",
        f"{JOBS}?payload=%7B%22a%22%3A%22%00%22%7D",
        f"{JOBS}?cursor=%00%FF",
        f"{JOBS}/%00",
        f"{JOBS}/%FF",
        f"{P}/dead-letters?queue=%00",
        f"{P}/alerts?queue=%FF",
        f"{P}/queues/%00/stats",
        f"{P}/queues/%FF/stats",
        f"{P}/schedules/%00",
    ):
        response = await http.get(path, headers=tokens.venue_a)
        assert 400 <= response.status_code < 500 or response.status_code == 200, (path, response.text)
        if response.status_code == 200:
            assert response.json()["items"] == [], path  # a filter nothing matches
    odd = [(b"x-anything", b"caf\xc3\xa9 \xff\x00")]
    answer = await Upload(app, JOBS, tokens.venue_a, method="GET", raw_headers=odd).send_request()
    assert answer.status == 200
    for token in (b"Bearer \xff\xfe", b"Bearer a\x00b.c.d", b"\xff"):
        answer = await Upload(
            app, JOBS, {}, method="GET", raw_headers=[(b"authorization", token)]
        ).send_request()
        assert answer.status == 401, (token, answer.body)


async def test_huge_batches_and_arrays(
    app: FastAPI, http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    json_headers = tokens.venue_a | {"content-type": "application/json"}
    big = json.dumps({"jobs": [SMS] * 100_001}).encode()  # ~7 MB: over the body limit
    assert_problem(await http.post(f"{JOBS}/batch", content=big, headers=json_headers), 413)
    small = json.dumps({"jobs": [{}] * 100_001}).encode()  # ~300 kB: under it, too many items
    assert_problem(await http.post(f"{JOBS}/batch", content=small, headers=json_headers), 422)
    ids = json.dumps({"ids": ["00000000-0000-0000-0000-000000000000"] * 100_001}).encode()
    response = await http.post(f"{P}/dead-letters/replay", content=ids, headers=json_headers)
    assert 400 <= response.status_code < 500, response.text
    statuses = b"&".join([b"status=failed"] * 100_001)
    answer = await Upload(app, JOBS, tokens.venue_a, method="GET", query=statuses).send_request()
    assert answer.status < 500, answer.body[:200]
    email = VALID["send-email"] | {"data": {"list": list(range(100_001))}}  # valid, and too large
    wide = json.dumps({"type": "send-email", "data": email}).encode()
    response = await http.post(JOBS, content=wide, headers=json_headers)
    assert_problem(response, 413)  # larger than JOBKEEPER_MAX_PAYLOAD_BYTES
    count = await (
        await owner.execute("SELECT count(*) FROM jobkeeper.jobs WHERE tenant_id = %s", (tokens.tenants.a,))
    ).fetchone()
    assert count == (0,)


async def test_wrong_content_types(http: httpx.AsyncClient, tokens: Tokens) -> None:
    body = json.dumps(SMS).encode()
    for content_type in (
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
        "application/octet-stream",
    ):
        headers = dict(tokens.user_a)
        if content_type:
            headers["content-type"] = content_type
        response = await http.post(JOBS, content=body, headers=headers)
        # Either read as the JSON it is (201), or refused as a client error: never a 5xx.
        assert response.status_code in (201, 400, 415, 422), (content_type, response.status_code)
    form = await http.post(JOBS, data={"type": "send-sms"}, headers=tokens.user_a)
    assert 400 <= form.status_code < 500
    files = await http.post(JOBS, files={"f": ("a.json", body)}, headers=tokens.user_a)
    assert 400 <= files.status_code < 500
    for content in (b"null", b"true", b"42", b'"text"', b"[]", b"", b" "):
        response = await http.post(
            JOBS, content=content, headers=tokens.user_a | {"content-type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (content, response.status_code)


async def test_the_service_stays_healthy_after_the_abuse(
    app: FastAPI, http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    """After the worst of the above on one app, it still answers normally and its pool is sound."""
    await insert_worker(owner)
    junk = b'{"type": "x", "data": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"
    for _ in range(20):
        await http.post(JOBS, content=junk, headers=tokens.user_a | {"content-type": "application/json"})
    assert (await http.get("/health")).json() == {"status": "ok"}
    ready = await http.get(f"{P}/health/ready")
    assert ready.status_code == 200, ready.text
    created = await http.post(JOBS, json=SMS, headers=tokens.user_a)
    assert created.status_code == 201, created.text
    assert (await http.get(f"{JOBS}/{created.json()['id']}", headers=tokens.user_a)).status_code == 200
    assert app.state.api.pool.get_stats().get("requests_errors", 0) == 0
