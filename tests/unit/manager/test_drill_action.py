"""`verify-backup`: a restore drill is asked for as a `backup` job naming the backup."""

from __future__ import annotations

import base64
import json

from database_backup.interface import JobRequest, JobState, JobStatus, JobType, StorageConfig

from .fakes import NOW, FakeS3, add_backup, add_binlog
from .helpers import cluster, db_relation, history_of, jobs_of, peer, s3_relation, state
from .test_actions import base, fail_message, run_action
from .test_encryption_key import (
    ADMIN_KEY,
    BACKUP,
    admin_secret,
    encrypted_backup,
    fp,
    sent_key,
    setup,
)

OLD, NEW = "20261120T010000Z-0001", "20261121T010000Z-0002"
STORAGE = StorageConfig(bucket="bucket-a", credentials_secret_id="secret:cvh7kruupa1s46bqvuig")


def _two_backups(s3: FakeS3) -> None:
    bucket = s3.bucket("bucket-a")
    add_backup(bucket, cluster(), OLD, hours_ago=48)
    add_backup(bucket, cluster(), NEW, hours_ago=24, kind="logical")


def test_verify_backup_sends_a_drill_job_of_the_backup_named(s3: FakeS3):
    _two_backups(s3)
    db, st = base()

    results, out = run_action("verify-backup", st, **{"backup-id": OLD})

    (job,) = jobs_of(out, db)
    assert job["job-type"] == "backup"
    assert job["verify-backup-id"] == OLD
    assert job["job-id"] == results["job-id"]
    assert job["job-id"].startswith("drill-")
    for absent in ("backup-kind", "parent-backup-id", "databases", "tables", "point-in-time"):
        assert absent not in job
    assert job["storage-config"]["credentials-secret-id"].startswith("secret:")
    assert "encryption-secret-id" not in job
    assert results["verify-backup-id"] == OLD
    assert results["status"] == "requested"
    (record,) = history_of(out)
    assert record["type"] == "drill"
    assert record["kind"] == "drill"
    assert record["drill-of"] == OLD
    assert record["backup-id"] == OLD
    assert "SECRET-A" not in json.dumps(results)


def test_verify_backup_without_an_id_drills_the_newest_complete_backup(s3: FakeS3):
    _two_backups(s3)
    db, st = base()

    results, out = run_action("verify-backup", st)

    assert jobs_of(out, db)[0]["verify-backup-id"] == NEW
    assert results["verify-backup-id"] == NEW


def test_verify_backup_of_an_unknown_backup_says_how_to_list_them(s3: FakeS3):
    _two_backups(s3)
    _, st = base()

    message = fail_message("verify-backup", st, **{"backup-id": "20261101T010000Z-0000"})

    assert "no complete backup '20261101T010000Z-0000' of mysql" in message
    assert "list-backups" in message


def test_verify_backup_of_an_incomplete_backup_is_refused_and_says_why(s3: FakeS3):
    bucket = s3.bucket("bucket-a")
    add_backup(bucket, cluster(), OLD, hours_ago=48)
    bucket.put_bytes(f"{cluster()}/backups/{NEW}/data.xbstream.zst", b"half")
    _, st = base()

    message = fail_message("verify-backup", st, **{"backup-id": NEW})

    assert f"backup {NEW} of mysql is incomplete" in message
    assert "pick a complete backup" in message


def test_verify_backup_with_no_backup_at_all_says_to_take_one(s3: FakeS3):
    _, st = base()

    message = fail_message("verify-backup", st)

    assert "mysql has no complete backup in location 's3-a' to verify" in message
    assert "create-backup" in message


def test_verify_backup_is_refused_while_a_restore_runs(s3: FakeS3):
    _two_backups(s3)
    restore = JobRequest("restore-1", JobType.RESTORE, STORAGE, artefact_path="x", backup_id=OLD)
    db = db_relation(statuses=[JobStatus.for_request(restore, JobState.RUNNING)], jobs=[restore])
    _, st = base(db=db)

    message = fail_message("verify-backup", st)

    assert "mysql is being restored (job restore-1)" in message
    assert "run verify-backup again once it has finished" in message


def test_a_second_drill_of_the_same_application_waits_for_the_first(s3: FakeS3):
    _two_backups(s3)
    db, st = base()
    _, out = run_action("verify-backup", st)
    first = jobs_of(out, db)[0]["job-id"]

    message = fail_message("verify-backup", out, **{"backup-id": OLD})

    assert f"a restore drill of mysql is already running (job {first}, backup {NEW})" in message


def test_verify_backup_to_a_point_in_time_replays_the_shipped_binlogs(s3: FakeS3):
    _two_backups(s3)
    add_binlog(s3.bucket("bucket-a"), cluster())
    db, st = base()

    results, out = run_action("verify-backup", st, **{"backup-id": OLD, "point-in-time": "latest"})

    assert jobs_of(out, db)[0]["point-in-time"] == "latest"
    assert results["point-in-time"] == "latest"


def test_verify_backup_to_a_point_in_time_needs_shipped_binlogs(s3: FakeS3):
    _two_backups(s3)
    _, st = base()

    message = fail_message("verify-backup", st, **{"point-in-time": "latest"})

    assert "no shipped binary logs" in message


def test_verify_backup_to_a_time_before_the_backup_is_refused(s3: FakeS3):
    _two_backups(s3)
    add_binlog(s3.bucket("bucket-a"), cluster())
    _, st = base()
    before = (NOW.replace(year=2020)).isoformat().replace("+00:00", "Z")

    message = fail_message("verify-backup", st, **{"backup-id": OLD, "point-in-time": before})

    assert f"is before backup {OLD} finished" in message


def test_verify_backup_of_an_encrypted_backup_sends_the_key_it_was_made_with(s3: FakeS3):
    encrypted_backup(s3, fp(ADMIN_KEY))
    db, st = setup(admin=admin_secret())

    _, out = run_action("verify-backup", st, **{"backup-id": BACKUP})

    assert sent_key(out, db) == ADMIN_KEY


def test_verify_backup_of_a_backup_of_another_key_is_refused(s3: FakeS3):
    encrypted_backup(s3, fp(base64.b64encode(b"\x07" * 32).decode()))
    _, st = setup(admin=admin_secret())

    message = fail_message("verify-backup", st, **{"backup-id": BACKUP})

    assert "was encrypted with the key of fingerprint" in message


def test_verify_backup_runs_only_on_the_leader(s3: FakeS3):
    _two_backups(s3)
    rel, secret = s3_relation()
    st = state(rel, db_relation(), peer(), secrets=[secret], leader=False)

    assert "run this action on the leader" in fail_message("verify-backup", st)
