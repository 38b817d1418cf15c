"""The dashboard's session cookie behind a TLS-terminating proxy (issue 15 #2), on a real uvicorn server.

The cookie holds the bearer token: it is `Secure` whenever the request is https, which behind a proxy is
known only from X-Forwarded-Proto, believed from the addresses in JOBKEEPER_TRUSTED_PROXIES alone (none by
default); JOBKEEPER_SESSION_COOKIE_SECURE sets it always.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from jobkeeper import Settings
from jobkeeper.api.auth import Role, mint_token
from jobkeeper.cli import main
from jobkeeper.errors import ConfigError
from jobkeeper.server import serve_api
from tests.api.support import api_settings
from tests.support import eventually

HTTPS = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def serving(db_url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """`serve_api` (uvicorn) on a free port with these settings; a client of it from 127.0.0.1."""
    settings = dataclasses.replace(api_settings(), port=_free_port(), pool_min=1, **overrides)
    stop = asyncio.Event()
    server = asyncio.create_task(serve_api(settings, db_url, stop=stop))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.port}", timeout=5) as client:

            async def up() -> bool:
                assert not server.done(), server
                try:
                    return (await client.get("/health")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(up, timeout=20, what="the API to answer")
            yield client
    finally:
        stop.set()
        await asyncio.wait_for(server, timeout=20)


async def _cookies(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, str]:
    """The Set-Cookie headers (by cookie name) of the sign-in form and of a successful sign-in."""
    form = await client.get("/dashboard/sign-in", headers=headers)
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
    assert nonce is not None, form.text
    token = mint_token(api_settings(), role=Role.USER, tenant_id=uuid.uuid4(), subject="t", ttl_seconds=600)
    signed_in = await client.post(
        "/dashboard/sign-in",
        data={"nonce": nonce.group(1), "token": token},
        # set by hand: httpx keeps a Secure cookie from a plain-http server to itself
        headers={**headers, "Cookie": f"jobkeeper_signin={form.cookies['jobkeeper_signin']}"},
    )
    assert signed_in.status_code == 303, signed_in.text
    found = {}
    for prefix, response in (("", form), ("after sign-in: ", signed_in)):
        for header in response.headers.get_list("set-cookie"):
            found[prefix + header.split("=", 1)[0]] = header
    return found


def _secure(set_cookie: str) -> bool:
    return any(part.strip().lower() == "secure" for part in set_cookie.split(";"))


async def test_https_from_a_trusted_proxy_makes_the_cookies_secure(db_url: str) -> None:
    async with serving(db_url, trusted_proxies=("127.0.0.1", "10.0.0.0/8")) as client:
        behind_tls = await _cookies(client, HTTPS)
        assert _secure(behind_tls["jobkeeper_signin"])
        assert _secure(behind_tls["after sign-in: jobkeeper_session"])
        assert _secure(behind_tls["after sign-in: jobkeeper_signin"])  # its deletion
        plain = await _cookies(client, {"X-Forwarded-Proto": "http"})
        assert not _secure(plain["after sign-in: jobkeeper_session"])


@pytest.mark.parametrize("trusted", [(), ("10.1.2.3",), ("192.168.0.0/16",)])
async def test_forwarded_headers_from_anyone_else_are_not_believed(
    db_url: str, trusted: tuple[str, ...]
) -> None:
    """The client (127.0.0.1) is no trusted proxy: its X-Forwarded-Proto changes nothing."""
    async with serving(db_url, trusted_proxies=trusted) as client:
        cookies = await _cookies(client, HTTPS)
        assert not _secure(cookies["jobkeeper_signin"])
        assert not _secure(cookies["after sign-in: jobkeeper_session"])


async def test_the_setting_makes_the_cookies_secure_always(db_url: str) -> None:
    async with serving(db_url, session_cookie_secure=True) as client:
        cookies = await _cookies(client, {})
        assert _secure(cookies["jobkeeper_signin"])
        assert _secure(cookies["after sign-in: jobkeeper_session"])


def test_trusted_proxies_are_read_and_checked() -> None:
    settings = Settings.from_env(
        {"JOBKEEPER_TRUSTED_PROXIES": "10.0.0.5, 10.1.0.0/16,::1", "JOBKEEPER_SESSION_COOKIE_SECURE": "true"}
    )
    assert settings.trusted_proxies == ("10.0.0.5", "10.1.0.0/16", "::1")
    assert settings.session_cookie_secure
    assert Settings.from_env({}).trusted_proxies == ()
    with pytest.raises(ConfigError, match=r"JOBKEEPER_TRUSTED_PROXIES must list IP addresses .* got 'proxy'"):
        Settings.from_env({"JOBKEEPER_TRUSTED_PROXIES": "10.0.0.5,proxy"})


@pytest.mark.parametrize("command", ["api", "up"])
def test_the_commands_refuse_a_bad_trusted_proxies_option(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--trusted-proxies", "10.0.0.1,example.com"])
    assert result.exit_code == 2, result.output
    assert "--trusted-proxies must list IP addresses" in result.output
    assert "'example.com'" in result.output
