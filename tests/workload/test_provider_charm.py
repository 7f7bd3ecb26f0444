"""The mysql-server charm's handlers, run through Scenario, drive the REAL engine.

Each job is started by the charm's `relation-changed` handler as a real detached worker
(its own session, clean environment) running the engine's command line against the real
MariaDB and RGW fixtures; the worker's hand-back command (in production `juju-exec ...
job-finished`) here appends to a file, and the test then runs the charm's `job-finished`
handler, which publishes the final status. Only the server's host plumbing is swapped
(`FixtureServer`: no apt, no systemd; the server is the fixture's `mariadbd`, stopped and
started by commands); the backup user is created with the charm's real grants.

Run with `-s` to see the transcript: unit databag before/after and each hook's duration.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from mysql_provider.workload import BACKUP_USER
from ops import testing

from database_backup.interface import JobRequest, JobType
from database_backup.interface.locking import RESTORING_MESSAGE
from database_backup.jobs import JobStore
from database_backup.storage import S3Config
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import change, databases, fill
from tests.workload.provider_helpers import Unit, catalog, show


def test_backup_and_restore_jobs_through_the_charm(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
) -> None:
    unit = Unit(server, s3_config, tmp_path)
    print("\n== install (the charm's real backup user grants on the fixture server)")
    unit.run("install", unit.ctx.on.install())
    password = next(s for s in unit.state.secrets if s.label == "backup-user").tracked_content
    assert server.query("SELECT user FROM mysql.user WHERE user = 'charm-backup'") == [
        (BACKUP_USER,)
    ]
    fill(server, "shop", rows=3_000)
    before = server.checksum_tables("shop")

    print("== backup job")
    show("unit databag before", unit.databag())
    backup = JobRequest(
        "backup-1", JobType.BACKUP, unit.storage, description="workload test",
        encryption_secret_id=unit.key.id,
    )  # fmt: skip
    unit.request(backup)
    show("unit databag after relation-changed", unit.databag())
    assert unit.statuses()["backup-1"]["status"] == "running"
    unit.wait_for_hand_back(1)
    unit.job_finished()
    show("unit databag after job-finished", unit.databag())
    done = unit.statuses()["backup-1"]
    assert done["status"] == "success", done.get("message")
    cluster = f"{unit.state.model.uuid}/mysql-server"
    meta = catalog(s3_config, cluster).read_metadata(done["backup-id"])
    assert meta.stored_size == done["size-bytes"]
    # the artefact's checksum is of its parts (backup.json): not the interface's sha256
    assert meta.sha256 is None
    assert "sha256" not in done
    assert meta.job_id == "backup-1"
    assert meta.encrypted is True
    assert done["encrypted"] is True
    assert done["artefact-path"] == f"charm-tests/{cluster}/backups/{done['backup-id']}"

    print("== restore job (and a backup asked for while it runs)")
    change(server, "shop")
    restore = JobRequest(
        "restore-1", JobType.RESTORE, unit.storage, artefact_path=done["artefact-path"],
        backup_id=done["backup-id"], requested_at="2026-11-22T08:00:00Z",
        encryption_secret_id=unit.key.id,
    )  # fmt: skip
    unit.request(backup, restore)
    show("unit databag after relation-changed", unit.databag())
    assert unit.statuses()["restore-1"]["status"] == "running"
    (restoring,) = JobStore(unit.server.state_dir / "jobs").running()
    deadline = time.monotonic() + 30
    while restoring.state().get("phase") in (None, "starting") and time.monotonic() < deadline:
        time.sleep(0.02)  # let the engine report a phase, so update-status has progress
    unit.run("update-status", unit.ctx.on.update_status())
    show(
        "unit databag after update-status (restore status only)",
        {"jobs": json.dumps([s for s in unit.statuses().values() if s["job-id"] == "restore-1"])},
    )
    if restoring.is_locked():  # still restoring after the hook: the unit says so
        assert isinstance(unit.state.unit_status, testing.MaintenanceStatus)
        assert str(unit.state.unit_status.message).startswith(
            f"restoring backup {done['backup-id']}"
        )
    late = JobRequest(
        "backup-2", JobType.BACKUP, unit.storage, requested_at="2026-11-22T08:00:01Z"
    )
    unit.request(backup, restore, late)
    refused = unit.statuses()["backup-2"]
    if restoring.is_locked():
        assert refused["message"] == RESTORING_MESSAGE.format(job="restore-1")
    unit.wait_for_hand_back(2)
    unit.job_finished()
    show("unit databag after job-finished", unit.databag())
    restored = unit.statuses()["restore-1"]
    assert restored["status"] == "success", restored.get("message")
    assert restored["recovered-from-backup"] == done["backup-id"]
    assert server.checksum_tables("shop") == before
    assert "after_backup" not in databases(server)
    assert unit.state.unit_status == testing.ActiveStatus("")

    # no secret in anything the jobs left behind or published
    secrets = (
        s3_config.secret_key,
        password["password"],
        server.password,
        unit.key.tracked_content["key"],
    )
    leftovers = "".join(p.read_text() for p in (tmp_path / "host").rglob("*") if p.is_file())
    published = json.dumps(unit.databag())
    for secret in secrets:
        assert secret not in leftovers
        assert secret not in published
    assert not list((tmp_path / "host").rglob("spec.json"))
    print("== hook timings: " + ", ".join(f"{name} {t:.3f} s" for name, t in unit.timings))


def test_killed_worker_becomes_an_error_on_update_status(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
) -> None:
    unit = Unit(server, s3_config, tmp_path)
    unit.run("install", unit.ctx.on.install())
    fill(server, "big", rows=150_000)
    unit.request(JobRequest("backup-k", JobType.BACKUP, unit.storage))
    (local,) = JobStore(unit.server.state_dir / "jobs").running()
    pid = int((local.dir / "worker.pid").read_text())
    deadline = time.monotonic() + 60
    while local.state().get("phase") in (None, "starting") and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(pid, signal.SIGKILL)  # the worker and the engine, at once
    while local.is_locked() and time.monotonic() < deadline:
        time.sleep(0.05)

    unit.run("update-status", unit.ctx.on.update_status())

    status = unit.statuses()["backup-k"]
    assert status["status"] == "error"
    assert "stopped unexpectedly" in status["message"]
    assert JobStore(unit.server.state_dir / "jobs").running() == []
    assert not local.spec_path.exists()
    assert catalog(s3_config, f"{unit.state.model.uuid}/mysql-server").list_backups() == []
    server.execute("DROP DATABASE big")


def test_cancel_job_action_stops_a_backup_cleanly(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
) -> None:
    unit = Unit(server, s3_config, tmp_path)
    unit.run("install", unit.ctx.on.install())
    fill(server, "big", rows=800_000)
    unit.request(JobRequest("backup-c", JobType.BACKUP, unit.storage))
    (local,) = JobStore(unit.server.state_dir / "jobs").running()
    deadline = time.monotonic() + 60
    while not local.state().get("bytes-done") and time.monotonic() < deadline:
        time.sleep(0.005)  # streaming (a SIGTERM during the S3 set-up calls is swallowed)

    # freeze the job so the cancel surely lands mid-backup (SIGTERM stays pending)
    pgid = int((local.dir / "worker.pid").read_text())
    os.killpg(pgid, signal.SIGSTOP)
    try:
        unit.run("cancel-job", unit.ctx.on.action("cancel-job", params={"job-id": "backup-c"}))
    finally:
        os.killpg(pgid, signal.SIGCONT)
    unit.wait_for_hand_back(1)
    unit.job_finished()

    status = unit.statuses()["backup-c"]
    assert status["status"] == "error"
    assert "SIGTERM" in status["message"]
    cluster = f"{unit.state.model.uuid}/mysql-server"
    assert catalog(s3_config, cluster).list_backups(include_incomplete=True) == []
    server.execute("DROP DATABASE big")


def test_killed_restore_is_reported_and_recovered(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
) -> None:
    unit = Unit(server, s3_config, tmp_path)
    unit.run("install", unit.ctx.on.install())
    fill(server, "shop", rows=2_000)
    backup = JobRequest("backup-r", JobType.BACKUP, unit.storage)
    unit.request(backup)
    unit.wait_for_hand_back(1)
    unit.job_finished()
    backup_id = unit.statuses()["backup-r"]["backup-id"]
    change(server, "shop")
    current = server.checksum_tables("shop")
    journal = server.datadir.parent / f"{server.datadir.name}.restore-journal.json"

    # the restore swaps the data in, then the server hangs on start: kill every process
    unit.server.slow_start_flag.touch()
    restore = JobRequest("restore-k", JobType.RESTORE, unit.storage, backup_id=backup_id)
    unit.request(backup, restore)
    (local,) = JobStore(unit.server.state_dir / "jobs").running()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        swapped = journal.exists() and json.loads(journal.read_text()).get("state") == "swapped"
        # the hanging start removes the flag: kill only then, or the recovery's own start
        # would be the one that hangs and fails
        if swapped and not unit.server.slow_start_flag.exists():
            break
        time.sleep(0.05)
    else:
        pytest.fail("the restore never swapped the data in and started the server")
    os.killpg(int((local.dir / "worker.pid").read_text()), signal.SIGKILL)
    while local.is_locked() and time.monotonic() < deadline:
        time.sleep(0.05)

    unit.run("update-status", unit.ctx.on.update_status())

    status = unit.statuses()["restore-k"]
    assert status["status"] == "error", local.log_path.read_text()
    assert status["message"].endswith("the previous data is being put back (see show-jobs)")
    assert isinstance(unit.state.unit_status, testing.MaintenanceStatus)  # recovery holds the lock
    unit.wait_for_hand_back(2)  # the recovery hands back too
    unit.job_finished()
    assert unit.state.unit_status == testing.ActiveStatus("")
    assert server.checksum_tables("shop") == current
    assert "after_backup" in databases(server)
    assert not journal.exists()
    recovery = JobStore(unit.server.state_dir / "jobs").get(f"{local.record.key}-recover")
    assert recovery is not None
    assert recovery.outcome().status == "success"
