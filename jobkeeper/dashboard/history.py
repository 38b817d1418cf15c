"""A job's history for its page: every event in order, and its failed attempts numbered across retries.

A manual retry resets the job in place (attempts to 0, times cleared, its dead letter marked replayed), so
the runs before it are read back from what is kept: the attempt errors (`errors`, each with its time and
its attempt number within its run), the retries (`retries`, each with how the run before it ended) and the
job's dead-letter row (the latest dead-lettering). Attempts are numbered 1, 2, 3 … over every run; each
also says its run and its number within that run (the `attempt` the worker stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Attempt:
    number: int
    """Counted over every run of the job: a retry does not start again at 1."""
    run: int
    """1 for the first run, one more per manual retry."""
    in_run: int
    at: datetime | None
    type: str
    message: str
    traceback: str | None


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    what: str


@dataclass(frozen=True, slots=True)
class History:
    events: list[Event]
    attempts: list[Attempt]
    """Newest first, as the page lists them."""
    run: int
    """The run the job is in now."""
    total_attempts: int
    """Attempts over every run, the current one included."""


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def history(job: dict[str, Any]) -> History:
    retries = [r for r in job.get("retries") or [] if isinstance(r, dict) and _time(r.get("at"))]
    retried_at = [_time(r["at"]) or job["created_at"] for r in retries]
    events: list[Event] = [Event(job["created_at"], "enqueued")]
    errors = [e for e in job["errors"] or [] if isinstance(e, dict)]
    if not retries and not errors and job["scheduled_at"] > job["created_at"]:
        # Untouched by back-offs or retries, scheduled_at is still the delay the job was enqueued with.
        events.append(Event(job["scheduled_at"], "due (scheduled)"))

    attempts: list[Attempt] = []
    run, offset, last_in_run = 1, 0, 0

    def next_run(spent: int) -> None:
        nonlocal run, offset, last_in_run
        retry = retries[run - 1] if run - 1 < len(retries) else None
        if retry is not None:
            ended_at = _time(retry.get("ended_at"))
            if ended_at is not None:
                events.append(Event(ended_at, str(retry.get("ended") or "ended")))
                if retry.get("dead_lettered"):
                    events.append(Event(ended_at, "moved to dead letters"))
            events.append(Event(retried_at[run - 1], f"retried by hand: run {run + 1} starts"))
        offset += spent
        run += 1
        last_in_run = 0

    for entry in errors:
        at = _time(entry.get("at"))
        in_run = _int(entry.get("attempt"))
        # The retries made before this attempt failed close the runs before it.
        while run - 1 < len(retries) and at is not None and at > retried_at[run - 1]:
            next_run(_int(retries[run - 1].get("attempts")))
        if in_run and in_run <= last_in_run:
            # Numbers restarting without a recorded retry: a retry from before retries were kept.
            next_run(last_in_run)
        last_in_run = max(last_in_run, in_run)
        number = offset + in_run
        attempts.append(
            Attempt(
                number=number,
                run=run,
                in_run=in_run,
                at=at,
                type=str(entry.get("type") or "error"),
                message=str(entry.get("message") or ""),
                traceback=entry.get("traceback") or None,
            )
        )
        if at is not None:
            events.append(Event(at, f"attempt {number} failed: {entry.get('type') or 'error'}"))
    while run - 1 < len(retries):  # retries after the last failed attempt
        next_run(_int(retries[run - 1].get("attempts")))

    current = offset + job["attempts"]
    if job["started_at"] is not None:
        events.append(Event(job["started_at"], f"started (attempt {current})"))
    if job["completed_at"] is not None:
        events.append(Event(job["completed_at"], job["status"]))
    if job.get("dead_lettered_at") is not None:
        replayed_as = job.get("dead_letter_replayed_job_id")
        if job.get("dead_letter_replayed_at") is None or replayed_as != job["id"] or not retries:
            events.append(Event(job["dead_lettered_at"], "moved to dead letters"))
        if job.get("dead_letter_replayed_at") is not None:
            if replayed_as is not None and replayed_as != job["id"]:
                events.append(Event(job["dead_letter_replayed_at"], f"replayed as job {replayed_as}"))
            elif not retries:
                events.append(Event(job["dead_letter_replayed_at"], "retried from dead letters"))
    latest = max(event.at for event in events)
    if job["status"] == "pending" and job["scheduled_at"] > latest:
        events.append(Event(job["scheduled_at"], f"attempt {current + 1} due"))

    # Stable: events of the same instant (a last failure, the job failing, its dead letter) keep their order.
    events.sort(key=lambda event: event.at)
    return History(events, list(reversed(attempts)), run, current)


def numbered(errors: list[Any] | None, failed_at: datetime) -> list[Attempt]:
    """The attempts of a dead letter's error history (no retries kept there), newest first."""
    job = {
        "id": None,
        "status": "failed",
        "attempts": 0,
        "errors": errors,
        "created_at": failed_at,
        "scheduled_at": failed_at,
        "started_at": None,
        "completed_at": None,
    }
    return history(job).attempts
