"""What a killed restore worker leaves for the charm to read (real MariaDB and RGW).

The charm's runner decides what to tell the admin about a restore whose worker died from
the engine's state file: `data-changed` True (a logical restore cut while applying
statements: nothing can put that back) or unset (a physical restore or PITR: `recover`
puts the previous data back from the journal).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from database_backup.storage import S3Config
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import cli_argv, cli_env, cli_server, fill, run_cli


@pytest.fixture(scope="module")
def server(make_mariadb: Callable[..., MariaDBServer]) -> Iterator[MariaDBServer]:
    db = make_mariadb("killed-restore")
    yield db
    db.stop()


def _spec(db: MariaDBServer, config: S3Config, tmp_path: Path) -> Path:
    spec: dict[str, Any] = {
        "cluster-id": "model-killed/restore",
        "storage": {"bucket": config.bucket, "endpoint": config.endpoint, "path": "killed"},
        **cli_server(db),
        "workdir": str(tmp_path / "work"),
    }
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    path.chmod(0o600)
    return path


def test_logical_restore_killed_while_applying_says_the_data_was_changed(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    spec = _spec(server, s3_config, tmp_path)
    fill(server, "shop", rows=200_000)
    backup = run_cli(
        ["backup", "--kind", "logical", "--databases", "shop"], spec, s3_config, tmp_path / "b"
    )
    assert backup.returncode == 0, backup.stderr
    backup_id = json.loads((tmp_path / "b").read_text())["backup-id"]
    state = tmp_path / "r.json"
    worker = subprocess.Popen(
        cli_argv(["restore", "--backup-id", backup_id], spec, state),
        env=cli_env(s3_config),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and worker.poll() is None:
            try:
                document = json.loads(state.read_text())
            except (OSError, ValueError):
                continue
            if document.get("phase") == "apply":
                break
            time.sleep(0.01)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()

    document = json.loads(state.read_text())
    assert (document["status"], document["phase"]) == ("running", "apply")
    assert document["data-changed"] is True
