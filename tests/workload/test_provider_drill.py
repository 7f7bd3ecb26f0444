"""Restore drills through the mysql-server charm, on the real MariaDB and RGW fixtures.

The charm's handlers (Scenario) start the engine's real `verify` as a detached worker; the
drill restores the backup into a scratch server under `drill-directory`, checks it, stores
the verdict beside the backup and removes the scratch server. A restore requested while a
drill runs stops the drill and runs. Run with `-s` for the transcript.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from database_backup.interface import JobRequest, JobType
from database_backup.jobs import JobStore
from database_backup.storage import S3Config
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import change, fill
from tests.workload.provider_helpers import Unit, catalog, show


def drill_unit(server: MariaDBServer, s3: S3Config, tmp_path: Path) -> tuple[Unit, Path]:
    """An installed unit whose drill-directory is a fresh directory of the test."""
    unit = Unit(server, s3, tmp_path)
    drills = tmp_path / "drills"
    config = {**unit.state.config, "drill-directory": str(drills)}
    unit.state = dataclasses.replace(unit.state, config=config)
    unit.run("install", unit.ctx.on.install())
    return unit, drills


def back_up(unit: Unit, job_id: str, finished: int) -> str:
    """Run a full backup job to its end; return the backup id."""
    unit.request(JobRequest(job_id, JobType.BACKUP, unit.storage))
    unit.wait_for_hand_back(finished)
    unit.job_finished()
    status = unit.statuses()[job_id]
    assert status["status"] == "success", status.get("message")
    return status["backup-id"]


def test_a_drill_job_passes_and_leaves_the_live_server_untouched(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
) -> None:
    unit, drills = drill_unit(server, s3_config, tmp_path)
    fill(server, "shop", rows=3_000)
    backup_id = back_up(unit, "backup-1", 1)
    before = server.checksum_tables("shop")
    live_files = sorted(p.name for p in server.datadir.iterdir())

    print("== drill job")
    drill = JobRequest("drill-1", JobType.BACKUP, unit.storage, verify_backup_id=backup_id)
    started = time.monotonic()
    unit.request(drill)
    running = unit.statuses()["drill-1"]
    assert running["status"] == "running", running.get("message")
    assert running["verify-backup-id"] == backup_id
    unit.wait_for_hand_back(2)
    unit.job_finished()
    print(f"  drill took {time.monotonic() - started:.1f} s")
    show("unit databag after job-finished", unit.databag())

    status = unit.statuses()["drill-1"]
    assert status["status"] == "success", status.get("message")
    assert status["message"] == f"drill of backup {backup_id} passed"
    verification = status["verification"]
    assert verification["result"] == "pass"
    assert verification["tables-checked"] >= 1
    assert "backup-id" not in status  # a drill made no backup
    stored = catalog(s3_config, f"{unit.state.model.uuid}/mysql-server").read_verification(
        backup_id
    )
    assert stored is not None
    assert (stored["result"], stored["job-id"]) == ("pass", "drill-1")
    assert stored["unit"] == "mysql-server/0"
    # the live server: same data, same files; the scratch server is gone
    assert server.checksum_tables("shop") == before
    assert sorted(p.name for p in server.datadir.iterdir()) == live_files
    assert list(drills.glob("drill-*")) == []
    server.execute("DROP DATABASE shop")


def test_a_restore_cancels_a_running_drill_and_runs(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
) -> None:
    unit, drills = drill_unit(server, s3_config, tmp_path)
    fill(server, "big", rows=150_000)
    backup_id = back_up(unit, "backup-1", 1)
    before = server.checksum_tables("big")
    drill = JobRequest(
        "drill-1", JobType.BACKUP, unit.storage, verify_backup_id=backup_id,
        requested_at="2026-11-22T08:00:00Z",
    )  # fmt: skip
    unit.request(drill)
    (local,) = JobStore(unit.server.state_dir / "jobs").running()
    deadline = time.monotonic() + 60
    while local.state().get("phase") in (None, "starting") and time.monotonic() < deadline:
        time.sleep(0.02)  # the drill is under way
    assert local.is_locked(), local.log_path.read_text()[-2000:]
    change(server, "big")

    print("== restore requested while the drill runs")
    restore = JobRequest(
        "restore-1", JobType.RESTORE, unit.storage, backup_id=backup_id,
        requested_at="2026-11-22T08:00:01Z",
    )  # fmt: skip
    unit.request(drill, restore)
    show("unit databag after relation-changed", unit.databag())

    statuses = unit.statuses()
    assert statuses["drill-1"]["status"] == "error"
    assert statuses["drill-1"]["message"] == "cancelled: restore job restore-1 was requested"
    assert statuses["restore-1"]["status"] == "running", statuses["restore-1"].get("message")
    unit.wait_for_hand_back(3)  # the backup, the cancelled drill, the restore
    unit.job_finished()
    show("unit databag after job-finished", unit.databag())
    statuses = unit.statuses()
    assert statuses["restore-1"]["status"] == "success", statuses["restore-1"].get("message")
    assert statuses["drill-1"]["message"] == "cancelled: restore job restore-1 was requested"
    assert server.checksum_tables("big") == before
    deadline = time.monotonic() + 30
    while local.is_locked() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not local.is_locked()
    assert list(drills.glob("drill-*")) == []  # the cancelled drill removed its scratch server
    server.execute("DROP DATABASE big")
