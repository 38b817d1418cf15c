"""Redirects never name a host (issue 15 #5): a request with `Host: evil.test` is never sent to
`http://evil.test/…`, whichever part built the redirect (Starlette's trailing-slash redirect, the dashboard,
the API root); and `GET /` sends a browser to the dashboard (#25)."""

from __future__ import annotations

import httpx
import pytest

from jobkeeper.api.redirects import relative
from tests.fixtures import Tokens

EVIL = {"Host": "evil.test"}
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(
    ("path", "accept", "expected"),
    [
        ("/dashboard", "*/*", "/dashboard/"),  # Starlette's redirect_slashes
        ("/api/v1/queue", "*/*", "/api/v1/queue/"),
        ("/api/v1/queue/jobs/", "*/*", "/api/v1/queue/jobs"),
        ("/dashboard/jobs/", "*/*", "/dashboard/jobs"),
        ("/", BROWSER, "/dashboard/"),
        ("/dashboard/", BROWSER, "/dashboard/sign-in"),  # no session: the dashboard's own redirect
    ],
)
async def test_redirects_are_relative_whatever_the_host(
    http: httpx.AsyncClient, path: str, accept: str, expected: str
) -> None:
    for headers in ({}, EVIL, {"Host": "evil.test:8443", "X-Forwarded-Host": "evil.test"}):
        response = await http.get(path, headers={**headers, "Accept": accept})
        assert 300 <= response.status_code < 400, (path, response.status_code, response.text)
        location = response.headers["location"]
        assert location.split("?")[0] == expected, (path, headers, location)
        assert "evil.test" not in location
        assert "://" not in location
        assert not location.startswith("//")


async def test_a_path_that_looks_like_a_host_is_not_redirected_off_site(http: httpx.AsyncClient) -> None:
    for path in ("//evil.test/dashboard", "//evil.test/api/v1/queue/jobs/", "/\\evil.test/dashboard"):
        response = await http.get(path, headers=EVIL)
        location = response.headers.get("location", "")
        assert "evil.test" not in location.split("?")[0].split("/", 2)[:2], (path, location)
        assert not location.startswith(("//", "/\\", "http")), (path, location)


def test_relative_keeps_path_query_and_fragment_and_one_leading_slash() -> None:
    assert relative("http://evil.test/dashboard/?a=1#x") == "/dashboard/?a=1#x"
    assert relative("https://evil.test:8443") == "/"
    assert relative("//evil.test/x") == "/x"
    assert relative("/\\evil.test/x") == "/evil.test/x"
    assert relative("http://host//evil.test/x") == "/evil.test/x"
    assert relative("/dashboard/jobs?status=failed") == "/dashboard/jobs?status=failed"
    assert relative("jobs?page=2") == "jobs?page=2"


async def test_the_root_sends_a_browser_to_the_dashboard_and_answers_json_clients(
    http: httpx.AsyncClient, tokens: Tokens
) -> None:
    browser = await http.get("/", headers={"Accept": BROWSER})
    assert browser.status_code == 307
    assert browser.headers["location"] == "/dashboard/"
    for accept in ("application/json", "*/*", "", "text/html;q=0, application/json"):
        response = await http.get("/", headers={"Accept": accept} if accept else {})
        assert response.status_code == 200, (accept, response.text)
        assert response.headers["content-type"] == "application/json"
        info = response.json()
        assert info["docs"] == "/docs"
        assert info["service"] == "jobkeeper"
        assert info == (await http.get("/api/v1/queue/")).json()
