"""Settings of generate-report."""

from __future__ import annotations

from pathlib import Path

from jobkeeper.environment import directory, section, setting


@section
class ReportSettings:
    reports_dir: Path | None = setting("JOBKEEPER_REPORTS_DIR", directory, default=None)
    """generate-report: where reports too large for the job's result are written as files."""
