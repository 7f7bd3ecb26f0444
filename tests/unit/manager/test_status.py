"""Status and reconcile: blocked reasons, secrets granted, relation data published."""

from __future__ import annotations

import json

import pytest
from ops import testing

from .fakes import FakeS3
from .helpers import cluster, context, db_relation, s3_relation, state


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
    assert not schedule.CRON_FILE.exists()
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
    assert not schedule.CRON_FILE.exists()


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
    lines = [line for line in schedule.CRON_FILE.read_text().splitlines() if "juju-exec" in line]
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
