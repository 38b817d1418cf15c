"""The `jobkeeper` command: `main` (pyproject's `jobkeeper = "jobkeeper.cli:main"`) is the group in `app`;
each verb group has its module here and imports what it needs when it runs, so `--help` stays light."""

from jobkeeper.cli.app import main

__all__ = ["main"]
