"""Scenario tests of the example charm: the jobs it starts, and what it publishes."""

from __future__ import annotations

import json
from typing import Any

from ops import testing

import charm
from database_backup import cli
from database_backup.interface import JobRequest, JobType, StorageConfig
from database_backup.interface.testing import requests_databag
from database_backup.jobs import LocalJob, write_json

CREDENTIALS = testing.Secret({"access-key": "AKIAEXAMPLE", "secret-key": "example-secret-key"})
STORAGE = StorageConfig(bucket="db-backups", path="prod", credentials_secret_id=CREDENTIALS.id)
CLUSTER = "6f0e1a52-1b7c-4b0e-9d55-2c1f0f3b8a77/adopter-mysql"
BACKUP_ID = "20261122T071500Z-3fa9"


def relation(jobs: list[JobRequest], **app_data: str) -> testing.Relation:
    """The relation as the charm sees it: the manager's job requests in its app databag."""
    return testing.Relation(
        "database-backup",
        interface="database_backup",
        remote_app_name="backup-manager",
        remote_app_data={**requests_databag(jobs), **app_data},
    )


def leader_state(rel: testing.Relation, *secrets: testing.Secret) -> testing.State:
    """The leader unit, with its peer relation and `secrets` granted to it."""
    return testing.State(
        leader=True, relations=[rel, testing.PeerRelation("database-peers")], secrets=secrets
    )


def changed(rel: testing.Relation, state: testing.State) -> testing.State:
    """Run relation-changed (the manager wrote its jobs)."""
    ctx = testing.Context(charm.AdopterCharm)
    return ctx.run(ctx.on.relation_changed(rel, remote_unit=0), state)


def published(state: testing.State, rel: testing.Relation) -> dict[str, dict[str, Any]]:
    """The statuses the charm published, by job id."""
    data = state.get_relation(rel.id).local_unit_data
    return {item["job-id"]: item for item in json.loads(data.get("jobs", "[]"))}


def checked_spec(local: LocalJob) -> cli.EngineSpec:
    """The job's spec, read as the engine reads it; the command parses as the engine's."""
    cli.build_parser().parse_args([*local.record.command, "--spec", str(local.spec_path)])
    assert local.spec_path.stat().st_mode & 0o077 == 0, "the spec holds secrets: 0600"
    return cli.load_spec(local.spec_path, env={})


def test_a_backup_job_is_started_and_reported_running(workers: list[LocalJob]) -> None:
    rel = relation([JobRequest("backup-1", JobType.BACKUP, STORAGE)], **{"cluster-id": CLUSTER})

    out = changed(rel, leader_state(rel, CREDENTIALS))

    assert published(out, rel)["backup-1"]["status"] == "running"
    (local,) = workers
    command = local.record.command
    assert command[:2] == ("backup", "--backup-id")
    assert command[3:] == ("--job-id", "backup-1", "--kind", "full", "--compression-level", "3")
    spec = checked_spec(local)
    assert spec.cluster_id == CLUSTER
    assert spec.storage.access_key == "AKIAEXAMPLE"


def test_a_restore_job_restores_the_backup_it_names(workers: list[LocalJob]) -> None:
    restore = JobRequest(
        "restore-1",
        JobType.RESTORE,
        STORAGE,
        artefact_path=f"prod/{CLUSTER}/backups/{BACKUP_ID}",
        backup_id=BACKUP_ID,
    )
    rel = relation([restore])

    out = changed(rel, leader_state(rel, CREDENTIALS))

    assert published(out, rel)["restore-1"]["status"] == "running"
    (local,) = workers
    assert local.record.command == ("restore", "--backup-id", BACKUP_ID)
    # no cluster-id from the requirer: the charm's own identity, never None
    assert checked_spec(local).cluster_id.endswith("/adopter-mysql")


def test_a_draft_style_job_with_inline_keys_runs_and_the_keys_stay_private(
    workers: list[LocalJob],
) -> None:
    draft_job = {
        "job-id": "draft-backup",
        "job-type": "backup",
        "job-config": {"compression": True},
        "storage-interface": "s3",
        "storage-config": {
            "bucket": "db-backups",
            "access-key": "AKIADRAFT",
            "secret-key": "draft-secret-key",
        },
    }
    rel = testing.Relation(
        "database-backup",
        interface="database_backup",
        remote_app_name="draft-requirer",
        remote_app_data={"jobs": json.dumps([draft_job])},
    )

    out = changed(rel, leader_state(rel))

    assert published(out, rel)["draft-backup"]["status"] == "running"
    (local,) = workers
    assert checked_spec(local).storage.secret_key == "draft-secret-key"
    written = json.dumps([dict(r.local_unit_data) | dict(r.local_app_data) for r in out.relations])
    assert "draft-secret-key" not in written
    assert "draft-secret-key" not in json.dumps(local.record.to_dict())


def test_a_rerun_hook_does_not_start_the_job_twice(workers: list[LocalJob]) -> None:
    rel = relation([JobRequest("backup-1", JobType.BACKUP, STORAGE)])
    state = leader_state(rel, CREDENTIALS)

    changed(rel, state)
    out = changed(rel, state)  # Juju runs a failed hook again, with the same input

    assert len(workers) == 1
    assert published(out, rel)["backup-1"]["status"] == "running"


def test_a_secret_not_granted_fails_the_job_with_its_id(workers: list[LocalJob]) -> None:
    rel = relation([JobRequest("backup-1", JobType.BACKUP, STORAGE)])

    out = changed(rel, leader_state(rel))  # the credentials secret is not granted

    status = published(out, rel)["backup-1"]
    assert status["status"] == "error"
    assert CREDENTIALS.id in status["message"]
    assert workers == []


def test_the_result_is_published_when_the_worker_has_finished(workers: list[LocalJob]) -> None:
    # the worker's hand-back dispatches `job-finished`; `update-status` is the safety net:
    # both publish what the job store says
    rel = relation([JobRequest("backup-1", JobType.BACKUP, STORAGE)])
    started = changed(rel, leader_state(rel, CREDENTIALS))
    (local,) = workers
    write_json(
        local.state_path,
        {"status": "success", "phase": "done", "result": {"stored-size": 4096}},
    )
    local.finish("success", None)

    ctx = testing.Context(charm.AdopterCharm)
    out = ctx.run(ctx.on.update_status(), started)

    status = published(out, rel)["backup-1"]
    assert status["status"] == "success"
    assert status["backup-id"] == local.record.labels["backup-id"]
    assert status["size-bytes"] == 4096
