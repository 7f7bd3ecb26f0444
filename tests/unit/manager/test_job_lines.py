"""The manager's job log lines (database_backup.joblog): a job it requests, the end it sees."""

from __future__ import annotations

from ops import testing

from backup_manager import joblines, schedule
from database_backup.interface import JobRequest, JobState, JobStatus, JobType, StorageConfig
from tests.unit.test_joblog import parse

from .fakes import FakeS3
from .helpers import cluster, context, db_relation, peer, s3_relation, state

STORAGE = StorageConfig(bucket="bucket-a", credentials_secret_id="secret:cvh7kruupa1s46bqvuig")
SECRET_KEY = "SECRET-A-0123456789abcdef"  # the s3 relation's secret key in these tests


def lines() -> list[dict[str, str]]:
    path = joblines.log_path()
    assert path.parent == schedule.LOG_DIR  # beside the schedule logs (a test directory here)
    return [parse(line) for line in path.read_text().splitlines()] if path.exists() else []


def restore_job(job_id: str = "restore-1") -> JobRequest:
    return JobRequest(
        job_id,
        JobType.RESTORE,
        STORAGE,
        artefact_path="x",
        backup_id="20261121T010000Z-0001",
        point_in_time="2026-11-22T00:30:00Z",
        requested_at="2026-11-22T01:00:00Z",
    )


def test_a_requested_backup_writes_a_start_line(s3: FakeS3):
    rel, secret = s3_relation(secret_key=SECRET_KEY)
    ctx = context()
    ctx.run(ctx.on.action("create-backup"), state(rel, db_relation(), secrets=[secret]))
    [start] = lines()
    assert start["event"] == "start"
    assert start["job-type"] == "backup"
    assert start["kind"] == "full"
    assert start["cluster"] == cluster()
    assert start["outcome"] == "running"
    assert start["job-id"].startswith("backup-")


def test_a_failed_job_writes_one_error_line_without_the_storage_secret(s3: FakeS3):
    job = restore_job()
    message = f"restore failed: S3 said SignatureDoesNotMatch for secret {SECRET_KEY}"
    failed = JobStatus.for_request(
        job,
        JobState.ERROR,
        message=message,
        started_at="2026-11-22T01:00:00Z",
        finished_at="2026-11-22T01:02:30Z",
    )
    db = db_relation(statuses=[failed], jobs=[job])
    rel, secret = s3_relation(secret_key=SECRET_KEY)
    ctx = context()
    out = ctx.run(ctx.on.relation_changed(db, remote_unit=0), state(rel, db, secrets=[secret]))
    [error] = lines()
    assert error["event"] == "error"
    assert error["job-type"] == "restore"
    assert error["kind"] == "pitr"
    assert error["duration-seconds"] == "150"
    assert error["message"].startswith("restore failed: S3 said SignatureDoesNotMatch")
    assert SECRET_KEY not in joblines.log_path().read_text()

    # the same status seen again (the history already says error): no second line
    again = out.get_relation(db.id)
    peer_relation = next(r for r in out.relations if isinstance(r, testing.PeerRelation))
    ctx.run(
        ctx.on.relation_changed(again, remote_unit=0),
        state(rel, again, peer(dict(peer_relation.local_app_data)), secrets=[secret]),
    )
    assert len(lines()) == 1


def test_a_successful_backup_writes_an_end_line(s3: FakeS3):
    job = JobRequest("backup-ok", JobType.BACKUP, STORAGE, requested_at="2026-11-22T01:00:00Z")
    done = JobStatus.for_request(
        job,
        JobState.SUCCESS,
        backup_id="20261122T010000Z-0001",
        started_at="2026-11-22T01:00:00Z",
        finished_at="2026-11-22T01:00:42Z",
    )
    db = db_relation(statuses=[done], jobs=[job])
    rel, secret = s3_relation()
    ctx = context()
    ctx.run(ctx.on.relation_changed(db, remote_unit=0), state(rel, db, secrets=[secret]))
    [end] = lines()
    assert end == {
        "event": "end",
        "job-id": "backup-ok",
        "job-type": "backup",
        "kind": "full",
        "cluster": cluster(),
        "outcome": "success",
        "duration-seconds": "42",
    }
