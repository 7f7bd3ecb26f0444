"""backup-manager alone, packed: what needs no database application (see test_flow.py)."""

from __future__ import annotations

import datetime
import json
import socket

from database_backup.catalog import BackupMetadata, Catalog
from database_backup.storage import S3Storage
from tests.infra.ceph import CephS3
from tests.infra.fixtures import unique_bucket_name

from .deployment import Deployment

APP = "backup-manager"
BACKUP = "20261129T010000Z-0001"


def closed_port() -> int:
    """A loopback port nothing listens on (S3 unreachable: connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_install_without_storage_blocks_with_the_fix(deployment: Deployment):
    [unit] = deployment.add_app(APP, APP)
    deployment.peer(APP, "manager-peers")

    run = deployment.hook(unit, "install").check()

    status, message = deployment.status(unit)
    assert status == "blocked"
    assert "s3-integrator" in message
    assert "ops 3." in "\n".join(run.log)  # ops ran, from the packed venv
    assert (deployment.charms[APP] / "venv/bin/python").is_symlink()  # made by dispatch


def test_only_the_leader_writes_the_cron_entry(deployment: Deployment):
    leader, follower = deployment.add_app(
        APP, APP, units=2, config={"backup-schedule": "15 3 * * *"}
    )
    deployment.peer(APP, "manager-peers")

    for unit in (leader, follower):
        deployment.hook(unit, "config-changed").check()

    [cron] = [path.read_text() for path in (deployment.machine(leader) / "etc/cron.d").iterdir()]
    assert "15 3 * * *" in cron
    assert f"juju-exec {leader}" in cron
    assert "JUJU_DISPATCH_PATH=hooks/scheduled-backup" in cron
    assert not list((deployment.machine(follower) / "etc/cron.d").iterdir())


def test_the_cron_entry_follows_leadership(deployment: Deployment):
    first, second = deployment.add_app(APP, APP, units=2, config={"backup-schedule": "0 4 * * *"})
    deployment.peer(APP, "manager-peers")
    deployment.hook(first, "config-changed").check()

    deployment.set_leader(second)
    deployment.hook(second, "leader-elected").check()
    deployment.hook(first, "update-status").check()  # the old leader's next hook

    assert not list((deployment.machine(first) / "etc/cron.d").iterdir())
    [cron] = [path.read_text() for path in (deployment.machine(second) / "etc/cron.d").iterdir()]
    assert f"juju-exec {second}" in cron


def test_list_backups_with_no_storage_reachable(deployment: Deployment):
    credentials = deployment.user_secret({"access-key": "AK", "secret-key": "SK-x"}, APP)
    config = {
        "s3-bucket": "backups",
        "s3-endpoint": f"http://127.0.0.1:{closed_port()}",
        "s3-credentials": credentials,
    }
    [unit] = deployment.add_app(APP, APP, config=config)
    deployment.peer(APP, "manager-peers")
    deployment.add_app("mysql-server", "mysql-server")
    deployment.relate(APP, "database-backup", "mysql-server", "database-backup")

    run = deployment.action(unit, "list-backups").check()

    assert run.failed is not None
    assert "unreachable" in run.failed
    assert "SK-x" not in run.failed


def test_an_s3_integrator_relation_becomes_a_location(deployment: Deployment):
    leader, follower = deployment.add_app(APP, APP, units=2)
    deployment.peer(APP, "manager-peers")
    deployment.add_remote_app("s3-eu")
    rel = deployment.relate(APP, "s3", "s3-eu", "s3-credentials")
    keys = deployment.user_secret({"access-key": "AK", "secret-key": "SK-y"}, APP, owner="s3-eu")
    deployment.set_bag(
        rel,
        "s3-eu",
        {
            "version": "1",
            "bucket": "backups-eu",
            "endpoint": f"http://127.0.0.1:{closed_port()}",
            "secret-extra": keys,
        },
    )

    runs = [
        deployment.hook(unit, "s3-relation-changed", relation=rel, remote_unit="s3-eu/0")
        for unit in (leader, follower)
    ]

    for run in runs:
        run.check()
    for unit in (leader, follower):  # storage found: the next thing to fix is said
        assert deployment.status(unit) == (
            "blocked",
            "no database related: juju integrate backup-manager:database-backup <db-app>",
        )
    assert "SK-y" not in str(deployment.state["relations"])


def test_verify_backup_through_the_packed_charm_sends_a_drill_job(
    deployment: Deployment, ceph: CephS3
):
    bucket = unique_bucket_name("verify")
    user = ceph.create_user(bucket)
    ceph.create_bucket(bucket, user)
    credentials = deployment.user_secret(
        {"access-key": user.access_key, "secret-key": user.secret_key}, APP
    )
    config = {"s3-bucket": bucket, "s3-endpoint": ceph.endpoint, "s3-credentials": credentials}
    [unit] = deployment.add_app(APP, APP, config=config)
    deployment.peer(APP, "manager-peers")
    deployment.add_app("mysql-server", "mysql-server")
    rel = deployment.relate(APP, "database-backup", "mysql-server", "database-backup")
    joined = "database-backup-relation-joined"
    deployment.hook(unit, joined, relation=rel, remote_unit="mysql-server/0").check()
    cluster = f"{deployment.state['model']['uuid']}/mysql-server"
    catalog = Catalog(S3Storage(ceph.s3_config(bucket, user=user)), cluster)
    catalog.ensure_cluster()
    catalog.storage.put_bytes(catalog.artefact_key(BACKUP, "data.xbstream.zst"), b"x")
    catalog.write_metadata(complete_backup(BACKUP))

    unknown = deployment.action(unit, "verify-backup", **{"backup-id": "20200101T000000Z-0"})
    run = deployment.action(unit, "verify-backup").check()

    assert unknown.failed is not None
    assert "list-backups" in unknown.failed
    assert run.failed is None, run.failed
    [job] = json.loads(deployment.bag(rel, APP)["jobs"])
    assert job["job-id"] == run.results["job-id"]
    assert (job["job-type"], job["verify-backup-id"]) == ("backup", BACKUP)
    assert "backup-kind" not in job
    assert user.secret_key not in json.dumps([run.results, deployment.state["relations"]])


def complete_backup(backup_id: str) -> BackupMetadata:
    """The backup.json of a complete full backup of a one-byte artefact."""
    finished = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    return BackupMetadata(
        backup_id=backup_id,
        kind="full",
        parent_id=None,
        started_at=finished - datetime.timedelta(minutes=5),
        finished_at=finished,
        artefacts=["data.xbstream.zst"],
        stored_size=1,
        sha256="0" * 64,
        compression="zstd",
        encrypted=False,
        flavour="mariadb",
        server_version="10.11.6",
    )
