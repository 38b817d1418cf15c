"""Why a pending or waiting job is not running: what keeps the claim from it (`dashboard_diagnose_job`).

Each reason mirrors a condition of the claim (jobkeeper/store/sql/outcomes.sql `claim_jobs`) or of the
outbound limiter gate (jobkeeper.limits.outbound): scheduled later, queue paused, no live worker serving
its queue or type, its tenant at its concurrency cap, its limiter out of tokens or at its concurrency cap.
A `waiting` job is not claimable at all until its dependencies have completed: that is its one reason,
with the unfinished parents listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class Reason:
    title: str
    detail: str
    blocking: bool = True
    jobs: tuple[dict[str, Any], ...] = ()
    """Jobs the reason is about (id, type, status), linked from the page."""


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def _dependencies(parents: list[dict[str, Any]]) -> Reason:
    count = len(parents)
    return Reason(
        f"Waiting on {count} {'dependency' if count == 1 else 'dependencies'}",
        "it becomes pending when every job it depends on has completed, and is cancelled if one fails "
        "or is cancelled",
        jobs=tuple(parents),
    )


def diagnose(row: dict[str, Any]) -> list[Reason]:
    """What holds the job back; an empty list means nothing does (it is next in line, or being claimed)."""
    if row["status"] == "waiting":
        return [_dependencies(row["unfinished_parents"] or [])]
    if row["status"] != "pending":
        return []
    reasons: list[Reason] = []
    now: datetime = row["now"]
    scheduled: datetime = row["scheduled_at"]
    if scheduled > now:
        reasons.append(
            Reason(
                "Scheduled later",
                f"it becomes due at {scheduled:%Y-%m-%d %H:%M:%S %Z} (in "
                f"{_seconds((scheduled - now).total_seconds())}): a delay, a retry back-off, or a wait for "
                "a rate limiter's token",
            )
        )
    if row["queue_paused"]:
        reasons.append(
            Reason("Queue paused", f"queue {row['queue']!r} is paused: workers claim nothing from it")
        )
    if row["workers_for_queue"] == 0:
        reasons.append(
            Reason("No worker for its queue", f"no live worker serves queue {row['queue']!r}; start one")
        )
    elif row["workers_for_type"] == 0:
        reasons.append(
            Reason(
                "No worker for its type",
                f"live workers serve {row['queue']!r} but none has a handler for {row['type']!r}",
            )
        )
    cap = row["tenant_max_concurrency"]
    if cap is not None and row["tenant_running"] >= cap:
        reasons.append(
            Reason(
                "Tenant at its concurrency cap",
                f"its tenant runs {row['tenant_running']} jobs, its cap is {cap}; it waits for one to finish",
            )
        )
    limiter = row["limiter"]
    if limiter is not None and row["limiter_rate"] is not None:
        tokens = float(row["limiter_tokens"])
        if tokens < 1:
            refill = (1 - tokens) / float(row["limiter_rate"])
            until = now + timedelta(seconds=refill)
            reasons.append(
                Reason(
                    "Rate limiter without tokens",
                    f"limiter {limiter!r} has {tokens:.2f} tokens; the next one is due at "
                    f"{until:%H:%M:%S %Z} (in {_seconds(refill)})",
                )
            )
        max_concurrency = row["limiter_max_concurrency"]
        if max_concurrency is not None and row["limiter_in_flight"] >= max_concurrency:
            reasons.append(
                Reason(
                    "Rate limiter at its concurrency cap",
                    f"limiter {limiter!r} has {row['limiter_in_flight']} calls in flight, "
                    f"its cap is {max_concurrency}",
                )
            )
    if not reasons and row["ahead"]:
        reasons.append(
            Reason(
                "Waiting its turn",
                f"{row['ahead']} ready jobs of queue {row['queue']!r} are ahead of it (priority, then age)",
                blocking=False,
            )
        )
    return reasons
