"""One error tree for the package. Every boundary translates foreign errors into these exactly once."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from jobkeeper.types import Job


class JobkeeperError(Exception):
    """Base class of every error jobkeeper raises on purpose."""


class ConfigError(JobkeeperError):
    """A setting is missing or malformed. The message names the variable and what it expects."""


class InvalidJobError(JobkeeperError, ValueError):
    """An enqueue request is invalid. `field` is the public path of the offending option (`priority`, or
    `jobs[2].priority` in a batch); `name` is the option itself and `index` the item of the batch, if any."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.name = field
        self.index: int | None = None
        self.reason = message

    def at(self, index: int) -> None:
        """Place the error at item `index` of a batch."""
        self.index = index
        self.field = f"jobs[{index}].{self.name}"
        self.args = (f"{self.field}: {self.reason}",)

    def locate(self, prefix: str) -> None:
        """Prefix the field path, e.g. with the item's index in a batch. Kept until its callers use `at`."""
        self.field = f"{prefix}.{self.field}"
        self.args = (f"{self.field}: {self.reason}",)


class UnknownQueueError(InvalidJobError):
    def __init__(self, queue: str, known: list[str]) -> None:
        hint = did_you_mean(queue, known)
        super().__init__(
            "queue", f"unknown queue {queue!r}; known queues: {', '.join(known) or 'none'}{hint}"
        )
        self.queue = queue


class InvalidPayloadError(InvalidJobError):
    """A payload breaks its job type's rules (`jobkeeper.payloads`). `problems` holds every
    (field, reason), e.g. `("payload.to", "is not a valid email address: …")`; `field` is the first."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        field, reason = problems[0]
        rest = "".join(f"; {f}: {r}" for f, r in problems[1:])
        super().__init__(field, reason + rest)
        self.problems = problems

    def locate(self, prefix: str) -> None:
        """Prefix every problem's field, not only the first one's."""
        self.problems = [(f"{prefix}.{field}", reason) for field, reason in self.problems]
        field, reason = self.problems[0]
        rest = "".join(f"; {f}: {r}" for f, r in self.problems[1:])
        self.field, self.reason = field, reason + rest
        self.args = (f"{self.field}: {self.reason}",)


class UnknownJobTypeError(InvalidJobError):
    """No worker has registered the type and nobody declared it (`jobkeeper types declare`)."""

    def __init__(self, job_type: str, known: list[str]) -> None:
        super().__init__(
            "type",
            f"unknown job type {job_type!r}{did_you_mean(job_type, known)}: a type is known once a worker "
            "handling it has started, or when declared (`jobkeeper types declare NAME`, "
            "POST /api/v1/queue/types); JOBKEEPER_ALLOW_UNKNOWN_TYPES=true accepts any type",
        )
        self.job_type = job_type


class UnknownReferenceError(InvalidJobError):
    """A value names a row that does not exist (a foreign key the database refused): `field` is the column,
    e.g. `tenant_id` or `queue`, when the constraint is known to `jobkeeper.store.errors`."""


class UnknownTenantError(UnknownReferenceError):
    def __init__(self, tenant_id: object) -> None:
        super().__init__("tenant_id", f"no tenant with id {tenant_id}")


class InvalidValueError(InvalidJobError):
    """The database refused a value: out of its type's range, or against a check constraint. `column` is
    the column when the constraint is known (`field` then too), else None and `field` is "value"."""

    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(column or "value", message)
        self.column = column
        if column is None:  # no field to name: the message alone, as the CLI printed it before
            self.args = (message,)


class PayloadTooLargeError(InvalidJobError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__("payload", f"payload is {size} bytes of JSON, above the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class JobFinishedError(JobkeeperError):
    """The job completed or failed already, so it cannot be cancelled (the API answers 409, the CLI exits 1).
    `job` is the job as it is."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id} has already {job.status.value}; it cannot be cancelled")
        self.job = job


class ConflictError(JobkeeperError):
    """A write collides with an existing row (a unique key): `field` names the key, e.g. a schedule's
    `name` within its tenant, or is None when the constraint is not known."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field


class DatabaseError(JobkeeperError):
    """The database failed in a way the caller cannot fix by changing its input."""


class DatabaseUnavailableError(DatabaseError):
    """No connection could be had in time (server down, pool exhausted)."""


class StatementTimeoutError(DatabaseUnavailableError):
    """A statement was cancelled (statement_timeout, or cancelled by an operator). Like an unavailable
    database, trying again later may work: the completer retries its batch."""


class MigrationError(DatabaseError):
    """The schema is missing, behind, or a migration failed."""


def did_you_mean(value: str, options: Iterable[str], form: str = " (did you mean {!r}?)") -> str:
    """`form` naming the option closest to `value` (a typo's fix), or "" when none is close: the one
    "did you mean" of the settings, the CLI, the API and the client, each in the form it always had."""
    import difflib  # imported on a typo, not by every command

    close = difflib.get_close_matches(value, options, n=1)
    return form.format(close[0]) if close else ""


# Job-outcome signals: a handler raises one of these to say how its attempt ends. They are not errors of
# jobkeeper; the worker turns each into the job's next state.


class OutcomeSignal(Exception):
    """Base class of the signals a handler raises to choose its job's outcome."""


class Retry(OutcomeSignal):
    """Run the job again after `after` seconds (database clock). The attempt counts: when it was the
    last one, the job fails and is dead-lettered."""

    def __init__(self, after: float = 0.0, reason: str = "retry requested by the handler") -> None:
        if not after >= 0 or after == float("inf"):
            raise ValueError(f"Retry(after=...) must be a finite number of seconds ≥ 0, got {after!r}")
        super().__init__(reason)
        self.after = float(after)
        self.reason = reason


class Snooze(OutcomeSignal):
    """Put the job back to pending for `seconds` without spending an attempt (e.g. a resource is busy)."""

    def __init__(self, seconds: float) -> None:
        if not seconds >= 0 or seconds == float("inf"):
            raise ValueError(f"Snooze(seconds) must be a finite number of seconds ≥ 0, got {seconds!r}")
        super().__init__(f"snoozed for {seconds} s")
        self.seconds = float(seconds)


class PermanentError(OutcomeSignal):
    """The job can never succeed (a declined card, a malformed payload): fail now, no retry, dead-letter.
    Subclass it for your own permanent failures."""


class Cancel(OutcomeSignal):
    """End the job as cancelled, with `reason` recorded in its error history."""

    def __init__(self, reason: str = "cancelled by the handler") -> None:
        super().__init__(reason)
        self.reason = reason
