"""Status and reconcile: blocked reasons, secrets granted, relation data published."""

from __future__ import annotations

import json

import pytest
from ops import testing

from .fakes import FakeS3, add_backup
from .helpers import cluster, context, db_relation, history_of, jobs_of, peer, s3_relation, state


def test_no_database_related_is_blocked_with_the_command_to_run():
    rel, secret = s3_relation()
    out = context().run(context().on.config_changed(), state(rel, secrets=[secret]))
    assert out.unit_status == testing.BlockedStatus(
        "no database related: juju integrate backup-manager:database-backup <db-app>"
    )


def test_no_storage_is_blocked():
    ctx = context()
    out = ctx.run(ctx.on.config_changed(), state(db_relation()))
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("no storage: relate an s3-integrator")


@pytest.mark.parametrize(
    ("config", "words"),
    [
        (
            {"backup-schedule": "61 * * * *"},
            "invalid config: backup-schedule: '61 * * * *' is not a valid cron",
        ),
        (
            {"backup-schedule": "0 2 * *"},
            "backup-schedule: '0 2 * *' is not a cron expression with five fields",
        ),
        ({"backup-kind": "differential"}, "backup-kind: 'differential' is not one of full"),
        ({"retention-max-age": "forever"}, "retention-max-age: 'forever' is not a duration"),
        ({"retention-max-count": 1, "retention-min-count": 3}, "retention-max-count must be 0"),
        ({"s3-uri-style": "dns"}, "s3-uri-style: 'dns' is not one of path, virtual"),
        ({"full-backup-schedule": "0 1 * * 0"}, "full-backup-schedule only makes sense"),
    ],
)
def test_invalid_config_says_which_option_and_why(config, words, tmp_path):
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(
        ctx.on.config_changed(), state(rel, db_relation(), secrets=[secret], config=config)
    )
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert words in out.unit_status.message


def test_invalid_cron_writes_no_cron_and_sends_nothing():
    from backup_manager import schedule

    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(
        ctx.on.config_changed(),
        state(rel, db, secrets=[secret], config={"backup-schedule": "0 25 * * *"}),
    )
    assert not schedule.cron_file("backup-manager/0").exists()
    assert "cluster-id" not in out.get_relation(db.id).local_app_data


def test_active_publishes_cluster_id_log_shipping_and_grants_credentials():
    db = db_relation()
    rel, secret = s3_relation(path="backups/prod")
    ctx = context()
    out = ctx.run(ctx.on.config_changed(), state(rel, db, secrets=[secret]))
    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert "no backup yet" in out.unit_status.message
    assert "next " in out.unit_status.message
    data = out.get_relation(db.id).local_app_data
    assert data["cluster-id"] == cluster()
    shipping = json.loads(data["log-shipping"])
    assert shipping["enabled"] is True
    storage = shipping["storage-config"]
    assert storage["bucket"] == "bucket-a"
    assert storage["path"] == "backups/prod"
    assert "access-key" not in storage
    assert "secret-key" not in storage
    creds = out.get_secret(label="credentials-s3-a")
    assert storage["credentials-secret-id"] == creds.id
    assert creds.tracked_content == {"access-key": "AKIA-A", "secret-key": "SECRET-A"}
    assert creds.remote_grants == {db.id: {"mysql"}}


def test_binlog_shipping_off_is_published():
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(
        ctx.on.config_changed(),
        state(rel, db, secrets=[secret], config={"binlog-shipping": False}),
    )
    assert json.loads(out.get_relation(db.id).local_app_data["log-shipping"]) == {"enabled": False}


def test_config_storage_with_a_granted_user_secret():
    db = db_relation()
    user = testing.Secret(tracked_content={"access-key": "AK", "secret-key": "SK"})
    config = {
        "s3-bucket": "cfg-bucket",
        "s3-endpoint": "http://rgw:7480",
        "s3-credentials": user.id,
    }
    ctx = context()
    out = ctx.run(ctx.on.config_changed(), state(db, secrets=[user], config=config))
    assert isinstance(out.unit_status, testing.ActiveStatus)
    shipping = json.loads(out.get_relation(db.id).local_app_data["log-shipping"])
    assert shipping["storage-config"]["bucket"] == "cfg-bucket"
    assert out.get_secret(label="credentials-default").tracked_content == {
        "access-key": "AK",
        "secret-key": "SK",
    }


def test_config_secret_not_granted_is_blocked_with_the_grant_command():
    config = {"s3-bucket": "cfg-bucket", "s3-credentials": "secret:d0notexist0000000000"}
    ctx = context()
    out = ctx.run(ctx.on.config_changed(), state(db_relation(), config=config))
    assert out.unit_status == testing.BlockedStatus(
        "s3-credentials: secret secret:d0notexist0000000000 is not granted to backup-manager "
        "(or does not exist): juju grant-secret secret:d0notexist0000000000 backup-manager"
    )


def test_config_secret_without_keys_is_blocked():
    user = testing.Secret(tracked_content={"access-key": "AK"})
    config = {"s3-bucket": "b-cfg", "s3-credentials": user.id}
    ctx = context()
    out = ctx.run(ctx.on.config_changed(), state(db_relation(), secrets=[user], config=config))
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert "has no secret-key" in out.unit_status.message


def test_bucket_without_credentials_is_blocked():
    ctx = context()
    out = ctx.run(ctx.on.config_changed(), state(db_relation(), config={"s3-bucket": "b-cfg"}))
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("s3-bucket is set but s3-credentials is not")


def test_s3_relation_without_data_yet_is_waiting():
    relation = testing.Relation("s3", interface="s3", remote_app_name="s3-a")
    ctx = context()
    out = ctx.run(ctx.on.config_changed(), state(relation, db_relation()))
    assert out.unit_status == testing.WaitingStatus(
        "waiting for bucket and credentials from s3-integrator s3-a"
    )


def test_two_s3_relations_are_two_locations_and_backup_location_picks_one():
    db = db_relation()
    rel_a, sec_a = s3_relation("region-a", "bucket-a")
    rel_b, sec_b = s3_relation("region-b", "bucket-b", access_key="AK-B", secret_key="SK-B")
    ctx = context()
    out = ctx.run(
        ctx.on.config_changed(),
        state(rel_a, rel_b, db, secrets=[sec_a, sec_b], config={"backup-location": "region-b"}),
    )
    assert isinstance(out.unit_status, testing.ActiveStatus)
    shipping = json.loads(out.get_relation(db.id).local_app_data["log-shipping"])
    assert shipping["storage-config"]["bucket"] == "bucket-b"
    # both locations' credentials are granted: restores may read either
    for name in ("region-a", "region-b"):
        assert out.get_secret(label=f"credentials-{name}").remote_grants == {db.id: {"mysql"}}


def test_unknown_backup_location_is_blocked_naming_the_known_ones():
    rel_a, sec_a = s3_relation("region-a", "bucket-a")
    ctx = context()
    out = ctx.run(
        ctx.on.config_changed(),
        state(rel_a, db_relation(), secrets=[sec_a], config={"backup-location": "mars"}),
    )
    assert out.unit_status == testing.BlockedStatus(
        "backup-location: unknown storage location 'mars': use one of region-a"
    )


def test_s3_relation_wins_over_config_storage():
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(
        ctx.on.config_changed(),
        state(rel, db, secrets=[secret], config={"s3-bucket": "ignored-bucket"}),
    )
    shipping = json.loads(out.get_relation(db.id).local_app_data["log-shipping"])
    assert shipping["storage-config"]["bucket"] == "bucket-a"


def test_several_database_apps_each_get_their_cluster_id_and_grants():
    db1, db2 = db_relation("mysql"), db_relation("mariadb")
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(ctx.on.config_changed(), state(rel, db1, db2, secrets=[secret]))
    assert out.get_relation(db1.id).local_app_data["cluster-id"] == cluster("mysql")
    assert out.get_relation(db2.id).local_app_data["cluster-id"] == cluster("mariadb")
    grants = out.get_secret(label="credentials-s3-a").remote_grants
    assert grants == {db1.id: {"mysql"}, db2.id: {"mariadb"}}


def test_non_leader_writes_nothing_and_reports_status():
    from backup_manager import schedule

    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(ctx.on.config_changed(), state(rel, db, secrets=[secret], leader=False))
    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert "cluster-id" not in out.get_relation(db.id).local_app_data
    assert not schedule.cron_file("backup-manager/0").exists()


def test_encryption_creates_a_key_secret_once_and_grants_it():
    import base64

    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(
        ctx.on.config_changed(), state(rel, db, secrets=[secret], config={"encryption": True})
    )
    key_secret = out.get_secret(label="encryption-key")
    assert len(base64.b64decode(key_secret.tracked_content["key"])) == 32
    assert key_secret.remote_grants == {db.id: {"mysql"}}
    shipping = json.loads(out.get_relation(db.id).local_app_data["log-shipping"])
    assert shipping["encryption-secret-id"] == key_secret.id
    again = ctx.run(ctx.on.config_changed(), out)
    assert again.get_secret(label="encryption-key").tracked_content == key_secret.tracked_content


def test_rotated_user_secret_updates_the_secret_the_providers_read():
    db = db_relation()
    user = testing.Secret(
        tracked_content={"access-key": "AK", "secret-key": "old"},
        latest_content={"access-key": "AK", "secret-key": "new"},
    )
    ours = testing.Secret(
        tracked_content={"access-key": "AK", "secret-key": "old"},
        label="credentials-default",
        owner="app",
    )
    config = {"s3-bucket": "cfg-bucket", "s3-credentials": user.id}
    ctx = context()
    out = ctx.run(ctx.on.secret_changed(user), state(db, secrets=[user, ours], config=config))
    updated = out.get_secret(label="credentials-default")
    assert updated.latest_content == {"access-key": "AK", "secret-key": "new"}
    assert updated.remote_grants == {db.id: {"mysql"}}


def test_s3_relation_gone_means_no_storage():
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(ctx.on.relation_broken(rel), state(rel, db, secrets=[secret]))
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert out.unit_status.message.startswith("no storage")


def test_compression_off_is_sent_without_a_level(s3: FakeS3):
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(
        ctx.on.action("create-backup"),
        state(rel, db, secrets=[secret], config={"compression": False}),
    )
    job = json.loads(out.get_relation(db.id).local_app_data["jobs"])[0]
    assert job["job-config"] == {"compression": False}
    assert "compression-level" not in job


def test_weekly_full_and_daily_incremental_both_get_a_cron_line():
    from backup_manager import schedule

    rel, secret = s3_relation()
    config = {
        "backup-kind": "incremental",
        "backup-schedule": "0 1 * * 1-6",
        "full-backup-schedule": "0 1 * * 0",
    }
    ctx = context()
    out = ctx.run(
        ctx.on.config_changed(), state(rel, db_relation(), secrets=[secret], config=config)
    )
    assert isinstance(out.unit_status, testing.ActiveStatus)
    lines = [
        line
        for line in schedule.cron_file("backup-manager/0").read_text().splitlines()
        if "juju-exec" in line
    ]
    assert [line.split(" root ")[0] for line in lines] == ["0 1 * * 1-6", "0 1 * * 0"]


def test_update_status_blocks_on_refused_credentials_until_they_change(s3: FakeS3):
    s3.bucket("bucket-a").denied = True
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(ctx.on.update_status(), state(rel, db, secrets=[secret]))
    assert out.unit_status == testing.BlockedStatus(
        "storage location s3-a: check access to bucket 'bucket-a' failed: S3 does not know "
        "the access key (InvalidAccessKeyId): check the access key"
    )
    # new keys from the s3-integrator: the old problem no longer applies
    peer_rel = next(r for r in out.relations if isinstance(r, testing.PeerRelation))
    fixed_rel, fixed_secret = s3_relation(access_key="AKIA-NEW")
    out = ctx.run(ctx.on.config_changed(), state(fixed_rel, db, peer_rel, secrets=[fixed_secret]))
    assert isinstance(out.unit_status, testing.ActiveStatus)


# -- what the status says about backups, failures and refused scheduled backups ---------------

BACKUP_IDS = ("20261120T010000Z-0000", "20261121T010000Z-0001")


def _finished(job_id: str, job_type: str, status: str, at: str, **extra: object) -> dict:
    """A finished history record, as the manager keeps it."""
    return {
        "job-id": job_id,
        "type": job_type,
        "app": "mysql",
        "location": "s3-a",
        "status": status,
        "requested-at": at,
        "finished-at": at,
        **extra,
    }


def _peer_with_history(*records: dict, **data: str) -> testing.PeerRelation:
    return peer({"history": json.dumps(list(records)), **data})


def _peer_data(out: testing.State) -> dict[str, str]:
    relation = next(r for r in out.relations if isinstance(r, testing.PeerRelation))
    return dict(relation.local_app_data)


def test_backups_in_the_status_come_from_the_catalog_not_the_cleared_history(s3: FakeS3):
    bucket = s3.bucket("bucket-a")
    for hours, backup_id in zip((30, 6), BACKUP_IDS, strict=True):
        add_backup(bucket, cluster(), backup_id, hours_ago=hours)
    done = _finished("backup-1", "backup", "success", "2026-11-21T01:05:00Z")
    done["backup-id"] = BACKUP_IDS[1]
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    listed = ctx.run(
        ctx.on.action("list-backups"), state(rel, db, _peer_with_history(done), secrets=[secret])
    )
    assert ctx.action_results is not None
    assert ctx.action_results["count"] == 2

    out = ctx.run(ctx.on.action("clear-history"), listed)

    assert ctx.action_results == {"removed": 1, "kept": 0}
    assert isinstance(out.unit_status, testing.ActiveStatus)
    message = out.unit_status.message
    assert "no backup yet" not in message
    assert f"last backup {BACKUP_IDS[1]} (mysql) at " in message
    assert message.endswith("; 2 backups in storage")


def test_the_status_reads_the_summary_not_the_catalog(s3: FakeS3):
    # GIVEN a summary kept from an earlier catalog read, and storage that now refuses reads
    s3.bucket("bucket-a").denied = True
    summary = [
        {
            "app": "mysql",
            "location": "s3-a",
            "count": 812,
            "newest": BACKUP_IDS[1],
            "newest-at": "2026-11-21T01:05:00Z",
        }
    ]
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()

    # WHEN a hook computes the status
    out = ctx.run(
        ctx.on.config_changed(),
        state(rel, db, peer({"backup-summary": json.dumps(summary)}), secrets=[secret]),
    )

    # THEN it speaks from the summary, without listing the catalog (a listing would fail)
    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert f"last backup {BACKUP_IDS[1]} (mysql) at 2026-11-21T01:05:00Z" in (
        out.unit_status.message
    )
    assert out.unit_status.message.endswith("; 812 backups in storage")


def test_a_failed_restore_stays_in_the_status_after_a_later_backup_succeeds():
    restore = _finished("restore-1", "restore", "error", "2026-11-22T07:00:00Z")
    backup = _finished("backup-2", "backup", "success", "2026-11-22T08:00:00Z")
    backup["backup-id"] = BACKUP_IDS[1]
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(
        ctx.on.config_changed(),
        state(rel, db, _peer_with_history(restore, backup), secrets=[secret]),
    )
    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert "restore restore-1 failed (see list-jobs)" in out.unit_status.message


def test_a_failure_goes_once_a_later_job_of_the_same_kind_succeeds():
    failed_backup = _finished("backup-1", "backup", "error", "2026-11-22T06:00:00Z")
    failed_restore = _finished("restore-1", "restore", "error", "2026-11-22T07:00:00Z")
    restored = _finished("restore-2", "restore", "success", "2026-11-22T08:00:00Z")
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(
        ctx.on.config_changed(),
        state(
            rel,
            db,
            _peer_with_history(failed_backup, failed_restore, restored),
            secrets=[secret],
        ),
    )
    message = out.unit_status.message
    assert "restore-1" not in message
    assert "backup backup-1 failed (see list-jobs)" in message


def test_clear_history_clears_the_failures_from_the_status():
    failed = _finished("restore-1", "restore", "error", "2026-11-22T07:00:00Z")
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(
        ctx.on.action("clear-history"),
        state(rel, db, _peer_with_history(failed), secrets=[secret]),
    )
    assert "failed" not in out.unit_status.message


def _refused(job_id: str = "backup-s1", restore: str = "restore-1") -> dict:
    from database_backup.interface import RESTORING_MESSAGE

    return _finished(
        job_id,
        "backup",
        "error",
        "2026-11-22T02:00:00Z",
        kind="full",
        scheduled=True,
        message=RESTORING_MESSAGE.format(job=restore),
    )


def test_a_scheduled_backup_refused_during_a_restore_is_retried_once_after_it(s3: FakeS3):
    # GIVEN a scheduled backup refused because restore-1 ran, and restore-1 has finished
    restore = _finished("restore-1", "restore", "success", "2026-11-22T03:00:00Z")
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    st = state(rel, db, _peer_with_history(_refused(), restore), secrets=[secret])

    # WHEN update-status runs
    out = ctx.run(ctx.on.update_status(), st)

    # THEN the backup is requested again, once, and the history links the two
    (retry,) = jobs_of(out, db)
    assert retry.get("backup-kind", "full") == "full"
    records = {r["job-id"]: r for r in history_of(out)}
    assert records["backup-s1"]["retried-by"] == retry["job-id"]
    assert records[retry["job-id"]]["retry-of"] == "backup-s1"
    assert records[retry["job-id"]]["scheduled"] is True
    again = ctx.run(ctx.on.update_status(), out)
    assert len(jobs_of(again, db)) == 1


def test_a_refused_scheduled_backup_waits_while_the_restore_runs(s3: FakeS3):
    running = _finished("restore-1", "restore", "running", "2026-11-22T03:00:00Z")
    del running["finished-at"]
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    st = state(rel, db, _peer_with_history(_refused(), running), secrets=[secret])
    out = ctx.run(ctx.on.update_status(), st)
    assert jobs_of(out, db) == []


def test_a_retry_that_is_refused_again_is_not_retried(s3: FakeS3):
    retry = _refused("backup-s2", "restore-2")
    retry["retry-of"] = "backup-s1"
    first = {**_refused(), "retried-by": "backup-s2"}
    restores = [
        _finished(f"restore-{n}", "restore", "success", f"2026-11-22T0{n + 2}:00:00Z")
        for n in (1, 2)
    ]
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    st = state(rel, db, _peer_with_history(first, retry, *restores), secrets=[secret])
    out = ctx.run(ctx.on.update_status(), st)
    assert jobs_of(out, db) == []


def test_a_refused_scheduled_backup_superseded_by_a_later_backup_is_not_retried(s3: FakeS3):
    restore = _finished("restore-1", "restore", "success", "2026-11-22T03:00:00Z")
    later = _finished("backup-s2", "backup", "success", "2026-11-22T04:00:00Z", scheduled=True)
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    st = state(rel, db, _peer_with_history(_refused(), restore, later), secrets=[secret])
    out = ctx.run(ctx.on.update_status(), st)
    assert jobs_of(out, db) == []


def test_the_status_counts_the_backups_of_the_related_applications_only():
    summary = [
        {"app": "mysql", "location": "s3-a", "count": 3, "newest": BACKUP_IDS[0]},
        {"app": "gone-db", "location": "s3-a", "count": 40, "newest": BACKUP_IDS[1]},
    ]
    summary[0]["newest-at"] = "2026-11-20T01:05:00Z"
    summary[1]["newest-at"] = "2026-11-21T01:05:00Z"
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(
        ctx.on.config_changed(),
        state(rel, db, peer({"backup-summary": json.dumps(summary)}), secrets=[secret]),
    )
    message = out.unit_status.message
    assert f"last backup {BACKUP_IDS[0]} (mysql)" in message
    assert message.endswith("; 3 backups in storage")


def test_delete_backup_updates_the_summary(s3: FakeS3):
    bucket = s3.bucket("bucket-a")
    for hours, backup_id in zip((30, 6), BACKUP_IDS, strict=True):
        add_backup(bucket, cluster(), backup_id, hours_ago=hours)
    summary = [
        {"app": "mysql", "location": "s3-a", "count": 2, "newest": BACKUP_IDS[1]},
    ]
    summary[0]["newest-at"] = "2026-11-21T01:05:00Z"
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    out = ctx.run(
        ctx.on.action("delete-backup", params={"backup-id": BACKUP_IDS[1]}),
        state(rel, db, peer({"backup-summary": json.dumps(summary)}), secrets=[secret]),
    )
    (stored,) = json.loads(_peer_data(out)["backup-summary"])
    assert (stored["count"], stored["newest"]) == (1, BACKUP_IDS[0])
    assert out.unit_status.message.endswith("; 1 backup in storage")


def test_a_failed_logical_backup_stays_until_a_logical_backup_succeeds():
    logical = _finished("backup-l1", "backup", "error", "2026-11-22T06:00:00Z", kind="logical")
    full = _finished("backup-f1", "backup", "success", "2026-11-22T07:00:00Z", kind="full")
    full["backup-id"] = BACKUP_IDS[1]
    db = db_relation()
    rel, secret = s3_relation()
    ctx = context()
    st = state(rel, db, _peer_with_history(logical, full), secrets=[secret])
    out = ctx.run(ctx.on.config_changed(), st)
    assert "backup backup-l1 failed (see list-jobs)" in out.unit_status.message
    again = _finished("backup-l2", "backup", "success", "2026-11-22T08:00:00Z", kind="logical")
    st = state(rel, db, _peer_with_history(logical, full, again), secrets=[secret])
    out = ctx.run(ctx.on.config_changed(), st)
    assert "failed" not in out.unit_status.message
