"""One error tree for the package. Every boundary translates foreign errors into these exactly once."""

from __future__ import annotations


class JobkeeperError(Exception):
    """Base class of every error jobkeeper raises on purpose."""


class ConfigError(JobkeeperError):
    """A setting is missing or malformed. The message names the variable and what it expects."""


class InvalidJobError(JobkeeperError, ValueError):
    """An enqueue request is invalid. `field` names the offending option (or `payload`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message

    def locate(self, prefix: str) -> None:
        """Prefix the field path, e.g. with the item's index in a batch."""
        self.field = f"{prefix}.{self.field}"
        self.args = (f"{self.field}: {self.reason}",)


class UnknownQueueError(InvalidJobError):
    def __init__(self, queue: str, known: list[str]) -> None:
        hint = _did_you_mean(queue, known)
        super().__init__(
            "queue", f"unknown queue {queue!r}; known queues: {', '.join(known) or 'none'}{hint}"
        )
        self.queue = queue


class UnknownTenantError(InvalidJobError):
    def __init__(self, tenant_id: object) -> None:
        super().__init__("tenant_id", f"no tenant with id {tenant_id}")


class PayloadTooLargeError(InvalidJobError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__("payload", f"payload is {size} bytes of JSON, above the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class DatabaseError(JobkeeperError):
    """The database failed in a way the caller cannot fix by changing its input."""


class DatabaseUnavailableError(DatabaseError):
    """No connection could be had in time (server down, pool exhausted)."""


class MigrationError(DatabaseError):
    """The schema is missing, behind, or a migration failed."""


def _did_you_mean(value: str, options: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(value, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
