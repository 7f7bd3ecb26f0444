"""A drill's outcome: in the history, and in the unit status until a later drill passes."""

from __future__ import annotations

from ops import testing

from backup_manager import drills
from database_backup.interface import (
    RESTORING_MESSAGE,
    JobRequest,
    JobState,
    JobStatus,
    JobType,
    StorageConfig,
    Verification,
)

from .fakes import FakeS3, add_backup
from .helpers import cluster, context, db_relation, history_of, peer, s3_relation, state
from .test_actions import fail_message, run_action

BACKUP = "20261121T010000Z-0002"
STORAGE = StorageConfig(bucket="bucket-a", credentials_secret_id="secret:cvh7kruupa1s46bqvuig")
REASON = "drill failed: shop.orders: 2500 rows recorded, 2499 found"


def drill(job_id: str, backup_id: str = BACKUP) -> JobRequest:
    return JobRequest(
        job_id,
        JobType.BACKUP,
        STORAGE,
        verify_backup_id=backup_id,
        requested_at="2026-11-22T01:00:00Z",
    )


def passed(job: JobRequest, at: str) -> JobStatus:
    verification = Verification(result="pass", checked_at=at, tables_checked=3)
    return JobStatus.for_request(
        job, JobState.SUCCESS, finished_at=at, verification=verification, message="drill passed"
    )


def failed(job: JobRequest, at: str, reason: str = REASON) -> JobStatus:
    verification = Verification(result="fail", checked_at=at, reason=reason)
    return JobStatus.for_request(
        job, JobState.ERROR, finished_at=at, verification=verification, message=reason
    )


def seen(*reports: tuple[JobRequest, JobStatus], st_peer=None) -> testing.State:
    """The manager after the provider reported `reports` (a relation-changed)."""
    db = db_relation(statuses=[s for _, s in reports], jobs=[j for j, _ in reports])
    rel, secret = s3_relation()
    st = state(rel, db, st_peer or peer(), secrets=[secret])
    ctx = context()
    return ctx.run(ctx.on.relation_changed(db, remote_unit=0), st)


def again(out: testing.State, *reports: tuple[JobRequest, JobStatus]) -> testing.State:
    """The same manager (its peer data) after the provider reported `reports`."""
    relation = next(r for r in out.relations if isinstance(r, testing.PeerRelation))
    return seen(*reports, st_peer=peer(relation.local_app_data))


def test_a_failed_drill_is_recorded_and_blocks_with_the_backup_the_time_and_the_reason():
    job = drill("drill-1")

    out = seen((job, failed(job, "2026-11-22T01:30:00Z")))

    (record,) = history_of(out)
    assert record["type"] == "drill"
    assert record["status"] == "error"
    assert record["message"] == REASON
    assert record["verification"]["result"] == "fail"
    assert out.unit_status == testing.BlockedStatus(
        f"restore drill of backup {BACKUP} (mysql in s3-a) failed at 2026-11-22T01:30:00Z: "
        f"{REASON}; fix the cause, take a new backup if this one is bad, then verify-backup "
        "application=mysql (list-jobs has the details)"
    )


def test_a_passed_drill_leaves_the_status_alone():
    job = drill("drill-1")

    out = seen((job, passed(job, "2026-11-22T01:30:00Z")))

    (record,) = history_of(out)
    assert record["status"] == "success"
    assert record["verification"]["tables-checked"] == 3
    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert "drill" not in out.unit_status.message


def test_a_success_without_a_verification_is_a_failed_drill_saying_the_provider_took_a_backup(
    s3: FakeS3,
):
    job = drill("drill-1")
    backup = JobStatus.for_request(  # a draft-only provider: no verify-backup-id echoed
        job,
        JobState.SUCCESS,
        verify_backup_id=None,
        backup_id="20261122T013000Z-0003",
        backup_kind="full",
        finished_at="2026-11-22T01:30:00Z",
    )

    out = seen((job, backup))

    record = next(r for r in history_of(out) if r["job-id"] == "drill-1")  # + retention
    assert record["status"] == "error"
    assert record["kind"] == "drill"
    assert record["backup-id"] == BACKUP
    assert "does not run restore drills" in record["message"]
    assert "(20261122T013000Z-0003)" in record["message"]
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "does not run restore drills" in out.unit_status.message


def test_a_later_drill_that_passes_clears_the_status():
    first, second = drill("drill-1"), drill("drill-2", "20261122T010000Z-0003")
    out = seen((first, failed(first, "2026-11-22T01:30:00Z")))

    out = again(
        out,
        (first, failed(first, "2026-11-22T01:30:00Z")),
        (second, passed(second, "2026-11-23T01:30:00Z")),
    )

    assert isinstance(out.unit_status, testing.ActiveStatus)


def test_a_drill_cancelled_by_a_restore_proves_nothing_and_changes_nothing():
    first, second = drill("drill-1"), drill("drill-2")
    out = seen((first, failed(first, "2026-11-22T01:30:00Z")))
    cancelled = JobStatus.for_request(
        second,
        JobState.ERROR,
        finished_at="2026-11-23T01:30:00Z",
        message="cancelled: restore job restore-9 was requested",
    )

    out = again(out, (first, failed(first, "2026-11-22T01:30:00Z")), (second, cancelled))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "2026-11-22T01:30:00Z" in out.unit_status.message
    assert history_of(out)[-1]["status"] == "error"


def test_clear_history_does_not_forget_a_failed_drill(s3: FakeS3):
    job = drill("drill-1")
    out = seen((job, failed(job, "2026-11-22T01:30:00Z")))

    _, cleared = run_action("clear-history", out)

    assert history_of(cleared) == []
    assert isinstance(cleared.unit_status, testing.BlockedStatus)
    assert f"restore drill of backup {BACKUP}" in cleared.unit_status.message


def test_a_running_drill_protects_its_backup_from_delete_backup(s3: FakeS3):
    add_backup(s3.bucket("bucket-a"), cluster(), BACKUP, hours_ago=24)
    job = drill("drill-1")
    out = seen((job, JobStatus.for_request(job, JobState.RUNNING, phase="drill-restoring")))

    message = fail_message("delete-backup", out, **{"backup-id": BACKUP})

    assert "being restored or copied" in message or "in use" in message


def test_a_drill_refused_while_a_restore_ran_proves_nothing():
    job = drill("drill-1")
    refused = JobStatus.for_request(
        job,
        JobState.ERROR,
        finished_at="2026-11-22T01:30:00Z",
        message=RESTORING_MESSAGE.format(job="restore-9"),
    )

    out = seen((job, refused))

    assert history_of(out)[0]["status"] == "error"
    assert isinstance(out.unit_status, testing.ActiveStatus)


def test_a_drill_refused_for_lack_of_disk_is_a_failed_drill():
    job = drill("drill-1")
    reason = "drill refused: 2.1 GiB free on /var/lib/database-backup/drills, 9.5 GiB needed"
    refused = JobStatus.for_request(
        job, JobState.ERROR, finished_at="2026-11-22T01:30:00Z", message=reason
    )

    out = seen((job, refused))

    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert reason in out.unit_status.message


def test_garbage_in_the_stored_drill_results_is_ignored():
    out = seen(st_peer=peer({"drill-results": '[{"app": 1}, "junk", {"app": "mysql"}]'}))

    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert drills.load("not json") == {}
