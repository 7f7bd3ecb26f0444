"""The engine's process leaves without the interpreter's final full collections.

CPython's exit collects every generation several times; with the S3 SDK loaded that is
0.14-0.18 s of every backup and restore process (`database_backup.cli.leaving`). The
process entry points freeze what is still alive before they exit, so those collections
skip it, and the exit code, the state file and `atexit` handlers are what they were.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from tests.exit_probe import frozen_count, probe_env


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "database_backup.cli", *args],
        env=probe_env(tmp_path / "probe"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_engine_leaves_with_live_objects_frozen_and_its_exit_code(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    missing = tmp_path / "no-such-spec.json"

    done = _run(tmp_path, "backup", "--spec", str(missing), "--state-file", str(state))

    assert done.returncode == 2, done.stderr
    assert "error:" in done.stderr
    assert frozen_count(done.stderr) > 1_000
    written = json.loads(state.read_text())
    assert written["status"] == "error"
    assert "no-such-spec.json" in written["message"]
    assert "finished-at" in written


def test_the_leaving_keeps_atexit_handlers_and_collects_young_garbage() -> None:
    script = """
import atexit, gc, sys, weakref
from database_backup.cli.leaving import leave
class Node:
    pass
def dropped():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)
gc.disable()  # only the explicit collection may free the cycle
ref = dropped()
atexit.register(lambda: print("atexit ran", file=sys.stderr))
def check():
    print("cycle freed" if ref() is None else "cycle alive", file=sys.stderr)
atexit.register(check)
leave(3)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 3, done.stderr
    assert "cycle freed" in done.stderr
    assert "atexit ran" in done.stderr


def test_the_installed_script_uses_the_same_entry_point() -> None:
    (script,) = entry_points(group="console_scripts", name="database-backup")

    assert script.value == "database_backup.cli:run"
