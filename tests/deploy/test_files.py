"""The deployment files, linted here because no Docker engine runs on this machine (docs/deployment.md):
hadolint and our own rules for the Dockerfile, the compose-spec schema and our rules for compose.yaml,
`systemd-analyze verify` for the units, and the Kubernetes probes against the app's real routes."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobkeeper.config import Settings
from jobkeeper.server import create_app
from tests.api.support import api_settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is a dev dependency (pyproject.toml): pip install -e '.[dev]'"
    return str(path)


def _stages(text: str) -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (instruction, arguments), continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    stages: list[list[tuple[str, str]]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        stages[-1].append((instruction.upper(), args.strip()))
    return stages


def test_hadolint_passes_the_dockerfile_and_fails_a_bad_one(tmp_path: Path) -> None:
    hadolint = _tool("hadolint")
    good = subprocess.run([hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n", encoding="utf-8")
    failed = subprocess.run([hadolint, str(bad)], capture_output=True, text=True)
    assert failed.returncode != 0
    assert "DL3007" in failed.stdout  # latest tag


def test_the_dockerfile_is_multi_stage_pinned_non_root_and_checks_health_on_the_configured_port() -> None:
    stages = _stages((DEPLOY / "Dockerfile").read_text(encoding="utf-8"))
    assert len(stages) >= 2
    for stage in stages:
        image = stage[0][1].split()[0]
        tag = image.partition(":")[2]
        assert re.match(r"\d+\.\d+\.\d+", tag), f"{image}: pin the base image to a full version"
    runtime = stages[-1]
    assert any(op == "COPY" and "--from=build" in args for op, args in runtime)
    users = [args for op, args in runtime if op == "USER"]
    assert users, "the runtime stage must switch to a non-root user"
    assert users[-1].split(":")[0] not in ("root", "0")
    (check,) = [args for op, args in runtime if op == "HEALTHCHECK"]
    assert "JOBKEEPER_PORT" in check
    assert "/health" in check
    env = " ".join(args for op, args in runtime if op == "ENV")
    port = Settings.from_env({}).port
    assert f"JOBKEEPER_PORT={port}" in env
    assert [args for op, args in runtime if op == "EXPOSE"] == [str(port)]
    assert [args for op, args in runtime if op == "CMD"] == ['["jobkeeper", "api"]']


def test_the_compose_file_follows_the_compose_spec() -> None:
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_compose_runs_migrations_once_before_the_api_and_the_workers() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "migrate", "api", "worker"}
    assert services["postgres"]["healthcheck"]["test"][1] == "pg_isready"
    assert services["migrate"]["command"] == ["jobkeeper", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name, command in (("api", ["jobkeeper", "api"]), ("worker", ["jobkeeper", "worker"])):
        assert services[name]["command"] == command
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        assert "@postgres:5432/" in services[name]["environment"]["DATABASE_URL"]
    assert services["worker"]["healthcheck"] == {"disable": True}
    assert services["api"]["ports"] == ["3011:3011"]


def test_compose_sets_only_real_settings() -> None:
    known = {field.metadata["env"] for field in dataclasses.fields(Settings)}
    for name, service in _compose()["services"].items():
        if name == "postgres":
            continue
        unknown = set(service["environment"]) - known
        assert unknown == set(), f"{name}: not settings of jobkeeper: {sorted(unknown)}"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("unit", ["jobkeeper-api.service", "jobkeeper-worker.service"])
def test_systemd_analyze_verifies_the_unit(unit: str, tmp_path: Path) -> None:
    # The unit names /opt/jobkeeper/bin/jobkeeper; verify checks that it is executable, so point it at
    # this environment's command and leave everything else as written.
    text = (DEPLOY / "systemd" / unit).read_text(encoding="utf-8")
    assert "/opt/jobkeeper/bin/jobkeeper" in text
    (tmp_path / unit).write_text(text.replace("/opt/jobkeeper/bin/jobkeeper", _tool("jobkeeper")))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / unit)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # unknown keys and bad values are only warnings


def test_the_kubernetes_probes_in_the_docs_name_routes_of_the_app_on_the_configured_port() -> None:
    text = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    probes: dict[str, dict[str, Any]] = {}
    for block in blocks:
        for document in yaml.safe_load_all(block):
            if isinstance(document, dict):
                _collect_probes(document, probes)
    assert set(probes) >= {"livenessProbe", "readinessProbe"}
    app = create_app(api_settings(), "postgresql://unused@127.0.0.1/unused")
    paths = set(app.openapi()["paths"])
    for probe in probes.values():
        assert probe["httpGet"]["path"] in paths
        assert probe["httpGet"]["port"] == Settings.from_env({}).port
    assert probes["livenessProbe"]["httpGet"]["path"] == "/health"


def _collect_probes(node: Any, found: dict[str, dict[str, Any]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("Probe") and isinstance(value, dict):
                found[key] = value
            _collect_probes(value, found)
    elif isinstance(node, list):
        for item in node:
            _collect_probes(item, found)
