"""`jobkeeper doctor`: each check against a real database, a real worker and real settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import Result

from jobkeeper import SyncClient
from tests.cli.conftest import Run, handlers, running_worker
from tests.support import client_settings, declare_types

AUTH = {
    "JOBKEEPER_JWT_SECRET": "s" * 40,
    "JOBKEEPER_JWT_AUDIENCE": "jobkeeper",
    "JOBKEEPER_JWT_ISSUER": "tests",
}


def _checks(result: Result) -> dict[str, list[dict[str, Any]]]:
    report = json.loads(result.stdout)
    assert report["exit_code"] == result.exit_code
    found: dict[str, list[dict[str, Any]]] = {}
    for check in report["checks"]:
        found.setdefault(check["name"], []).append(check)
    return found


def _statuses(result: Result) -> dict[str, list[str]]:
    return {name: [c["status"] for c in checks] for name, checks in _checks(result).items()}


def test_doctor_passes_a_healthy_setup(run: Run, db_url: str) -> None:
    with SyncClient(db_url, settings=client_settings()) as client:
        declare_types(db_url, "echo")
        client.enqueue("echo", {"n": 1}, delay=3600)
    stripe = AUTH | {"JOBKEEPER_STRIPE_API_KEY": "sk_test_doctor"}
    with running_worker(db_url, handlers()):
        healthy = run("doctor", "--json", env=stripe)
        table = run("doctor", env=stripe)
        strict = run("doctor", "--strict", env=stripe)
    assert healthy.exit_code == 0, healthy.stdout
    statuses = _statuses(healthy)
    assert set(statuses.pop("providers")) == {"warn"}  # unconfigured providers warn; they do not fail
    assert statuses == {
        "configuration": ["ok"],
        "database": ["ok"],
        "tls": ["ok"],
        "migrations": ["ok"],
        "workers": ["ok"],
        "queues": ["ok"],
        "handlers": ["ok"],
        "api auth": ["ok"],
    }
    assert "local connection" in _checks(healthy)["tls"][0]["message"]
    providers = " ".join(c["message"] + c["fix"] for c in _checks(healthy)["providers"])
    assert "send-sms" in providers
    assert "JOBKEEPER_TWILIO_AUTH_TOKEN" in providers
    assert "payment-process" not in providers  # its Stripe key is set
    assert table.exit_code == 0
    assert "nothing to fix: 0 problems" in table.stdout
    assert strict.exit_code == 1  # --strict: warnings count


def test_doctor_says_what_to_fix(run: Run, db_url: str) -> None:
    nobody = run("doctor", "--json")  # no worker, no API authentication
    assert nobody.exit_code == 1
    checks = _checks(nobody)
    assert checks["workers"][0]["status"] == "fail"
    assert "jobkeeper worker" in checks["workers"][0]["fix"]
    assert checks["api auth"][0]["status"] == "fail"
    assert "JOBKEEPER_JWT_SECRET" in checks["api auth"][0]["message"]
    assert checks["handlers"][0]["status"] == "skip"

    with SyncClient(db_url, settings=client_settings()) as client:
        declare_types(db_url, "orphan-report")  # declared, and no worker handles it
        client.enqueue("orphan-report", {"n": 1})
    run("queues", "pause", "money")
    with SyncClient(db_url, settings=client_settings()) as client:
        client.enqueue("payout-process", {"venueId": "v", "period": "p"})
    with running_worker(db_url, handlers()):
        found = run("doctor", "--no-api", "--json", env={"JOBKEEPER_WORKER_CONCURENCY": "4"})
        table = run("doctor", "--no-api")
    assert found.exit_code == 1
    checks = _checks(found)
    (handler,) = [c for c in checks["handlers"] if c["status"] == "fail" and "orphan-report" in c["message"]]
    assert "1 ready orphan-report jobs in queue background" in handler["message"]
    assert "@task('orphan-report')" in handler["fix"]
    paused = [c for c in checks["queues"] if c["status"] == "warn"]
    assert [c["message"] for c in paused] == ["queue money is paused with 1 jobs waiting"]
    (unknown,) = [c for c in checks["configuration"] if c["status"] == "warn"]
    assert "JOBKEEPER_WORKER_CONCURENCY" in unknown["message"]
    assert "JOBKEEPER_WORKER_CONCURRENCY" in unknown["fix"]
    assert checks["api auth"][0]["status"] == "skip"
    assert "fix: run a worker with --import MODULE" in table.stdout
    assert "something needs fixing: 2 problems" in table.stdout  # both handlers lines


def test_doctor_reports_every_configuration_problem(run_shared: Run) -> None:
    run = run_shared
    result = run("doctor", "--json", "--no-api", env={"JOBKEEPER_PORT": "http", "JOBKEEPER_POOL_MAX": "many"})
    assert result.exit_code == 2
    problems = [c["message"] for c in _checks(result)["configuration"] if c["status"] == "fail"]
    assert len(problems) == 2
    assert any(p.startswith("JOBKEEPER_PORT") for p in problems)
    assert any(p.startswith("JOBKEEPER_POOL_MAX") for p in problems)
    assert _checks(result)["database"][0]["status"] == "ok"  # the other checks still ran
    related = run(
        "doctor",
        "--json",
        "--no-api",
        env={"JOBKEEPER_LEASE_SECONDS": "120", "JOBKEEPER_HEARTBEAT_INTERVAL": "40"},
    )
    assert _checks(related)["configuration"][0]["status"] == "ok"  # valid together, though not alone


def test_doctor_on_an_unreachable_or_empty_database(
    run_shared: Run, empty_db_url: str, tmp_path: Path
) -> None:
    run = run_shared
    refused = run("doctor", "--json", "--no-api", env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"})
    assert refused.exit_code == 3
    checks = _checks(refused)
    assert checks["database"][0]["status"] == "fail"
    assert "cannot connect" in checks["database"][0]["message"]
    assert checks["migrations"][0]["status"] == "skip"

    remote = "postgresql://app@db.example.invalid:5432/app"
    insecure = _checks(run("doctor", "--json", "--no-api", env={"DATABASE_URL": remote}))["tls"][0]
    assert insecure["status"] == "warn"
    assert "sslmode=prefer to the non-local host db.example.invalid" in insecure["message"]
    assert "verify-full" in insecure["fix"]
    verified = run(
        "doctor", "--json", "--no-api", env={"DATABASE_URL": remote, "JOBKEEPER_DB_SSLMODE": "verify-full"}
    )
    assert _checks(verified)["tls"][0]["status"] == "ok"

    embedded = run(
        "doctor", "--json", "--no-api", env={"DATABASE_URL": None, "JOBKEEPER_DATA_DIR": str(tmp_path)}
    )
    assert embedded.exit_code == 3
    assert "embedded PostgreSQL" in _checks(embedded)["database"][0]["message"]
    assert "jobkeeper up" in _checks(embedded)["database"][0]["fix"]

    empty = run("doctor", "--json", "--no-api", env={"DATABASE_URL": empty_db_url})
    assert empty.exit_code == 1
    checks = _checks(empty)
    assert checks["migrations"][0]["status"] == "fail"
    assert checks["migrations"][0]["fix"] == "run `jobkeeper db upgrade`"
