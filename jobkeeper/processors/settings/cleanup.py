"""Settings of cleanup-old-data, which the maintenance pruner shares: how long finished rows are kept."""

from __future__ import annotations

from jobkeeper.environment import positive_seconds, section, setting


@section
class RetentionSettings:
    retention_finished_jobs: float | None = setting(
        "JOBKEEPER_RETENTION_FINISHED_JOBS", positive_seconds, default=None
    )
    """cleanup-old-data: seconds finished jobs are kept (default 7 days)."""
    retention_queue_metrics: float | None = setting(
        "JOBKEEPER_RETENTION_QUEUE_METRICS", positive_seconds, default=None
    )
    """Seconds metric snapshots are kept (default 30 days)."""
    retention_alerts: float | None = setting("JOBKEEPER_RETENTION_ALERTS", positive_seconds, default=None)
    """Seconds acknowledged alerts are kept (default 30 days)."""
