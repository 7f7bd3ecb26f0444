"""Schedule (cron file, dispatch, catch-up), job events, history and retention."""

from __future__ import annotations

import datetime
import json
from datetime import timedelta

from ops import testing
from scenario.state import _Event

from backup_manager import schedule
from database_backup.interface import JobRequest, JobState, JobStatus, JobType, StorageConfig

from .fakes import NOW, FakeS3, add_backup
from .helpers import (
    cluster,
    context,
    db_relation,
    history_of,
    jobs_of,
    peer,
    s3_relation,
    state,
)

LONG_AGO = "2026-01-01T00:00:00+00:00"
UNIT = "backup-manager/0"
HOURLY = {"backup-schedule": "0 * * * *"}


def seeded(expression: str = "0 * * * *", kind: str = "full") -> testing.PeerRelation:
    """Peer data of a schedule seeded long ago (so a slot is due now)."""
    return peer({"last-slot": LONG_AGO, "schedule": f"{expression}|{kind}|"})


def scheduled_backup() -> _Event:
    """The event cron dispatches (JUJU_DISPATCH_PATH=hooks/scheduled-backup)."""
    return _Event("scheduled_backup")


def peer_data(out: testing.State) -> dict[str, str]:
    return dict(
        next(r for r in out.relations if isinstance(r, testing.PeerRelation)).local_app_data
    )


def test_leader_writes_the_cron_entry_and_seeds_the_slot(s3: FakeS3):
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(
        ctx.on.config_changed(), state(rel, db_relation(), secrets=[secret], config=HOURLY)
    )
    text = schedule.cron_file(UNIT).read_text()
    assert (
        "/usr/bin/juju-exec backup-manager/0 'JUJU_DISPATCH_PATH=hooks/scheduled-backup " in text
    )
    assert text.count("0 * * * * root ") == 1
    assert "/dispatch') >> " in text
    assert schedule.log_file(UNIT).is_file()
    slot = datetime.datetime.fromisoformat(peer_data(out)["last-slot"])
    assert abs(slot - datetime.datetime.now(datetime.timezone.utc)) < timedelta(minutes=1)
    assert jobs_of(out, next(r for r in out.relations if r.endpoint == "database-backup")) == []


def test_schedule_off_removes_the_cron_entry(s3: FakeS3):
    schedule.cron_file(UNIT).write_text("old")
    rel, secret = s3_relation()
    ctx = context()
    ctx.run(
        ctx.on.config_changed(),
        state(rel, db_relation(), secrets=[secret], config={"backup-schedule": ""}),
    )
    assert not schedule.cron_file(UNIT).exists()


def test_losing_leadership_removes_only_this_units_cron_entry(s3: FakeS3):
    schedule.cron_file(UNIT).write_text("old")
    other = schedule.cron_file("backup-manager-eu/0")
    other.write_text("another application's schedule")
    rel, secret = s3_relation()
    ctx = context()
    ctx.run(ctx.on.config_changed(), state(rel, db_relation(), secrets=[secret], leader=False))
    assert not schedule.cron_file(UNIT).exists()
    assert other.read_text() == "another application's schedule"


def test_dispatched_event_requests_a_backup_per_database_once_per_slot(s3: FakeS3):
    db1, db2 = db_relation("mysql"), db_relation("mariadb")
    rel, secret = s3_relation()
    st = state(rel, db1, db2, seeded(), secrets=[secret], config=HOURLY)
    ctx = context()
    out = ctx.run(scheduled_backup(), st)
    assert len(jobs_of(out, db1)) == 1
    assert len(jobs_of(out, db2)) == 1
    records = history_of(out)
    assert {r["app"] for r in records} == {"mysql", "mariadb"}
    assert all(r["scheduled"] for r in records)
    slot = datetime.datetime.fromisoformat(peer_data(out)["last-slot"])
    assert slot.minute == 0
    assert slot > datetime.datetime.fromisoformat(LONG_AGO)
    again = ctx.run(scheduled_backup(), out)  # a late duplicate (cron + catch-up) is a no-op
    assert len(jobs_of(again, db1)) == 1


def test_update_status_catches_up_a_missed_slot(s3: FakeS3):
    db = db_relation()
    rel, secret = s3_relation()
    st = state(rel, db, seeded(), secrets=[secret], config=HOURLY)
    ctx = context()
    out = ctx.run(ctx.on.update_status(), st)
    assert len(jobs_of(out, db)) == 1
    out = ctx.run(ctx.on.update_status(), out)
    assert len(jobs_of(out, db)) == 1


def test_a_changed_schedule_is_seeded_again_not_caught_up(s3: FakeS3):
    db = db_relation()
    rel, secret = s3_relation()
    config = {"backup-schedule": "30 * * * *"}  # was "0 * * * *", seeded long ago
    ctx = context()
    out = ctx.run(
        ctx.on.update_status(), state(rel, db, seeded(), secrets=[secret], config=config)
    )
    assert jobs_of(out, db) == []
    assert peer_data(out)["schedule"] == "30 * * * *|full|"
    assert peer_data(out)["last-slot"] > LONG_AGO


def test_nothing_is_due_right_after_seeding(s3: FakeS3):
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(ctx.on.config_changed(), state(rel, db, secrets=[secret], config=HOURLY))
    out = ctx.run(scheduled_backup(), out)
    assert jobs_of(out, db) == []


def test_scheduled_incremental_falls_back_to_full_without_a_parent(s3: FakeS3):
    db = db_relation()
    rel, secret = s3_relation()
    config = {**HOURLY, "backup-kind": "incremental"}
    st = state(rel, db, seeded(kind="incremental"), secrets=[secret], config=config)
    out = context().run(scheduled_backup(), st)
    assert jobs_of(out, db)[0]["backup-kind"] == "full"


def test_scheduled_incremental_builds_on_the_newest_backup(s3: FakeS3):
    add_backup(s3.bucket("bucket-a"), cluster(), "20261121T010000Z-bbbb", hours_ago=24)
    db = db_relation()
    rel, secret = s3_relation()
    config = {**HOURLY, "backup-kind": "incremental"}
    st = state(rel, db, seeded(kind="incremental"), secrets=[secret], config=config)
    job = jobs_of(context().run(scheduled_backup(), st), db)[0]
    assert job["backup-kind"] == "incremental"
    assert job["parent-backup-id"] == "20261121T010000Z-bbbb"


def test_scheduled_backup_on_a_non_leader_does_nothing(s3: FakeS3):
    db = db_relation()
    rel, secret = s3_relation()
    st = state(rel, db, seeded(), secrets=[secret], config=HOURLY, leader=False)
    assert jobs_of(context().run(scheduled_backup(), st), db) == []


# -- job events -------------------------------------------------------------------------------

STORAGE = StorageConfig(bucket="bucket-a", credentials_secret_id="secret:cvh7kruupa1s46bqvuig")


def _backup_job(job_id: str) -> JobRequest:
    return JobRequest(job_id, JobType.BACKUP, STORAGE, requested_at="2026-11-22T01:00:00Z")


def _restore_job(job_id: str, backup_id: str) -> JobRequest:
    return JobRequest(
        job_id,
        JobType.RESTORE,
        STORAGE,
        artefact_path="x",
        backup_id=backup_id,
        requested_at="2026-11-22T01:00:00Z",
    )


def _success(job: JobRequest, backup_id: str) -> JobStatus:
    return JobStatus.for_request(
        job,
        JobState.SUCCESS,
        backup_id=backup_id,
        size_bytes=1234,
        finished_at=NOW.isoformat().replace("+00:00", "Z"),
        message="done",
    )


def test_failure_is_recorded_with_its_message(s3: FakeS3):
    job = _backup_job("backup-bad")
    failed = JobStatus.for_request(job, JobState.ERROR, message="S3 rejected the credentials")
    db = db_relation(statuses=[failed], jobs=[job])
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(ctx.on.relation_changed(db, remote_unit=0), state(rel, db, secrets=[secret]))
    record = history_of(out)[0]
    assert record["status"] == "error"
    assert record["message"] == "S3 rejected the credentials"
    assert out.unit_status.message.startswith(
        "no backup yet; backup backup-bad failed (see list-jobs); next "
    )


def test_history_is_bounded():
    from backup_manager import history

    items = [{"job-id": f"j{n}", "status": "success"} for n in range(250)]
    items.append({"job-id": "running", "status": "running"})
    records = history.load(json.dumps(items))
    kept = history.bound(records)
    assert len(kept) == history.MAX_RECORDS
    assert kept[-1].job_id == "running"
    assert kept[0].job_id == "j51"
    assert history.load("garbage") == []


def test_in_flight_jobs_protect_what_they_read_and_write():
    from backup_manager import history

    items = [
        {"job-id": "r1", "type": "restore", "status": "running", "backup-id": "b-restored"},
        {"job-id": "i1", "type": "backup", "status": "requested", "parent-id": "b-parent"},
        {"job-id": "c1", "type": "copy", "status": "copying", "source-backup-id": "b-src"},
        {"job-id": "r0", "type": "restore", "status": "success", "backup-id": "b-old"},
    ]
    records = history.load(json.dumps(items))
    assert history.protected_backups(records) == {"b-restored", "b-parent", "b-src"}


def test_a_slot_whose_backups_could_not_be_requested_is_tried_again(s3: FakeS3):
    s3.bucket("bucket-a").denied = True  # the incremental's parent cannot be looked up
    db = db_relation()
    rel, secret = s3_relation()
    config = {**HOURLY, "backup-kind": "incremental"}
    st = state(rel, db, seeded(kind="incremental"), secrets=[secret], config=config)
    ctx = context()
    out = ctx.run(scheduled_backup(), st)
    assert jobs_of(out, db) == []
    assert peer_data(out)["last-slot"] == LONG_AGO
    s3.bucket("bucket-a").denied = False
    out = ctx.run(scheduled_backup(), out)
    assert len(jobs_of(out, db)) == 1


def test_remove_deletes_only_this_units_cron_entry(s3: FakeS3):
    other = schedule.cron_file("backup-manager/1")
    other.write_text("the other unit's file")
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(ctx.on.config_changed(), state(rel, db_relation(), secrets=[secret]))
    assert schedule.cron_file(UNIT).exists()
    ctx.run(ctx.on.remove(), out)
    assert not schedule.cron_file(UNIT).exists()
    assert other.read_text() == "the other unit's file"
    assert schedule.log_file(UNIT).is_file()  # the admin can still read what cron ran
