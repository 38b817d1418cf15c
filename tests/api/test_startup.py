"""`jobkeeper api` and `jobkeeper token` as a user runs them: no authentication configured, no start."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import jwt
import pytest

from jobkeeper import Settings
from jobkeeper.api.app import check_settings
from jobkeeper.errors import ConfigError
from jobkeeper.server import serve_api
from tests.api.support import AUDIENCE, ISSUER, SECRET, api_settings
from tests.support import eventually, wait_for

JOBKEEPER = str(Path(sys.executable).parent / "jobkeeper")


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBKEEPER_") and k != "DATABASE_URL"}
    env.update(values)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [JOBKEEPER, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


AUTH = {"JOBKEEPER_JWT_SECRET": SECRET, "JOBKEEPER_JWT_AUDIENCE": AUDIENCE, "JOBKEEPER_JWT_ISSUER": ISSUER}


BAD_CONFIGURATIONS = [
    ({}, "the API needs authentication configured: set JOBKEEPER_JWT_SECRET"),
    (AUTH | {"JOBKEEPER_JWT_SECRET": "short-secret"}, "JOBKEEPER_JWT_SECRET must be at least 32 bytes"),
    ({"JOBKEEPER_JWT_SECRET": SECRET}, "JOBKEEPER_JWT_AUDIENCE and JOBKEEPER_JWT_ISSUER"),
    (AUTH | {"JOBKEEPER_JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\\nnope"}, "set only one of"),
    (
        {k: v for k, v in AUTH.items() if k != "JOBKEEPER_JWT_SECRET"}
        | {"JOBKEEPER_JWT_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\\nnope\\n-----END PUBLIC KEY-----"},
        "JOBKEEPER_JWT_PUBLIC_KEY is not a PEM public key",
    ),
    (AUTH | {"JOBKEEPER_API_RATE_BURST": "50"}, "JOBKEEPER_API_RATE_BURST (50) must be at least 100"),
]
IDS = ["nothing", "short secret", "no audience or issuer", "two keys", "bad key", "burst"]


@pytest.mark.parametrize(("settings", "expected"), BAD_CONFIGURATIONS, ids=IDS)
def test_bad_configurations_are_refused_with_one_clear_line(settings: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        check_settings(Settings.from_env(settings))
    message = str(raised.value)
    assert expected in message
    assert "\n" not in message
    assert "short-secret" not in message


@pytest.mark.parametrize(("settings", "expected"), BAD_CONFIGURATIONS[:3], ids=IDS[:3])
def test_api_command_exits_non_zero_without_auth_configuration(
    db_url: str, settings: dict[str, str], expected: str
) -> None:
    result = _run(["api"], _env(DATABASE_URL=db_url, **settings))
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "short-secret" not in result.stderr


def test_token_mints_a_token_the_api_accepts() -> None:
    tenant = "00000000-0000-0000-0000-000000000001"
    result = _run(
        ["token", "--role", "venue_admin", "--tenant", tenant, "--sub", "ops", "--ttl", "120"], _env(**AUTH)
    )
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
    assert (claims["role"], claims["tenant_id"], claims["sub"]) == ("venue_admin", tenant, "ops")
    assert claims["exp"] - claims["iat"] == 120

    refused = _run(["token", "--role", "admin", "--tenant", tenant], _env())
    assert refused.returncode == 2
    assert "JOBKEEPER_JWT_SECRET" in refused.stderr
    bad = _run(["token", "--role", "admin", "--tenant", "acme"], _env(**AUTH))
    assert bad.returncode == 2
    assert "not a UUID" in bad.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_api_serves_on_the_configured_port_and_stops_on_sigterm(db_url: str) -> None:
    port = _free_port()
    env = _env(DATABASE_URL=db_url, JOBKEEPER_PORT=str(port), JOBKEEPER_POOL_MIN="1", **AUTH)
    tenant = "00000000-0000-0000-0000-000000000001"
    token = _run(["token", "--role", "user", "--tenant", tenant], env).stdout.strip()
    base = f"http://127.0.0.1:{port}"
    with subprocess.Popen(
        [JOBKEEPER, "api"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:

            def healthy() -> bool:
                assert proc.poll() is None, "the API exited"
                try:
                    return httpx.get(f"{base}/health", timeout=1).status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(healthy, timeout=30, what="the API to answer /health")
            response = httpx.get(f"{base}/api/v1/queue/jobs", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text
            assert httpx.get(f"{base}/api/v1/queue/jobs").status_code == 401
        finally:
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr


async def test_serve_api_runs_in_process_until_stopped(db_url: str) -> None:
    settings = dataclasses.replace(api_settings(), port=_free_port())
    stop = asyncio.Event()
    serving = asyncio.create_task(serve_api(settings, db_url, stop=stop))
    base = f"http://127.0.0.1:{settings.port}"
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:

        async def healthy() -> bool:
            assert not serving.done(), serving
            try:
                return (await client.get("/health")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(healthy, timeout=20, what="the API to answer")
        assert (await client.get("/api/v1/queue/jobs")).status_code == 401
    stop.set()
    await asyncio.wait_for(serving, timeout=20)
    assert serving.exception() is None
