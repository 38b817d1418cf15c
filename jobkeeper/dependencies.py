"""Moved to `jobkeeper.store.dependencies` (issue 16). `needs_settle` is re-exported only for the worker's
completer and the maintenance rescuer and sweep, until they call the store's operations (WP2); then this
module goes."""

from jobkeeper.store.dependencies import needs_settle

__all__ = ["needs_settle"]
