"""A clone keeps its embedded database in its own `.jobkeeper/data` (root included), never in a
machine-wide directory another clone shares; `make clean` removes it, and refuses while it runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from jobkeeper.config import Settings, checkout_dir

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_keeps_its_own_data_dir() -> None:
    assert checkout_dir() == ROOT
    assert Settings.from_env({}).data_dir == ROOT / ".jobkeeper" / "data"
    assert Settings.from_env({"JOBKEEPER_DATA_DIR": "/srv/jk"}).data_dir == Path("/srv/jk")


def _clone(tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copy(ROOT / "Makefile", clone / "Makefile")
    (clone / ".venv").mkdir()
    (clone / ".jobkeeper" / "data" / "pgdata").mkdir(parents=True)
    (clone / ".jobkeeper" / "data" / "pgdata" / "PG_VERSION").write_text("17\n")
    return clone


def test_make_clean_removes_the_clones_data_dir(tmp_path: Path) -> None:
    clone = _clone(tmp_path)
    elsewhere = tmp_path / "installed-data"  # another setup's data dir: never touched
    elsewhere.mkdir()
    done = subprocess.run(["make", "clean"], cwd=clone, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not (clone / ".jobkeeper").exists()
    assert not (clone / ".venv").exists()
    assert elsewhere.exists()


def test_make_clean_refuses_while_the_clones_server_runs(tmp_path: Path) -> None:
    clone = _clone(tmp_path)
    pid_file = clone / ".jobkeeper" / "data" / "pgdata" / "postmaster.pid"
    pid_file.write_text(f"{os.getpid()}\n/some/where\n")  # a live process stands for the server
    done = subprocess.run(["make", "clean"], cwd=clone, capture_output=True, text=True)
    assert done.returncode != 0
    assert f"is running (pid {os.getpid()}): stop `make up` first" in done.stderr
    assert pid_file.exists()
