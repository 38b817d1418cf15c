"""Maintenance that runs only in the worker holding the leader lease: rescuer, cron scheduler, pruning,
metric snapshots and alert checks.

Kept free of imports: `jobkeeper.config` composes `maintenance.settings`, and the CLI reads its settings
without loading the database driver (tests/cli/test_import.py).
"""
