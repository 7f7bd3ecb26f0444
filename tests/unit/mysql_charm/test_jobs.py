"""Scenario tests of the job paths.

New job, lock refusal, worker finished, worker died, restore in progress, two units,
missing secret, relation broken while a job runs.
"""

from __future__ import annotations

import dataclasses
import json
import stat
from typing import Any

from ops import testing
from scenario.state import _Event

from database_backup.interface import JobRequest
from database_backup.interface.locking import RESTORING_MESSAGE
from database_backup.interface.testing import requests_databag
from database_backup.jobs import JobStore

from .conftest import (
    CREDENTIALS,
    PASSWORD,
    FakeLauncher,
    FakeServer,
    job,
    make_ctx,
    relation,
    relation_in,
    state,
    statuses,
)

BACKUP_RESULT = {
    "backup-id": "b-1", "kind": "full", "stored-size": 4096, "sha256": "ab" * 32,
    "compression": "zstd", "encrypted": False, "flavour": "mariadb",
    "server-version": "10.11.6", "binlog-file": "bin.000003", "binlog-position": 1337,
    "gtid-set": "0-1-42",
}  # fmt: skip


def job_finished() -> _Event:
    """What the worker dispatches: `JUJU_DISPATCH_PATH=hooks/job-finished ./dispatch`."""
    return _Event("job_finished")


def store(server: FakeServer) -> JobStore:
    return JobStore(server.state_dir / "jobs")


def with_jobs(rel: testing.Relation, *jobs: JobRequest) -> testing.Relation:
    return dataclasses.replace(rel, remote_app_data=requests_databag(jobs))


def run_changed(
    ctx: testing.Context[Any], rel: testing.Relation, st: testing.State
) -> testing.State:
    return ctx.run(ctx.on.relation_changed(rel, remote_unit=0), st)


def test_new_backup_job_starts_a_worker_and_publishes_running(
    ctx: testing.Context[Any], server: FakeServer, launcher: FakeLauncher
) -> None:
    rel = relation(job("backup-1", description="nightly"))

    out = run_changed(ctx, rel, state(rel))

    (local,) = launcher.started
    status = statuses(out, rel)["backup-1"]
    assert status["status"] == "running"
    assert status["unit"] == "mysql-server/0"
    assert status["backup-id"] == local.record.labels["backup-id"]
    # its start and end lines go to the server's job log: under the server's root (the test's
    # directory here), not the machine's /var/log whatever the server
    assert local.record.labels["job-log"] == str(server.job_log)
    root = server.state_dir.parents[2]  # the server's `root`: <tmp>/root
    assert server.job_log == root / "var" / "log" / "database-backup" / "jobs.log"
    assert local.record.command[:2] == ("backup", "--backup-id")
    assert "--description" in local.record.command
    # the secrets are in the 0600 spec file only, never in what describes the job
    spec = json.loads(local.spec_path.read_text())
    assert stat.S_IMODE(local.spec_path.stat().st_mode) == 0o600
    assert spec["storage"]["secret-key"] == "unit-secret-key-value"
    assert spec["connection"] == {
        "user": "charm-backup", "password": "backup-pw-123", "socket": "/run/mysqld/mysqld.sock"
    }  # fmt: skip
    described = (local.dir / "job.json").read_text() + json.dumps(
        out.get_relation(rel.id).local_unit_data
    )
    assert "unit-secret-key-value" not in described
    assert "backup-pw-123" not in described
    assert spec["cluster-id"] == f"{out.model.uuid}/mysql-server"


def test_requirers_cluster_id_names_the_catalog_prefix(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(job("backup-1"), **{"cluster-id": "uuid-1/db"})

    run_changed(ctx, rel, state(rel))

    spec = json.loads(launcher.started[0].spec_path.read_text())
    assert spec["cluster-id"] == "uuid-1/db"


def test_worker_finished_publishes_the_result_at_once(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(job("backup-1"))
    out = run_changed(ctx, rel, state(rel))
    (local,) = launcher.started
    backup_id = local.record.labels["backup-id"]
    launcher.finish(local, result={**BACKUP_RESULT, "backup-id": backup_id})

    out = ctx.run(job_finished(), out)

    status = statuses(out, rel)["backup-1"]
    assert status["status"] == "success"
    assert status["artefact-path"] == f"prod/{out.model.uuid}/mysql-server/backups/{backup_id}"
    assert status["size-bytes"] == 4096
    assert status["gtid-set"] == "0-1-42"
    assert status["finished-at"] == "2026-11-22T07:16:40Z"
    assert not local.spec_path.exists()
    assert out.unit_status == testing.ActiveStatus("")


def test_update_status_publishes_progress_of_a_running_job(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(job("backup-1"))
    out = run_changed(ctx, rel, state(rel))
    launcher.progress(launcher.started[0], "streaming", 300, 1000)

    out = ctx.run(ctx.on.update_status(), out)

    status = statuses(out, rel)["backup-1"]
    assert (status["status"], status["phase"]) == ("running", "streaming")
    assert status["progress"] == {"bytes-done": 300, "bytes-estimated": 1000}
    assert out.unit_status == testing.ActiveStatus("1 job(s) running")


def test_dead_worker_becomes_an_error_and_releases_the_lock(
    ctx: testing.Context[Any], server: FakeServer, launcher: FakeLauncher
) -> None:
    rel = relation(job("backup-1"))
    out = run_changed(ctx, rel, state(rel))
    local = launcher.started[0]
    launcher.progress(local, "streaming", 10, 100)
    launcher.die(local)

    out = ctx.run(ctx.on.update_status(), out)

    status = statuses(out, rel)["backup-1"]
    assert status["status"] == "error"
    assert "stopped unexpectedly during phase 'streaming'" in status["message"]
    assert store(server).running() == []
    assert not local.spec_path.exists()


def test_dead_restore_worker_starts_the_recovery(
    ctx: testing.Context[Any], server: FakeServer, launcher: FakeLauncher
) -> None:
    rel = relation(job("restore-1", "restore"))
    out = run_changed(ctx, rel, state(rel))
    launcher.die(launcher.started[0])

    out = ctx.run(ctx.on.update_status(), out)

    recovery = launcher.started[1]
    assert recovery.record.command == ("recover",)
    assert recovery.record.kind == "restore"  # holds the restore lock while it runs
    assert recovery.record.labels["job-log"] == str(server.job_log)
    status = statuses(out, rel)["restore-1"]
    assert status["status"] == "error"
    assert status["message"].endswith("the previous data is being put back (see show-jobs)")
    assert isinstance(out.unit_status, testing.MaintenanceStatus)


def _die_with_state(launcher: FakeLauncher, local: Any, **state: Any) -> None:
    """The worker wrote `state` (a restore's last state file), then every process died."""
    local.state_path.write_text(json.dumps({"status": "running", **state}))
    launcher.die(local)


def test_dead_logical_restore_cut_while_applying_says_the_data_was_changed(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(job("restore-1", "restore"))
    out = run_changed(ctx, rel, state(rel))
    _die_with_state(
        launcher, launcher.started[0], command="restore", phase="apply", **{"data-changed": True}
    )

    out = ctx.run(ctx.on.update_status(), out)

    assert len(launcher.started) == 1  # nothing to put back: no recovery started
    message = statuses(out, rel)["restore-1"]["message"]
    assert "being put back" not in message
    assert "the data was changed" in message
    assert "restore a backup again" in message


def test_dead_logical_restore_before_applying_says_nothing_was_changed(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(job("restore-1", "restore"))
    out = run_changed(ctx, rel, state(rel))
    _die_with_state(
        launcher, launcher.started[0], command="restore", phase="verify", **{"data-changed": False}
    )

    out = ctx.run(ctx.on.update_status(), out)

    assert len(launcher.started) == 1
    message = statuses(out, rel)["restore-1"]["message"]
    assert "being put back" not in message
    assert message.endswith("no data had been changed")


def test_dead_pitr_worker_starts_the_recovery_and_says_so(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(job("restore-1", "restore"))
    out = run_changed(ctx, rel, state(rel))
    _die_with_state(launcher, launcher.started[0], command="pitr", phase="replay")

    out = ctx.run(ctx.on.update_status(), out)

    assert launcher.started[1].record.command == ("recover",)
    message = statuses(out, rel)["restore-1"]["message"]
    assert message.endswith("the previous data is being put back (see show-jobs)")


def test_restore_in_progress_shows_maintenance_and_locks_out_new_jobs(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    restore = job("restore-1", "restore", requested_at="2026-11-22T07:00:00Z")
    rel = relation(restore)
    out = run_changed(ctx, rel, state(rel))
    launcher.progress(launcher.started[0], "download", 250, 1000)

    rel = with_jobs(relation_in(out, rel.id), restore, job("backup-2"))
    out = run_changed(
        ctx,
        rel,
        dataclasses.replace(out, relations={*out.relations} - {out.get_relation(rel.id)} | {rel}),
    )

    assert len(launcher.started) == 1
    refused = statuses(out, rel)["backup-2"]
    assert refused["status"] == "error"
    assert refused["message"] == RESTORING_MESSAGE.format(job="restore-1")
    assert out.unit_status == testing.MaintenanceStatus(
        "restoring backup 20261122T071500Z-3fa9: download, 25%"
    )


def test_restore_while_a_backup_writes_is_refused(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    backup = job("backup-1", requested_at="2026-11-22T07:00:00Z")
    rel = relation(backup)
    out = run_changed(ctx, rel, state(rel))
    rel2 = with_jobs(relation_in(out, rel.id), backup, job("restore-2", "restore"))

    out = run_changed(
        ctx,
        rel2,
        dataclasses.replace(out, relations={*out.relations} - {out.get_relation(rel.id)} | {rel2}),
    )

    assert len(launcher.started) == 1
    message = statuses(out, rel2)["restore-2"]["message"]
    assert "a full backup (job backup-1) is writing" in message


def test_local_lock_holds_when_the_relation_of_a_restore_is_gone(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(job("restore-1", "restore"))
    out = run_changed(ctx, rel, state(rel))

    # the manager goes away while the restore runs: the worker keeps running
    out = ctx.run(ctx.on.relation_broken(out.get_relation(rel.id)), out)
    assert launcher.started[0].is_locked()
    assert isinstance(out.unit_status, testing.MaintenanceStatus)

    # a new manager asks for a backup: refused, the database is being restored
    other = relation(job("backup-9"))
    remaining = {r for r in out.relations if r.id != rel.id}
    out = run_changed(ctx, other, dataclasses.replace(out, relations=remaining | {other}))
    assert statuses(out, other)["backup-9"]["message"] == RESTORING_MESSAGE.format(job="restore-1")

    # the restore ends: nothing to publish (its relation is gone), the lock is free
    launcher.finish(launcher.started[0], result={"backup-id": "20261122T071500Z-3fa9"})
    out = ctx.run(ctx.on.update_status(), out)
    assert out.unit_status == testing.ActiveStatus("")


def test_backup_while_unit_is_not_ready_is_an_error(
    ctx: testing.Context[Any], server: FakeServer, launcher: FakeLauncher
) -> None:
    server.running = False
    rel = relation(job("backup-1"))

    out = run_changed(ctx, rel, state(rel))

    assert launcher.started == []
    message = statuses(out, rel)["backup-1"]["message"]
    assert message.startswith("the database server on mysql-server/0 is not ready")
    assert "the mysql service is not running" in message


def test_missing_credentials_secret_is_an_error_naming_it(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(job("backup-1"))

    out = run_changed(ctx, rel, state(rel, secrets=[PASSWORD]))

    assert launcher.started == []
    status = statuses(out, rel)["backup-1"]
    assert status["status"] == "error"
    assert CREDENTIALS.id in status["message"]


def test_restore_without_a_backup_id_is_an_error(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(job("restore-1", "restore", backup_id=None, artefact_path="/nightly/0041/"))

    out = run_changed(ctx, rel, state(rel))

    assert launcher.started == []
    assert "the restore names no backup" in statuses(out, rel)["restore-1"]["message"]


def test_two_units_the_leader_runs_the_backup_itself(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(job("backup-1"))
    peers = testing.PeerRelation("mysql-peers", peers_data={1: {}})

    out = run_changed(ctx, rel, state(rel, peers))

    assert [local.record.job_id for local in launcher.started] == ["backup-1"]
    assert statuses(out, rel)["backup-1"]["unit"] == "mysql-server/0"
    assignments = json.loads(
        out.get_relation(peers.id).local_app_data["database-backup-assignments"]
    )
    assert assignments[str(rel.id)]["backup-1"]["unit"] == "mysql-server/0"


def test_a_non_leader_refuses_a_job_assigned_to_it(
    server: FakeServer, launcher: FakeLauncher
) -> None:
    """Defence in depth: whatever the assignment says, only the leader starts workers."""
    rel = relation(job("backup-1"))
    assigned = {str(rel.id): {"backup-1": {"unit": "mysql-server/1"}}}
    peers = testing.PeerRelation(
        "mysql-peers", peers_data={0: {}},
        local_app_data={"database-backup-assignments": json.dumps(assigned)},
    )  # fmt: skip
    ctx = make_ctx(server, unit_id=1)

    out = run_changed(ctx, rel, state(rel, peers, leader=False))

    assert launcher.started == []
    status = statuses(out, rel)["backup-1"]
    assert status["status"] == "error"
    assert status["message"] == (
        "mysql-server/1 is not the leader and runs no jobs: mysql-server runs one unit (its "
        "server is not replicated); remove this unit (juju remove-unit mysql-server/1)"
    )
    assert isinstance(out.unit_status, testing.BlockedStatus)


def test_a_finished_job_is_published_by_update_status_without_a_dispatch(
    ctx: testing.Context[Any], launcher: FakeLauncher
) -> None:
    rel = relation(job("restore-1", "restore"))
    out = run_changed(ctx, rel, state(rel))
    launcher.finish(launcher.started[0], status="error", message="S3 rejected the credentials")

    out = ctx.run(ctx.on.update_status(), out)

    status = statuses(out, rel)["restore-1"]
    assert (status["status"], status["message"]) == ("error", "S3 rejected the credentials")
    assert status["recovered-from-backup"] == "20261122T071500Z-3fa9"
