"""`jobkeeper --help` and the admin verbs start fast: importing the CLI loads none of the heavy libraries
(the web stack, the payment and chain SDKs, the processors, Alembic, psycopg); each command imports what
it needs when it runs. Asserted on the modules loaded, not on timing, which a busy machine distorts."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "fastapi",
    "uvicorn",
    "stripe",
    "solana",
    # The processors, not their package: its settings modules are read by every command.
    "jobkeeper.processors.payments",
    "jobkeeper.processors.nft",
    "jobkeeper.processors.email",
    "jobkeeper.processors.sms",
    "jobkeeper.processors.push",
    "jobkeeper.processors.analytics",
    "jobkeeper.processors.cleanup",
    "jobkeeper.processors.reports",
    "jobkeeper.processors.support",
    "jobkeeper.api",
    "jobkeeper.worker",
    "alembic",
    "sqlalchemy",
    "psycopg",
    "psycopg_pool",
    "jobkeeper.maintenance.leader",
    "jobkeeper.maintenance.service",
)


def test_importing_the_cli_loads_no_heavy_module() -> None:
    probe = (
        "import json, sys, jobkeeper.cli\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []


def test_the_package_still_offers_its_public_names() -> None:
    import jobkeeper

    assert {name for name in jobkeeper.__all__ if not hasattr(jobkeeper, name)} == set()


PROVIDER_LIBRARIES = (
    "stripe",
    "solders",
    "spl",
    "solana",
    "pywebpush",
    "py_vapid",
    "jwt",
    "aiosmtplib",
    "jinja2",
)


def test_validating_a_payload_loads_no_processor() -> None:
    # The models live beside their processors; `Client`'s first enqueue, the API and the CLI import them
    # without paying for the processors and their providers' SDKs (docs/decisions.md).
    probe = (
        "import json, sys, jobkeeper.client\n"
        "from jobkeeper.payloads import check_payload\n"
        "from tests.payloads import VALID\n"
        "for job_type in VALID: check_payload(job_type, VALID[job_type])\n"
        f"loaded = [m for m in {PROVIDER_LIBRARIES!r} if m in sys.modules]\n"
        "loaded += [m for m in sys.modules if m.endswith('.processor') or m.endswith('.support')]\n"
        "print(json.dumps(sorted(loaded)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
