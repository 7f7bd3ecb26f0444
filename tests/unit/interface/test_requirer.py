"""Requirer rules: secrets only, leader only, a bounded databag, clearing finished jobs."""

from __future__ import annotations

import json

import pytest
from ops import testing

from database_backup.interface import (
    DataValidationError,
    JobRequest,
    JobState,
    JobStatus,
    JobType,
    NotLeaderError,
    StorageConfig,
    TooManyJobsError,
)
from database_backup.interface.requirer import DatabaseBackupRequirer
from database_backup.interface.testing import requirer_side_relation

from .charms import REQUIRER_ACTIONS, REQUIRER_META, RequirerCharm

STORAGE = StorageConfig(bucket="backups", credentials_secret_id="secret:cvh7kruupa1s46bqvuig")


def backup(job_id: str) -> JobRequest:
    return JobRequest(job_id, JobType.BACKUP, STORAGE)


def done(job_id: str, state: JobState = JobState.SUCCESS) -> JobStatus:
    return JobStatus.for_request(backup(job_id), state, message="finished")


def run_with(relation: testing.Relation, leader: bool, body) -> testing.State:
    ctx = testing.Context(RequirerCharm, meta=REQUIRER_META, actions=REQUIRER_ACTIONS)
    with ctx(ctx.on.update_status(), testing.State(leader=leader, relations=[relation])) as mgr:
        body(mgr.charm.backups, mgr.charm.model.get_relation("database-backup", relation.id))
        return mgr.run()


def written_ids(state: testing.State, relation: testing.Relation) -> list[str]:
    return [
        j["job-id"] for j in json.loads(state.get_relation(relation.id).local_app_data["jobs"])
    ]


def test_databag_keeps_in_flight_and_only_the_most_recent_finished():
    finished = [backup(f"old-{n}") for n in range(12)]
    relation = requirer_side_relation(
        {0: [done(j.job_id) for j in finished]}, jobs=[*finished, backup("running-1")]
    )

    def body(lib: DatabaseBackupRequirer, rel):
        lib.request_backup(rel, STORAGE, job_id="new-1")

    out = run_with(relation, True, body)
    ids = written_ids(out, relation)
    assert ids == [f"old-{n}" for n in range(2, 12)] + ["running-1", "new-1"]


def test_too_many_jobs_in_flight_is_refused():
    in_flight = [backup(f"j{n}") for n in range(20)]
    relation = requirer_side_relation(jobs=in_flight)

    def body(lib: DatabaseBackupRequirer, rel):
        with pytest.raises(TooManyJobsError, match="20 jobs are still in flight"):
            lib.request_backup(rel, STORAGE)

    out = run_with(relation, True, body)
    assert written_ids(out, relation) == [f"j{n}" for n in range(20)]


def test_inline_credentials_are_never_written():
    relation = requirer_side_relation()
    inline = StorageConfig(bucket="b", inline_access_key="a", inline_secret_key="s")

    def body(lib: DatabaseBackupRequirer, rel):
        with pytest.raises(DataValidationError, match="must travel as a Juju secret"):
            lib.request_backup(rel, inline)

    out = run_with(relation, True, body)
    assert written_ids(out, relation) == []


def test_only_the_leader_requests():
    relation = requirer_side_relation()

    def body(lib: DatabaseBackupRequirer, rel):
        with pytest.raises(NotLeaderError):
            lib.request_backup(rel, STORAGE)

    run_with(relation, False, body)


def test_reused_job_id_is_refused():
    relation = requirer_side_relation(jobs=[backup("same")])

    def body(lib: DatabaseBackupRequirer, rel):
        with pytest.raises(DataValidationError, match="already in use"):
            lib.request_backup(rel, STORAGE, job_id="same")

    run_with(relation, True, body)


def test_clear_finished_keeps_running_jobs():
    relation = requirer_side_relation(
        {0: [done("a"), done("b", JobState.ERROR)], 1: [JobStatus("c", JobState.RUNNING)]},
        jobs=[backup("a"), backup("b"), backup("c"), backup("d")],
    )
    cleared: list[str] = []

    def body(lib: DatabaseBackupRequirer, rel):
        cleared.extend(lib.clear_finished(rel))

    out = run_with(relation, True, body)
    assert cleared == ["a", "b"]
    assert written_ids(out, relation) == ["c", "d"]


def test_statuses_are_merged_across_units_and_finished_wins():
    relation = requirer_side_relation(
        {0: [JobStatus("a", JobState.RUNNING)], 1: [done("a")]}, jobs=[backup("a")]
    )
    seen = {}

    def body(lib: DatabaseBackupRequirer, rel):
        seen.update({t.request.job_id: t.status for t in lib.jobs(rel)})

    run_with(relation, True, body)
    assert seen["a"] is not None
    assert seen["a"].status is JobState.SUCCESS


def test_garbage_from_a_provider_unit_is_ignored_not_fatal():
    relation = testing.Relation(
        "database-backup",
        local_app_data={"jobs": "[]"},
        remote_units_data={0: {"jobs": "{not json"}, 1: {"jobs": '[{"job-id": 3}]'}},
    )
    seen = {}

    def body(lib: DatabaseBackupRequirer, rel):
        seen.update(lib.statuses(rel))

    run_with(relation, True, body)
    assert seen == {}


def test_provider_request_errors_are_visible():
    relation = testing.Relation(
        "database-backup",
        local_app_data={"jobs": "[]"},
        remote_units_data={0: {"jobs": "[]", "request-error": "'jobs' is not valid JSON"}},
    )
    errors: list[str] = []

    def body(lib: DatabaseBackupRequirer, rel):
        errors.extend(lib.provider_errors(rel))

    run_with(relation, True, body)
    assert errors == ["remote/0: 'jobs' is not valid JSON"]


def test_log_shipping_request_is_validated_and_secret_only():
    relation = requirer_side_relation()
    good = {
        "enabled": True,
        "storage-config": {"bucket": "logs", "credentials-secret-id": "secret:x"},
    }

    def body(lib: DatabaseBackupRequirer, rel):
        with pytest.raises(DataValidationError, match="secret"):
            lib.set_log_shipping(
                rel, {"enabled": True, "storage-config": {"bucket": "logs", "secret-key": "s"}}
            )
        with pytest.raises(DataValidationError, match="enabled"):
            lib.set_log_shipping(rel, {"storage-interface": "s3"})
        lib.set_log_shipping(rel, good)

    out = run_with(relation, True, body)
    assert json.loads(out.get_relation(relation.id).local_app_data["log-shipping"]) == good
