"""Scheduled restore drills: the config, the cron line, the due slot and its catch-up."""

from __future__ import annotations

import datetime

from ops import testing
from scenario.state import _Event

from backup_manager import schedule

from .fakes import FakeS3, add_backup, add_binlog
from .helpers import cluster, context, db_relation, history_of, jobs_of, peer, s3_relation, state

UNIT = "backup-manager/0"
LONG_AGO = "2026-01-01T00:00:00+00:00"
DAILY = {"drill-schedule": "0 3 * * *"}
OLD, NEW = "20261120T010000Z-0001", "20261121T010000Z-0002"


def scheduled_drill() -> _Event:
    """The event cron dispatches (JUJU_DISPATCH_PATH=hooks/scheduled-drill)."""
    return _Event("scheduled_drill")


def seeded(**data: str) -> testing.PeerRelation:
    """Peer data of a drill schedule seeded long ago (so a slot is due now)."""
    return peer({"drill-slot": LONG_AGO, "drill-schedule": "0 3 * * *", **data})


def peer_data(out: testing.State) -> dict[str, str]:
    relation = next(r for r in out.relations if isinstance(r, testing.PeerRelation))
    return dict(relation.local_app_data)


def backups(s3: FakeS3, app: str = "mysql") -> None:
    add_backup(s3.bucket("bucket-a"), cluster(app), OLD, hours_ago=48)
    add_backup(s3.bucket("bucket-a"), cluster(app), NEW, hours_ago=24)


def test_the_drill_schedule_adds_a_cron_line_dispatching_scheduled_drill(s3: FakeS3):
    rel, secret = s3_relation()
    ctx = context()
    config = {**DAILY, "backup-schedule": "0 2 * * *"}

    out = ctx.run(
        ctx.on.config_changed(), state(rel, db_relation(), secrets=[secret], config=config)
    )

    lines = schedule.cron_file(UNIT).read_text().splitlines()
    assert [line.split(" root ")[0] for line in lines if " root " in line] == [
        "0 2 * * *",
        "0 3 * * *",
    ]
    assert "JUJU_DISPATCH_PATH=hooks/scheduled-backup " in lines[-2]
    assert "JUJU_DISPATCH_PATH=hooks/scheduled-drill " in lines[-1]
    slot = datetime.datetime.fromisoformat(peer_data(out)["drill-slot"])
    assert abs(slot - datetime.datetime.now(datetime.timezone.utc)) < datetime.timedelta(minutes=1)


def test_drills_alone_keep_a_cron_file_and_no_drill_schedule_writes_no_drill_line(s3: FakeS3):
    rel, secret = s3_relation()
    ctx = context()
    ctx.run(
        ctx.on.config_changed(),
        state(rel, db_relation(), secrets=[secret], config={**DAILY, "backup-schedule": ""}),
    )
    assert "hooks/scheduled-drill" in schedule.cron_file(UNIT).read_text()

    out = ctx.run(ctx.on.config_changed(), state(rel, db_relation(), secrets=[secret]))

    assert "scheduled-drill" not in schedule.cron_file(UNIT).read_text()
    assert "drill-slot" not in peer_data(out)


def test_an_invalid_drill_schedule_blocks_and_says_why():
    rel, secret = s3_relation()
    ctx = context()
    config = {"drill-schedule": "0 3 * *"}

    out = ctx.run(
        ctx.on.config_changed(), state(rel, db_relation(), secrets=[secret], config=config)
    )

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "drill-schedule: '0 3 * *' is not a cron expression with five fields" in (
        out.unit_status.message
    )


def test_a_scheduled_drill_verifies_the_newest_backup_of_each_application_once(s3: FakeS3):
    backups(s3, "mysql")
    backups(s3, "mariadb")
    db1, db2 = db_relation("mysql"), db_relation("mariadb")
    rel, secret = s3_relation()
    ctx = context()

    out = ctx.run(
        scheduled_drill(), state(rel, db1, db2, seeded(), secrets=[secret], config=DAILY)
    )

    for db in (db1, db2):
        (job,) = jobs_of(out, db)
        assert job["verify-backup-id"] == NEW
        assert "point-in-time" not in job
    assert all(r["scheduled"] and r["type"] == "drill" for r in history_of(out))
    assert peer_data(out)["drill-slot"] > LONG_AGO
    again = ctx.run(scheduled_drill(), out)  # a late duplicate (cron + catch-up) is a no-op
    assert len(jobs_of(again, db1)) == 1


def test_update_status_catches_up_a_missed_drill(s3: FakeS3):
    backups(s3)
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()

    out = ctx.run(ctx.on.update_status(), state(rel, db, seeded(), secrets=[secret], config=DAILY))

    assert jobs_of(out, db)[0]["verify-backup-id"] == NEW


def test_drill_point_in_time_replays_the_shipped_binlogs_to_the_latest(s3: FakeS3):
    backups(s3)
    add_binlog(s3.bucket("bucket-a"), cluster())
    db = db_relation()
    rel, secret = s3_relation()
    config = {**DAILY, "drill-point-in-time": True}

    out = context().run(
        scheduled_drill(), state(rel, db, seeded(), secrets=[secret], config=config)
    )

    assert jobs_of(out, db)[0]["point-in-time"] == "latest"


def test_nothing_to_verify_uses_up_the_slot(s3: FakeS3):
    db = db_relation()
    rel, secret = s3_relation()

    out = context().run(
        scheduled_drill(), state(rel, db, seeded(), secrets=[secret], config=DAILY)
    )

    assert jobs_of(out, db) == []
    assert peer_data(out)["drill-slot"] > LONG_AGO


def test_a_scheduled_drill_on_a_non_leader_does_nothing(s3: FakeS3):
    backups(s3)
    db = db_relation()
    rel, secret = s3_relation()
    st = state(rel, db, seeded(), secrets=[secret], config=DAILY, leader=False)

    assert jobs_of(context().run(scheduled_drill(), st), db) == []


def test_a_slot_missed_while_a_restore_ran_is_drilled_once_the_restore_ended(s3: FakeS3):
    from database_backup.interface import JobRequest, JobState, JobStatus, JobType, StorageConfig

    backups(s3)
    storage = StorageConfig(bucket="bucket-a", credentials_secret_id="secret:cvh7kruupa1s46bqvuig")
    restore = JobRequest("restore-1", JobType.RESTORE, storage, artefact_path="x", backup_id=OLD)
    running = db_relation(
        statuses=[JobStatus.for_request(restore, JobState.RUNNING)], jobs=[restore]
    )
    rel, secret = s3_relation()
    ctx = context()

    out = ctx.run(scheduled_drill(), state(rel, running, seeded(), secrets=[secret], config=DAILY))

    assert [j["job-id"] for j in jobs_of(out, running)] == ["restore-1"]
    assert peer_data(out)["drill-slot"] == LONG_AGO
    done = db_relation(statuses=[JobStatus.for_request(restore, JobState.SUCCESS)], jobs=[restore])
    after = ctx.run(
        ctx.on.update_status(),
        state(rel, done, peer(peer_data(out)), secrets=[secret], config=DAILY),
    )
    assert jobs_of(after, done)[-1]["verify-backup-id"] == NEW
