"""The invariant checker every fault scenario ends with.

1. Nothing lost: every job the test enqueued (its id was acknowledged) exists and is finished.
2. Every job ended exactly as expected: `completed`, `failed` (with its dead-letter row) or `cancelled`,
   as its payload's `expect` says (default `completed`) or the test overrides.
3. No job is left `processing` (the scenario is over and its lease has passed).
4. Exactly-once effects: each operation has at most one effect; every completed job of a handler that
   records effects has its effect; a job that failed before its effect has none. Duplicated executions
   are counted separately (delivery is at-least-once: a job re-run after a crash is expected).
5. One job per operation: no enqueue or schedule slot produced two jobs for the same operation.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

EFFECT_TYPES = ("fault-money", "fault-comms", "fault-background", "fault-tick")
FINAL = ("completed", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class Report:
    enqueued: int
    completed: int
    dead_lettered: int
    cancelled: int
    lost: int
    duplicated_effects: int
    duplicated_jobs: int
    executions: int
    re_executions: int
    """Executions beyond the first of each job: planned retries plus re-runs after a fault."""
    rescued: int
    """Jobs that were returned by the rescuer at least once (an error entry of type WorkerLost)."""
    by_type: dict[str, dict[str, int]] = field(default_factory=dict)

    def line(self, scenario: str, injected: str, **numbers: object) -> str:
        """The summary line the test prints (copied into docs/reliability.md)."""
        extra = " ".join(f"{k}={_fmt(v)}" for k, v in numbers.items())
        return (
            f"FAULT {scenario}: injected={injected!r} enqueued={self.enqueued} completed={self.completed} "
            f"dead_lettered={self.dead_lettered} cancelled={self.cancelled} lost={self.lost} "
            f"duplicated_effects={self.duplicated_effects} executions={self.executions} "
            f"re_executions={self.re_executions} rescued={self.rescued} {extra}"
        ).rstrip()


def _fmt(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


class InvariantError(AssertionError):
    pass


async def check_invariants(
    db: psycopg.AsyncConnection[Any],
    acknowledged: Iterable[uuid.UUID],
    *,
    expected: Mapping[uuid.UUID, str] | None = None,
) -> Report:
    """Check every invariant over all the jobs in the database; raise `InvariantError` listing each
    violation, or return the counts."""
    overrides = dict(expected or {})
    acked = set(acknowledged)
    cur = db.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, type, status, attempts, payload, idempotency_key, errors, worker_id, heartbeat_at"
        " FROM jobkeeper.jobs"
    )
    jobs = {row["id"]: row for row in await cur.fetchall()}
    await cur.execute("SELECT job_id FROM jobkeeper.dead_letter_jobs")
    dead = {row["job_id"] for row in await cur.fetchall()}
    await cur.execute("SELECT key, op, job_id FROM fault_effects")
    effects = await cur.fetchall()
    await cur.execute("SELECT job_id, count(*) AS n FROM fault_executions GROUP BY job_id")
    executions = {row["job_id"]: int(row["n"]) for row in await cur.fetchall()}

    problems: list[str] = []
    missing = acked - jobs.keys()
    if missing:
        problems.append(f"{len(missing)} acknowledged jobs do not exist: {_sample(missing)}")
    unfinished = [j for j in jobs.values() if j["status"] not in FINAL]
    if unfinished:
        problems.append(
            f"{len(unfinished)} jobs never finished: "
            + _sample(f"{j['id']} ({j['type']}, {j['status']}, attempts {j['attempts']})" for j in unfinished)
        )
    processing = [j for j in unfinished if j["status"] == "processing"]
    if processing:
        problems.append(
            f"{len(processing)} jobs left processing: "
            + _sample(f"{j['id']} worker {j['worker_id']} heartbeat {j['heartbeat_at']}" for j in processing)
        )
    wrong = []
    for job in jobs.values():
        want = overrides.get(job["id"]) or _payload(job).get("expect") or "completed"
        if job["status"] in FINAL and job["status"] != want:
            wrong.append(
                f"{job['id']} ({job['type']}) is {job['status']}, expected {want}: {job['errors'][-1:]}"
            )
    if wrong:
        problems.append(f"{len(wrong)} jobs ended unexpectedly: {_sample(wrong)}")
    failed = {i for i, j in jobs.items() if j["status"] == "failed"}
    if failed - dead:
        problems.append(f"failed jobs without a dead letter: {_sample(failed - dead)}")
    if dead - failed:
        problems.append(f"dead letters of jobs that did not fail: {_sample(dead - failed)}")

    per_op: dict[str, list[dict[str, Any]]] = {}
    for effect in effects:
        per_op.setdefault(effect["op"], []).append(effect)
    doubled = {op: rows for op, rows in per_op.items() if len(rows) > 1}
    if doubled:
        problems.append(f"operations with more than one effect: {_sample(doubled)}")
    keys = {effect["key"] for effect in effects}
    jobs_per_op: dict[str, list[uuid.UUID]] = {}
    for job in jobs.values():
        if job["type"] not in EFFECT_TYPES:
            continue
        key = job["idempotency_key"] or f"job:{job['id']}"
        op = _payload(job).get("op") or key
        jobs_per_op.setdefault(op, []).append(job["id"])
        if job["status"] == "completed" and key not in keys:
            problems.append(f"job {job['id']} completed without its effect")
        if job["status"] != "completed" and _payload(job).get("permanent") and key in keys:
            problems.append(f"job {job['id']} failed before its effect, yet the effect exists")
    twins = {op: ids for op, ids in jobs_per_op.items() if len(ids) > 1}
    if twins:
        problems.append(f"operations enqueued as more than one job: {_sample(twins)}")

    if problems:
        raise InvariantError("invariants violated:\n- " + "\n- ".join(problems))
    by_type: dict[str, dict[str, int]] = {}
    for job in jobs.values():
        counts = by_type.setdefault(job["type"], {})
        counts[job["status"]] = counts.get(job["status"], 0) + 1
    total_runs = sum(executions.values())
    return Report(
        enqueued=len(jobs),
        completed=sum(1 for j in jobs.values() if j["status"] == "completed"),
        dead_lettered=len(dead),
        cancelled=sum(1 for j in jobs.values() if j["status"] == "cancelled"),
        lost=len(missing) + len(unfinished),
        duplicated_effects=sum(len(rows) - 1 for rows in doubled.values()),
        duplicated_jobs=sum(len(ids) - 1 for ids in twins.values()),
        executions=total_runs,
        re_executions=total_runs - len(executions),
        rescued=sum(1 for j in jobs.values() if any(e.get("type") == "WorkerLost" for e in j["errors"])),
        by_type=by_type,
    )


def _payload(job: Mapping[str, Any]) -> dict[str, Any]:
    payload = job["payload"]
    return payload if isinstance(payload, dict) else {}


def _sample(items: Iterable[Any], limit: int = 5) -> str:
    listed = list(items.items() if isinstance(items, Mapping) else items)
    shown = ", ".join(str(item) for item in listed[:limit])
    return shown + (f" … and {len(listed) - limit} more" if len(listed) > limit else "")
