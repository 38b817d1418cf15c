"""Maintenance that runs only in the worker holding the leader lease: rescuer (and, later, the cron
scheduler, pruning, metric snapshots and alert checks)."""

from jobkeeper.maintenance.leader import Leader, MaintenanceTask
from jobkeeper.maintenance.rescuer import Rescuer, RescueResult, rescue_stale_jobs

__all__ = ["Leader", "MaintenanceTask", "RescueResult", "Rescuer", "rescue_stale_jobs"]
