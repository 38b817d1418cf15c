"""`/docs` works without internet access (issue 15 #21): the Swagger UI page names only assets of its own
origin, and the API serves each of them with its content type."""

from __future__ import annotations

import re

import httpx

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


async def test_swagger_ui_loads_only_same_origin_assets(http: httpx.AsyncClient) -> None:
    page = await http.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle(" in page.text
    assert "url: '/openapi.json'" in page.text
    # no CDN, no online validator, no other origin at all
    assert "http:" not in page.text
    assert "https:" not in page.text
    assets = ASSET.findall(page.text)
    assert all(url.startswith("/") and not url.startswith("//") for url in assets), assets
    expected = {
        "/docs/assets/swagger-ui-bundle.js": "text/javascript",
        "/docs/assets/swagger-ui.css": "text/css",
        "/docs/assets/favicon.png": "image/png",
    }
    assert sorted(assets) == sorted(expected)
    for url, content_type in expected.items():
        asset = await http.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].split(";")[0] in (content_type, "application/javascript"), url
        assert len(asset.content) > 1000, url
    bundle = (await http.get("/docs/assets/swagger-ui-bundle.js")).text
    assert "SwaggerUIBundle" in bundle
    # Swagger UI 5 or later: 4 cannot read the OpenAPI 3.1 documents FastAPI writes
    spec = (await http.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    assert re.search(r'"5\.\d+\.\d+"', bundle)


async def test_redoc_is_not_served(http: httpx.AsyncClient) -> None:
    """Only Swagger UI is offered: a page loading ReDoc from a CDN would be blank offline too."""
    assert (await http.get("/redoc")).status_code == 404
