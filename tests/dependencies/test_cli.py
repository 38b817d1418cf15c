"""`jobkeeper enqueue --depends-on`, `jobs list --status waiting` and `jobs cancel` of a parent."""

from __future__ import annotations

import uuid

from tests.cli.conftest import Run, output_json, query
from tests.cli.conftest import run as run


def test_enqueue_with_dependencies_list_and_cancel(run: Run, db_url: str) -> None:
    output_json(run("types", "declare", "notify", "--json"))
    first = output_json(run("enqueue", "notify", "--delay", "1h", "--json"))
    second = output_json(run("enqueue", "notify", "--delay", "1h", "--json"))
    child = output_json(
        run("enqueue", "notify", "--depends-on", first["id"], "--depends-on", second["id"], "--json")
    )
    assert child["status"] == "waiting"
    parents = query(
        db_url,
        "SELECT depends_on FROM jobkeeper.job_dependencies WHERE job_id = %s ORDER BY 1",
        (uuid.UUID(child["id"]),),
    )
    assert [row[0] for row in parents] == sorted([uuid.UUID(first["id"]), uuid.UUID(second["id"])])

    listed = output_json(run("jobs", "list", "--status", "waiting", "--json"))
    assert [row["id"] for row in listed] == [child["id"]]

    unknown = str(uuid.uuid4())
    refused = run("enqueue", "notify", "--depends-on", unknown)
    assert refused.exit_code == 2
    assert f"no job {unknown} for this tenant" in refused.stderr

    cancelled = output_json(run("jobs", "cancel", first["id"], "--json"))
    assert cancelled["status"] == "cancelled"
    ((status, last_error),) = query(
        db_url, "SELECT status, last_error FROM jobkeeper.jobs WHERE id = %s", (uuid.UUID(child["id"]),)
    )
    assert (status, last_error) == ("cancelled", f"dependency {first['id']} was cancelled")
