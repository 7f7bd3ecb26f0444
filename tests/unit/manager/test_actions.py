"""Every action through Scenario: results, the job sent (or not), and bad input."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from ops import testing

from database_backup.catalog import Catalog
from database_backup.interface import JobRequest, JobState, JobStatus, JobType, StorageConfig

from .fakes import NOW, FakeS3, add_backup, add_binlog
from .helpers import cluster, context, db_relation, history_of, jobs_of, peer, s3_relation, state


def run_action(name: str, st: testing.State, **params) -> tuple[dict[str, Any], testing.State]:
    ctx = context()
    out = ctx.run(ctx.on.action(name, params=params), st)
    assert ctx.action_results is not None
    return ctx.action_results, out


def fail_message(name: str, st: testing.State, **params) -> str:
    """Run an action that must fail; check that no job was sent; return the message."""
    ctx = context()
    with pytest.raises(testing.ActionFailed) as info:
        ctx.run(ctx.on.action(name, params=params), st)
    after = info.value.state
    assert isinstance(after, testing.State)
    for relation in st.relations:
        if relation.endpoint == "database-backup":
            before = jobs_of(st, relation)
            assert jobs_of(after, relation) == before, "a failed action sent a job"
    return info.value.message


def base(*extra: testing.RelationBase, config=None, db=None):
    db = db or db_relation()
    rel, secret = s3_relation()
    return db, state(rel, db, *extra, secrets=[secret], config=config)


# -- create-backup ----------------------------------------------------------------------


def test_create_backup_sends_one_job_with_secret_credentials_and_returns_at_once(s3: FakeS3):
    db, st = base()
    results, out = run_action("create-backup", st, description="before upgrade")
    jobs = jobs_of(out, db)
    assert len(jobs) == 1
    job = jobs[0]
    assert job["job-id"] == results["job-id"]
    assert job["job-type"] == "backup"
    assert job["backup-kind"] == "full"
    assert job["description"] == "before upgrade"
    assert job["job-config"] == {"compression": True}
    assert job["storage-config"]["credentials-secret-id"].startswith("secret:")
    assert "access-key" not in json.dumps(job)
    assert results["status"] == "requested"
    assert results["follow"] == "juju run backup-manager/leader list-jobs"
    assert results["job-id"] in results["table"]
    assert json.loads(results["json"])["app"] == "mysql"
    assert [r["job-id"] for r in history_of(out)] == [results["job-id"]]
    assert "SECRET-A" not in json.dumps(results)


def test_create_backup_unknown_application_fails_and_sends_nothing(s3: FakeS3):
    _, st = base()
    message = fail_message("create-backup", st, application="postgres")
    assert message == "unknown application 'postgres': the related database applications are mysql"


def test_create_backup_needs_the_application_when_several_are_related(s3: FakeS3):
    other = db_relation("mariadb")
    _, st = base(other)
    assert "say which with application=<name>" in fail_message("create-backup", st)
    results, out = run_action("create-backup", st, application="mariadb")
    assert [j["job-id"] for j in jobs_of(out, other)] == [results["job-id"]]


def test_create_backup_without_database_fails():
    rel, secret = s3_relation()
    message = fail_message("create-backup", state(rel, secrets=[secret]))
    assert message.startswith("no database application is related: juju integrate")


def test_create_backup_with_wrong_credentials_fails_with_a_clear_message(s3: FakeS3):
    s3.bucket("bucket-a").denied = True
    _, st = base()
    message = fail_message("create-backup", st)
    assert "storage location 's3-a'" in message
    assert "refused the credentials" in message
    assert "InvalidAccessKeyId" in message
    assert "SECRET-A" not in message


def test_incremental_builds_on_the_newest_backup(s3: FakeS3):
    add_backup(s3.bucket("bucket-a"), cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    add_backup(s3.bucket("bucket-a"), cluster(), "20261121T010000Z-bbbb", hours_ago=24)
    db, st = base()
    _, out = run_action("create-backup", st, kind="incremental")
    job = jobs_of(out, db)[0]
    assert job["backup-kind"] == "incremental"
    assert job["parent-backup-id"] == "20261121T010000Z-bbbb"


def test_incremental_without_any_backup_fails(s3: FakeS3):
    _, st = base()
    assert "create a full backup first" in fail_message("create-backup", st, kind="incremental")


def test_logical_backup_of_some_tables(s3: FakeS3):
    db, st = base()
    _, out = run_action("create-backup", st, kind="logical", tables=["shop.orders"])
    job = jobs_of(out, db)[0]
    assert job["backup-kind"] == "logical"
    assert job["tables"] == ["shop.orders"]


def test_tables_with_a_physical_backup_fail(s3: FakeS3):
    _, st = base()
    message = fail_message("create-backup", st, kind="full", databases=["shop"])
    assert message == "databases and tables only apply to kind=logical backups"


def test_create_backup_encrypted_passes_the_key_secret(s3: FakeS3):
    db, st = base(config={"encryption": True})
    _, out = run_action("create-backup", st)
    job = jobs_of(out, db)[0]
    assert job["encryption-secret-id"] == out.get_secret(label="encryption-key").id


def test_create_backup_on_a_non_leader_fails(s3: FakeS3):
    db = db_relation()
    rel, secret = s3_relation()
    st = state(rel, db, secrets=[secret], leader=False)
    assert fail_message("create-backup", st).startswith("run this action on the leader")


def test_create_backup_with_invalid_config_fails(s3: FakeS3):
    _, st = base(config={"backup-schedule": "not cron"})
    message = fail_message("create-backup", st)
    assert message.startswith("the charm config is invalid (backup-schedule:")


def test_create_backup_to_another_location(s3: FakeS3):
    db = db_relation()
    rel_a, sec_a = s3_relation("region-a", "bucket-a")
    rel_b, sec_b = s3_relation("region-b", "bucket-b")
    st = state(rel_a, rel_b, db, secrets=[sec_a, sec_b])
    results, out = run_action("create-backup", st, location="region-b")
    assert jobs_of(out, db)[0]["storage-config"]["bucket"] == "bucket-b"
    assert json.loads(results["json"])["location"] == "region-b"
    assert "unknown storage location 'mars'" in fail_message("create-backup", st, location="mars")


# -- restore ------------------------------------------------------------------------------


def test_restore_by_backup_id_names_job_backup_and_point_in_time(s3: FakeS3):
    meta = add_backup(s3.bucket("bucket-a"), cluster(), "20261121T010000Z-bbbb", hours_ago=24)
    db, st = base()
    results, out = run_action("restore", st, **{"backup-id": meta.backup_id})
    job = jobs_of(out, db)[0]
    assert job["job-type"] == "restore"
    assert job["backup-id"] == meta.backup_id
    assert job["artefact-path"] == f"{cluster()}/backups/{meta.backup_id}"
    assert "point-in-time" not in job
    assert results["recovered-from-backup"] == meta.backup_id
    assert results["job-id"] == job["job-id"]
    assert results["point-in-time"] == meta.finished_at.isoformat().replace("+00:00", "Z")


def test_restore_point_in_time_picks_the_newest_backup_before_it(s3: FakeS3):
    bucket = s3.bucket("bucket-a")
    add_backup(bucket, cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    add_backup(bucket, cluster(), "20261121T010000Z-bbbb", hours_ago=24)
    add_binlog(bucket, cluster())
    db, st = base()
    target = (NOW - timedelta(hours=30)).isoformat().replace("+00:00", "Z")
    results, out = run_action("restore", st, **{"point-in-time": target})
    job = jobs_of(out, db)[0]
    assert job["backup-id"] == "20261120T010000Z-aaaa"
    assert job["point-in-time"] == target
    assert results["recovered-from-backup"] == "20261120T010000Z-aaaa"
    assert results["point-in-time"] == target


def test_restore_latest(s3: FakeS3):
    bucket = s3.bucket("bucket-a")
    add_backup(bucket, cluster(), "20261121T010000Z-bbbb", hours_ago=24)
    add_binlog(bucket, cluster())
    db, st = base()
    results, out = run_action("restore", st, **{"point-in-time": "latest"})
    assert jobs_of(out, db)[0]["point-in-time"] == "latest"
    assert results["point-in-time"] == "latest"


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({}, "say what to restore"),
        (
            {"backup-id": "20991231T000000Z-ffff"},
            "there is no complete backup '20991231T000000Z-ffff'",
        ),
        ({"point-in-time": "2999-01-01T00:00:00Z"}, "is in the future"),
        ({"point-in-time": "2001-01-01T00:00:00Z"}, "is before the oldest backup"),
        ({"point-in-time": "yesterday"}, "is not a time: use RFC 3339"),
        (
            {"backup-id": "20261121T010000Z-bbbb", "point-in-time": "2001-01-01T00:00:00Z"},
            "is before backup",
        ),
    ],
)
def test_restore_bad_input_fails_and_sends_nothing(s3: FakeS3, params, words):
    bucket = s3.bucket("bucket-a")
    add_backup(bucket, cluster(), "20261121T010000Z-bbbb", hours_ago=24)
    add_binlog(bucket, cluster())
    _, st = base()
    assert words in fail_message("restore", st, **params)


def test_restore_to_a_point_in_time_without_binlogs_fails(s3: FakeS3):
    add_backup(s3.bucket("bucket-a"), cluster(), "20261121T010000Z-bbbb", hours_ago=24)
    _, st = base()
    assert "has no shipped binary logs" in fail_message(
        "restore", st, **{"point-in-time": "latest"}
    )


def test_restore_of_an_encrypted_backup_passes_the_key(s3: FakeS3):
    add_backup(
        s3.bucket("bucket-a"), cluster(), "20261121T010000Z-bbbb", hours_ago=24, encrypted=True
    )
    db, st = base(config={"encryption": True})
    configured = context().run(context().on.config_changed(), st)  # the key is created
    _, out = run_action("restore", configured, **{"backup-id": "20261121T010000Z-bbbb"})
    assert jobs_of(out, db)[0]["encryption-secret-id"] == out.get_secret(label="encryption-key").id


# -- list-backups, preserve, delete ----------------------------------------------------------


def test_list_backups_table_and_json(s3: FakeS3):
    bucket = s3.bucket("bucket-a")
    add_backup(bucket, cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    add_backup(
        bucket,
        cluster(),
        "20261121T010000Z-bbbb",
        hours_ago=24,
        kind="incremental",
        parent="20261120T010000Z-aaaa",
    )
    Catalog(bucket, cluster()).set_hold("20261120T010000Z-aaaa", NOW + timedelta(days=3))
    _, st = base()
    results, _ = run_action("list-backups", st)
    rows = json.loads(results["json"])
    assert [r["backup-id"] for r in rows] == ["20261120T010000Z-aaaa", "20261121T010000Z-bbbb"]
    assert rows[0]["hold"]
    assert rows[1]["parent"] == "20261120T010000Z-aaaa"
    assert rows[1]["location"] == "s3-a"
    lines = results["table"].splitlines()
    assert lines[0].split()[:4] == ["ID", "APP", "KIND", "PARENT"]
    assert "incremental" in lines[3]
    assert results["count"] == 2


def test_list_backups_shows_incomplete_ones(s3: FakeS3):
    bucket = s3.bucket("bucket-a")
    add_backup(bucket, cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    bucket.put_bytes(f"{cluster()}/backups/20261122T010000Z-cccc/data.xbstream.zst", b"partial")
    _, st = base()
    results, _ = run_action("list-backups", st)
    statuses = {r["backup-id"]: r["status"] for r in json.loads(results["json"])}
    assert statuses == {"20261120T010000Z-aaaa": "complete", "20261122T010000Z-cccc": "incomplete"}


def test_preserve_then_cancel(s3: FakeS3):
    bucket = s3.bucket("bucket-a")
    add_backup(bucket, cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    _, st = base()
    until = (NOW + timedelta(days=10)).replace(microsecond=0)
    results, _ = run_action(
        "preserve-backup", st, **{"backup-id": "20261120T010000Z-aaaa", "until": until.isoformat()}
    )
    assert results["preserve-until"] == until.isoformat().replace("+00:00", "Z")
    assert Catalog(bucket, cluster()).get_hold("20261120T010000Z-aaaa") == until
    results, _ = run_action(
        "preserve-backup", st, **{"backup-id": "20261120T010000Z-aaaa", "cancel": True}
    )
    assert results["preserve-until"] == "cancelled"
    assert Catalog(bucket, cluster()).get_hold("20261120T010000Z-aaaa") is None


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"until": "2001-01-01"}, "the hold date 2001-01-01T00:00:00Z is in the past"),
        ({}, "give either until=<date> (hold) or cancel=true"),
        ({"until": "2999-01-01", "cancel": True}, "give either until=<date>"),
    ],
)
def test_preserve_bad_input(s3: FakeS3, params, words):
    add_backup(s3.bucket("bucket-a"), cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    _, st = base()
    assert words in fail_message(
        "preserve-backup", st, **{"backup-id": "20261120T010000Z-aaaa", **params}
    )


def test_preserve_unknown_backup(s3: FakeS3):
    _, st = base()
    message = fail_message("preserve-backup", st, **{"backup-id": "nope", "until": "2999-01-01"})
    assert "there is no complete backup 'nope' of mysql" in message


def test_delete_refuses_held_and_parents_and_in_use_then_deletes(s3: FakeS3):
    bucket = s3.bucket("bucket-a")
    add_backup(bucket, cluster(), "20261119T010000Z-0000", hours_ago=72)
    add_backup(bucket, cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    add_backup(
        bucket,
        cluster(),
        "20261121T010000Z-bbbb",
        hours_ago=24,
        kind="incremental",
        parent="20261120T010000Z-aaaa",
    )
    Catalog(bucket, cluster()).set_hold("20261119T010000Z-0000", NOW + timedelta(days=3))
    restoring = {
        "job-id": "restore-1",
        "type": "restore",
        "app": "mysql",
        "status": "running",
        "backup-id": "20261121T010000Z-bbbb",
    }
    db = db_relation()
    rel, secret = s3_relation()
    st = state(rel, db, peer({"history": json.dumps([restoring])}), secrets=[secret])
    assert "is held until" in fail_message(
        "delete-backup", st, **{"backup-id": "20261119T010000Z-0000"}
    )
    assert "is the parent of 20261121T010000Z-bbbb" in fail_message(
        "delete-backup", st, **{"backup-id": "20261120T010000Z-aaaa"}
    )
    assert "is being restored or copied" in fail_message(
        "delete-backup", st, **{"backup-id": "20261121T010000Z-bbbb"}
    )
    Catalog(bucket, cluster()).set_hold("20261119T010000Z-0000", None)
    results, _ = run_action("delete-backup", st, **{"backup-id": "20261119T010000Z-0000"})
    assert results == {
        "deleted": "20261119T010000Z-0000",
        "location": "s3-a",
        "cluster": cluster(),
    }
    assert not any(
        k.startswith(f"{cluster()}/backups/20261119T010000Z-0000/") for k in bucket.objects
    )


# -- list-jobs, clear-history ---------------------------------------------------------------


def _job(job_id: str, job_type: JobType = JobType.BACKUP) -> JobRequest:
    storage = StorageConfig(bucket="bucket-a", credentials_secret_id="secret:cvh7kruupa1s46bqvuig")
    return JobRequest(job_id, job_type, storage, requested_at="2026-11-22T01:00:00Z")


def test_list_jobs_shows_phase_and_progress_from_the_provider(s3: FakeS3):
    running = JobStatus.for_request(
        _job("backup-1"),
        JobState.RUNNING,
        phase="streaming",
        bytes_done=512 << 20,
        bytes_estimated=1 << 30,
    )
    failed = JobStatus.for_request(_job("backup-0"), JobState.ERROR, message="disk full")
    db = db_relation(statuses=[running, failed], jobs=[_job("backup-0"), _job("backup-1")])
    _, st = base(db=db)
    results, out = run_action("list-jobs", st)
    rows = {r["job-id"]: r for r in json.loads(results["json"])}
    assert rows["backup-1"]["phase"] == "streaming"
    assert rows["backup-1"]["progress"] == "50% (512.0 MiB of 1.0 GiB)"
    assert rows["backup-0"]["status"] == "error"
    assert rows["backup-0"]["message"] == "disk full"
    assert "streaming" in results["table"]
    assert len(history_of(out)) == 2


def test_clear_history_removes_finished_jobs_from_history_and_databag(s3: FakeS3):
    done = JobStatus.for_request(
        _job("backup-0"), JobState.SUCCESS, backup_id="20261121T010000Z-bbbb"
    )
    running = JobStatus.for_request(_job("backup-1"), JobState.RUNNING)
    db = db_relation(statuses=[done, running], jobs=[_job("backup-0"), _job("backup-1")])
    _, st = base(db=db)
    results, out = run_action("clear-history", st)
    assert results == {"removed": 1, "kept": 1}
    assert [r["job-id"] for r in history_of(out)] == ["backup-1"]
    assert [j["job-id"] for j in jobs_of(out, db)] == ["backup-1"]


# -- copy-backup (validation; the copy itself runs against real S3 in the workload tests) ---


def test_copy_to_the_same_location_fails(s3: FakeS3):
    add_backup(s3.bucket("bucket-a"), cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    _, st = base()
    message = fail_message("copy-backup", st, **{"backup-id": "20261120T010000Z-aaaa"})
    assert "copy to the same location is pointless" in message
    message = fail_message(
        "copy-backup", st, **{"backup-id": "20261120T010000Z-aaaa", "to": "s3-a", "from": "s3-a"}
    )
    assert "is already in location 's3-a'" in message


def test_copy_to_a_location_with_wrong_credentials_fails(s3: FakeS3):
    add_backup(s3.bucket("bucket-a"), cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    s3.bucket("bucket-b").denied = True
    db = db_relation()
    rel_a, sec_a = s3_relation("region-a", "bucket-a")
    rel_b, sec_b = s3_relation("region-b", "bucket-b")
    st = state(rel_a, rel_b, db, secrets=[sec_a, sec_b])
    message = fail_message(
        "copy-backup", st, **{"backup-id": "20261120T010000Z-aaaa", "to": "region-b"}
    )
    assert "storage location 'region-b'" in message
    assert "refused the credentials" in message


def test_copy_of_an_incremental_needs_its_parent_there_first(s3: FakeS3):
    bucket = s3.bucket("bucket-a")
    add_backup(bucket, cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    add_backup(
        bucket,
        cluster(),
        "20261121T010000Z-bbbb",
        hours_ago=24,
        kind="incremental",
        parent="20261120T010000Z-aaaa",
    )
    db = db_relation()
    rel_a, sec_a = s3_relation("region-a", "bucket-a")
    rel_b, sec_b = s3_relation("region-b", "bucket-b")
    st = state(rel_a, rel_b, db, secrets=[sec_a, sec_b])
    message = fail_message(
        "copy-backup", st, **{"backup-id": "20261121T010000Z-bbbb", "to": "region-b"}
    )
    assert "copy 20261120T010000Z-aaaa first" in message


def test_restore_some_tables_of_a_logical_backup(s3: FakeS3):
    bucket = s3.bucket("bucket-a")
    add_backup(bucket, cluster(), "20261120T010000Z-aaaa", hours_ago=48)
    add_backup(bucket, cluster(), "20261121T010000Z-llll", hours_ago=24, kind="logical")
    db, st = base()
    _, out = run_action(
        "restore", st, **{"backup-id": "20261121T010000Z-llll", "tables": ["shop.orders"]}
    )
    job = jobs_of(out, db)[0]
    assert job["tables"] == ["shop.orders"]
    assert job["job-config"] == {"compression": True}
    message = fail_message(
        "restore", st, **{"backup-id": "20261120T010000Z-aaaa", "databases": ["shop"]}
    )
    assert "is a full backup: databases and tables can only be picked from a logical" in message
