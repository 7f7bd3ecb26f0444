"""Restore safety on the real MariaDB and RGW (issue 12 items 6 and 7).

One restore at a time per server; a logical restore that fails changes nothing.

The CLI runs as separate processes, as the charm's detached worker runs it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from database_backup.storage import S3Config
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import (
    change,
    cli_argv,
    cli_env,
    cli_server,
    databases,
    fill,
    run_cli,
    start_command,
)

CLUSTER = "model-safety/mariadb"


def _spec(db: MariaDBServer, config: S3Config, path: Path, **server: Any) -> Path:
    sections = cli_server(db)
    sections["server"].update(server)
    spec = {
        "cluster-id": CLUSTER,
        "storage": {
            "bucket": config.bucket,
            "endpoint": config.endpoint,
            "region": config.region,
            "path": "safety",
        },
        "workdir": str(path.parent / "work"),
        **sections,
    }
    path.write_text(json.dumps(spec))
    path.chmod(0o600)
    return path


def _backup(spec: Path, config: S3Config, state: Path, *args: str) -> str:
    run = run_cli(["backup", *args], spec, config, state)
    assert run.returncode == 0, run.stderr
    return json.loads(state.read_text())["backup-id"]


def _wait_state(path: Path, done: Callable[[dict[str, Any]], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if done(json.loads(path.read_text())):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    pytest.fail(f"{path} never reached the expected state")


def test_a_second_restore_of_any_kind_is_refused_while_one_runs(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    spec = _spec(server, s3_config, tmp_path / "spec.json")
    fill(server, "shop", rows=2_000)
    physical = _backup(spec, s3_config, tmp_path / "b1.json")
    logical = _backup(spec, s3_config, tmp_path / "b2.json", "--kind", "logical")
    change(server, "shop")
    # the first restore's server takes a while to start: time to try a second one
    slow = _spec(server, s3_config, tmp_path / "slow.json",
                 start=["sh", "-c", "sleep 4; " + shlex.join(start_command(server))])  # fmt: skip
    first_state = tmp_path / "job-first" / "state.json"
    first_state.parent.mkdir()
    first = subprocess.Popen(
        cli_argv(["restore", "--backup-id", physical], slow, first_state),
        env=cli_env(s3_config),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_state(first_state, lambda doc: doc.get("phase") == "start")
        attempts = {
            "logical": ["restore", "--backup-id", logical],
            "physical": ["restore", "--backup-id", physical],
            "pitr": ["pitr", "--target", "latest", "--no-ship-first"],
            "recover": ["recover"],
        }
        refused = {
            name: run_cli(argv, spec, s3_config, tmp_path / f"{name}.json")
            for name, argv in attempts.items()
        }
    finally:
        _, first_err = first.communicate(timeout=180)

    assert first.returncode == 0, first_err
    for name, run in refused.items():
        assert run.returncode == 3, (name, run.stderr)
        assert (
            f"a restore (restore of backup {physical}; job job-first, pid {first.pid}, started "
            in run.stderr
        ), (name, run.stderr)
        assert "is already running on this server" in run.stderr
        document = json.loads((tmp_path / f"{name}.json").read_text())
        assert document["status"] == "error"
        assert document["data-changed"] is False
    assert "after_backup" not in databases(server)
    # the lock goes with the restore: the next one runs
    after = run_cli(["restore", "--backup-id", logical], spec, s3_config, tmp_path / "l.json")
    assert after.returncode == 0, after.stderr
