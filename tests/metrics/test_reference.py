"""docs/reference.md lists every metric `/metrics` exports, with its type and labels, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.api.support import Conn, dead_letter, insert_alert, insert_job, insert_worker
from tests.fixtures import Tokens
from tests.fixtures import app as app
from tests.fixtures import http as http
from tests.fixtures import owner as owner
from tests.fixtures import settings as settings
from tests.fixtures import tenants as tenants
from tests.fixtures import tokens as tokens

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "reference.md"
ROW = re.compile(r"^\| `(?P<name>[a-z_:]+)` \| (?P<type>\w+) \|(?P<labels>[^|]*)\|", re.MULTILINE)


def _documented() -> dict[str, tuple[str, frozenset[str]]]:
    section = REFERENCE.read_text(encoding="utf-8").split("## Metrics", 1)[1].split("\n## ", 1)[0]
    return {
        m["name"]: (m["type"], frozenset(re.findall(r"`(\w+)`", m["labels"]))) for m in ROW.finditer(section)
    }


async def test_the_reference_lists_every_exported_metric_with_its_type_and_labels(
    http: httpx.AsyncClient, tokens: Tokens, owner: Conn
) -> None:
    # Samples for the labelled families: jobs, a dead letter, an alert, a live worker, a request.
    await insert_job(owner, tokens.tenants.a, status="pending")
    await insert_job(
        owner,
        tokens.tenants.a,
        status="completed",
        queue="money",
        job_type="payment-process",
        run_seconds=0.5,
    )
    await dead_letter(owner, tokens.tenants.a)
    await insert_alert(owner, tokens.tenants.a)
    await insert_worker(owner)
    await http.get("/api/v1/queue/queues", headers=tokens.user_a)
    text = (await http.get("/metrics")).text

    families = list(text_string_to_metric_families(text))
    names = {family.name for family in families}
    exported: dict[str, tuple[str, frozenset[str]]] = {}
    for family in families:
        if family.name.endswith("_created") and family.name.removesuffix("_created") in names:
            continue  # prometheus_client's creation-time series of a counter or histogram
        name = f"{family.name}_total" if family.type == "counter" else family.name
        seen = {k for sample in family.samples for k in sample.labels if k != "le"}
        exported[name] = (family.type, frozenset(seen))
    documented = _documented()
    assert sorted(documented) == sorted(exported)
    for name, (kind, labels) in exported.items():
        doc_kind, doc_labels = documented[name]
        assert doc_kind == kind, name
        assert doc_labels >= labels, name  # a family without samples shows no labels
