"""The `database-backup` command line against the real MariaDB and RGW.

The CLI runs as a separate process (as the detached worker will); the server it restores
is controlled through `server.type = command` (kill/start of `mariadbd`), since the test
server is not a systemd unit.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from database_backup.storage import S3Config
from database_backup.stream import generate_key
from tests.infra.mariadb import MariaDBError, MariaDBServer
from tests.workload.engine_helpers import (
    assert_put_back_after_sigterm,
    change,
    cli_server,
    databases,
    fill,
    run_cli,
    server_pattern,
    server_pids,
    siblings,
    start_cli,
    start_command,
    stop_command,
    wait_state,
)

CLUSTER = "model-cli/mariadb"


def _spec(db: MariaDBServer, config: S3Config, key: bytes | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "cluster-id": CLUSTER,
        "storage": {
            "bucket": config.bucket,
            "endpoint": config.endpoint,
            "region": config.region,
            "path": "cli-tests",
        },
        **cli_server(db),
    }
    if key is not None:
        spec["encryption-key"] = base64.b64encode(key).decode()
    return spec


def _write_spec(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(json.dumps(spec))
    path.chmod(0o600)
    return path


def _backed_up_then_changed(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
) -> tuple[dict[str, Any], Path, str]:
    """A spec without key, a backup of 2,000 rows of `shop`, then changed data.

    Returns:
        The spec, its file, and the backup's id.
    """
    spec_data = _spec(server, s3_config, None)
    spec = _write_spec(tmp_path / "spec.json", spec_data)
    fill(server, "shop", rows=2_000)
    backup = run_cli(["backup"], spec, s3_config, tmp_path / "b.json")
    assert backup.returncode == 0, backup.stderr
    backup_id = json.loads((tmp_path / "b.json").read_text())["backup-id"]
    change(server, "shop")
    return spec_data, spec, backup_id


def _slow_start(tmp_path: Path, spec_data: dict[str, Any], start: list[str]) -> Path:
    """A copy of the spec whose server starts with `start` (slow: time to interrupt)."""
    slow = dict(spec_data, server=dict(spec_data["server"]))
    slow["server"]["start"] = start
    return _write_spec(tmp_path / "slow.json", slow)


def _restore_until(
    backup_id: str, spec: Path, s3_config: S3Config, state: Path, phase: str, marker: Path
) -> subprocess.Popen[bytes]:
    """Start a CLI restore; return once it reached `phase` and `marker` exists."""
    worker = start_cli(["restore", "--backup-id", backup_id], spec, s3_config, state)
    wait_state(state, lambda doc: doc.get("phase") == phase)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert marker.exists(), f"the {phase} command never reached {marker.name}"
    return worker


def _no_secrets(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


def test_cli_backup_list_restore(server: MariaDBServer, s3_config: S3Config, tmp_path: Path):
    key = generate_key()
    spec = _write_spec(tmp_path / "spec.json", _spec(server, s3_config, key))
    secrets = (s3_config.secret_key, server.password, base64.b64encode(key).decode())
    fill(server, "shop", rows=3_000)
    before = server.checksum_tables("shop")

    backup = run_cli(["backup", "--job-id", "job-42"], spec, s3_config, tmp_path / "b.json")

    assert backup.returncode == 0, backup.stderr
    state = json.loads((tmp_path / "b.json").read_text())
    assert state["status"] == "success"
    assert state["command"] == "backup"
    result = state["result"]
    backup_id = result["backup-id"]
    assert state["backup-id"] == backup_id
    assert result["job-id"] == "job-42"
    assert result["encrypted"] is True
    assert state["bytes-done"] == result["raw-size"]
    _no_secrets(backup.stdout + backup.stderr + json.dumps(state), *secrets)

    listing = run_cli(["list", "--json"], spec, s3_config, tmp_path / "l.json")
    assert listing.returncode == 0, listing.stderr
    assert [row["backup-id"] for row in json.loads(listing.stdout)] == [backup_id]

    change(server, "shop")
    restore = run_cli(["restore", "--backup-id", backup_id], spec, s3_config, tmp_path / "r.json")

    assert restore.returncode == 0, restore.stderr
    state = json.loads((tmp_path / "r.json").read_text())
    assert state["status"] == "success"
    assert state["phase"] == "done"
    assert state["result"]["backup-id"] == backup_id
    _no_secrets(restore.stdout + restore.stderr, *secrets)
    # the CLI restarted the server itself: talk to it through the client
    assert server.checksum_tables("shop") == before
    assert "after_backup" not in databases(server)


def test_cli_restore_with_wrong_key_fails_and_keeps_data(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    spec = _write_spec(tmp_path / "spec.json", _spec(server, s3_config, generate_key()))
    fill(server, "shop", rows=1_000)
    backup = run_cli(["backup", "--no-compression"], spec, s3_config, tmp_path / "b.json")
    assert backup.returncode == 0, backup.stderr
    backup_id = json.loads((tmp_path / "b.json").read_text())["backup-id"]
    change(server, "shop")
    current = server.checksum_tables("shop")
    other = _write_spec(tmp_path / "other.json", _spec(server, s3_config, generate_key()))

    restore = run_cli(["restore", "--backup-id", backup_id], other, s3_config, tmp_path / "r.json")

    assert restore.returncode == 1
    state = json.loads((tmp_path / "r.json").read_text())
    assert state["status"] == "error"
    assert "not touched" in state["message"]
    assert "not touched" in restore.stderr
    assert server.checksum_tables("shop") == current


def test_cli_refuses_a_spec_others_can_read(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    spec = _write_spec(tmp_path / "spec.json", _spec(server, s3_config, None))
    spec.chmod(0o644)

    listing = run_cli(["list"], spec, s3_config, tmp_path / "l.json")

    assert listing.returncode == 2
    assert "chmod 600" in listing.stderr
    assert json.loads((tmp_path / "l.json").read_text())["status"] == "error"


def test_worker_killed_mid_restore_then_recover_puts_previous_data_back(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    spec_data, spec, backup_id = _backed_up_then_changed(server, s3_config, tmp_path)
    current = server.checksum_tables("shop")
    # a server that takes long to start gives time to kill the worker after the swap
    slow_spec = _slow_start(tmp_path, spec_data, ["sh", "-c", "sleep 30"])
    journal = server.datadir.parent / f"{server.datadir.name}.restore-journal.json"
    worker = start_cli(
        ["restore", "--backup-id", backup_id],
        slow_spec,
        s3_config,
        tmp_path / "r.json",
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if journal.exists() and json.loads(journal.read_text())["state"] == "swapped":
                break
            time.sleep(0.05)
        else:
            pytest.fail("the restore never reached the swapped state")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert json.loads((tmp_path / "r.json").read_text())["status"] == "running"
    with pytest.raises(MariaDBError):
        server.query("SELECT 1")  # stopped, restored data in place, never verified

    recover = run_cli(["recover"], spec, s3_config, tmp_path / "rec.json")

    assert recover.returncode == 0, recover.stderr
    assert "put the previous data back" in recover.stdout
    assert server.checksum_tables("shop") == current
    assert "after_backup" in databases(server)
    assert not journal.exists()
    assert siblings(server.datadir) == []
    again = run_cli(["recover"], spec, s3_config, tmp_path / "rec2.json")
    assert "no interrupted restore" in again.stdout


def test_sigterm_mid_backup_leaves_no_backup(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    spec = _write_spec(tmp_path / "spec.json", _spec(server, s3_config, None))
    fill(server, "big", rows=300_000)
    state = tmp_path / "b.json"
    worker = start_cli(["backup", "--no-compression"], spec, s3_config, state)
    wait_state(state, lambda doc: doc.get("phase") == "backup" and doc["bytes-done"] > 0)

    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=60)

    assert worker.returncode == 1
    document = json.loads(state.read_text())
    assert document["status"] == "error"
    assert "SIGTERM" in document["message"]
    assert b"SIGTERM" in stderr
    listing = run_cli(["list", "--json", "--all"], spec, s3_config, tmp_path / "l.json")
    rows = json.loads(listing.stdout)
    assert document["backup-id"] not in [row["backup-id"] for row in rows]
    server.execute("DROP DATABASE big")


def test_sigterm_mid_restore_rolls_back(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    spec_data, _spec_file, backup_id = _backed_up_then_changed(server, s3_config, tmp_path)
    current = server.checksum_tables("shop")
    start = ["sh", "-c", "sleep 3; " + shlex.join(start_command(server))]
    slow_spec = _slow_start(tmp_path, spec_data, start)
    state = tmp_path / "r.json"
    worker = start_cli(["restore", "--backup-id", backup_id], slow_spec, s3_config, state)
    wait_state(state, lambda doc: doc.get("phase") == "start")

    worker.send_signal(signal.SIGTERM)

    assert_put_back_after_sigterm(worker, state)
    assert server.checksum_tables("shop") == current
    assert "after_backup" in databases(server)
    assert siblings(server.datadir) == []
    assert len(server_pids(server)) == 1


def test_sigterm_while_the_server_stops_leaves_it_running_on_the_current_data(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    """SIGTERM after the stop command told the server to shut down, before it is down.

    Cut there, the command could leave a server that still answers while it shuts down,
    and the restore, ending before its swap, would not start it again. Here the stop ends
    first; the restore says so and starts the server.
    """
    spec_data, _spec_file, backup_id = _backed_up_then_changed(server, s3_config, tmp_path)
    current = server.checksum_tables("shop")
    told = tmp_path / "told"
    pattern = shlex.quote(server_pattern(server))
    stop = [
        "sh", "-c",
        f"pkill -TERM -f -- {pattern}; touch {shlex.quote(str(told))}; sleep 1; "
        + shlex.join(stop_command(server)),
    ]  # fmt: skip
    spec = _write_spec(
        tmp_path / "slow-stop.json",
        dict(spec_data, server=dict(spec_data["server"], stop=stop)),
    )
    state = tmp_path / "r.json"
    worker = _restore_until(backup_id, spec, s3_config, state, "stop", told)

    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=240)

    assert worker.returncode == 1, stderr
    document = json.loads(state.read_text())
    assert document["status"] == "error"
    assert document["message"] == (
        "the restore ended while stopping the server (stopped by signal SIGTERM); the current "
        "data was not touched; the server runs"
    )
    assert document["data-changed"] is False
    assert len(server_pids(server)) == 1
    assert server.checksum_tables("shop") == current
    assert siblings(server.datadir) == []


def test_sigterm_while_the_server_starts_waits_for_the_start_then_rolls_back(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    """SIGTERM after the start command spawned the server, before the server answers.

    Cut there, the command would leave a server starting on the restored data while the
    rollback moves that data away and starts a second server.
    """
    spec_data, _spec_file, backup_id = _backed_up_then_changed(server, s3_config, tmp_path)
    current = server.checksum_tables("shop")
    spawned = tmp_path / "spawned"
    start = start_command(server, after_spawn=f"touch {shlex.quote(str(spawned))}; sleep 1; ")
    slow_spec = _slow_start(tmp_path, spec_data, start)
    state = tmp_path / "r.json"
    worker = _restore_until(backup_id, slow_spec, s3_config, state, "start", spawned)

    worker.send_signal(signal.SIGTERM)

    assert_put_back_after_sigterm(worker, state)
    assert len(server_pids(server)) == 1
    assert server.checksum_tables("shop") == current
    assert "after_backup" in databases(server)
    assert siblings(server.datadir) == []
