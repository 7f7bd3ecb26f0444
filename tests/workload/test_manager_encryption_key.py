"""A new manager restores an old manager's encrypted backup with the admin's key.

Real RGW and MariaDB; the managers run through Scenario. Manager A generates its key and
the admin exports it; the database backs up with the key manager A sends. Manager A is then
gone: manager B, given only the bucket and the exported key as `encryption-key-secret`,
asks for the restore, and the database restores with the key manager B sends. A manager
with a new key of its own refuses instead of sending a key that cannot decrypt.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from pathlib import Path

import pytest
from ops import testing

from database_backup.catalog import BackupMetadata, Catalog, new_backup_id
from database_backup.mysql import backup_full, restore_physical
from database_backup.storage import S3Storage
from database_backup.stream.crypto import fingerprint
from tests.infra.ceph import CephS3
from tests.infra.mariadb import MariaDBServer
from tests.unit.manager.helpers import cluster, context, db_relation, jobs_of, state
from tests.workload.engine_helpers import change, connection, fill

from .manager_helpers import (
    location_relation,
    private_paths,  # noqa: F401 - autouse fixture
    run_action,
)

CLUSTER = cluster()


def _old_manager_backup(
    ceph: CephS3, bucket: str, server: MariaDBServer, work: Path
) -> tuple[str, BackupMetadata, Catalog, dict[str, str]]:
    """Manager A's exported key, the backup made with it, its catalog, the data backed up."""
    rel, creds = location_relation(ceph, "region-a", bucket)
    ctx = context()
    manager_a = ctx.run(
        ctx.on.config_changed(),
        state(rel, db_relation(), secrets=[creds], config={"encryption": True}),
    )
    exported, _ = run_action(manager_a, "export-encryption-key")
    sent = manager_a.get_secret(label="encryption-key").tracked_content["key"]
    assert exported["key"] == sent
    catalog = Catalog(S3Storage(ceph.s3_config(bucket, path="backups")), CLUSTER)
    catalog.ensure_cluster()
    fill(server, "shop", rows=2_000)
    meta = backup_full(
        connection(server),
        catalog,
        backup_id=new_backup_id(datetime.now(timezone.utc)),
        key=base64.b64decode(sent),
        compression_level=3,
        workdir=work / "backup",
    )
    return exported["key"], meta, catalog, server.checksum_tables("shop")


def test_a_new_manager_given_the_exported_key_restores_the_old_managers_backup(
    ceph: CephS3, bucket: str, server: MariaDBServer, tmp_path: Path
):
    key, meta, catalog, backed_up = _old_manager_backup(ceph, bucket, server, tmp_path)
    change(server, "shop")
    assert meta.key_fingerprint == fingerprint(base64.b64decode(key))
    db = db_relation()
    rel, creds = location_relation(ceph, "region-a", bucket)
    admin = testing.Secret(tracked_content={"key": key})
    config = {"encryption": True, "encryption-key-secret": admin.id}

    results, out = run_action(
        state(rel, db, secrets=[creds, admin], config=config),
        "restore",
        **{"backup-id": meta.backup_id},
    )
    job = jobs_of(out, db)[0]
    sent = out.get_secret(id=job["encryption-secret-id"]).tracked_content["key"]
    restore_physical(
        connection(server),
        server,
        catalog,
        meta.backup_id,
        key=base64.b64decode(sent),
        workdir=tmp_path / "restore",
    )

    assert results["recovered-from-backup"] == meta.backup_id
    assert server.checksum_tables("shop") == backed_up


def test_a_new_manager_with_a_key_of_its_own_refuses_and_sends_nothing(
    ceph: CephS3, bucket: str, server: MariaDBServer, tmp_path: Path
):
    key, meta, _, _ = _old_manager_backup(ceph, bucket, server, tmp_path)
    db = db_relation()
    rel, creds = location_relation(ceph, "region-a", bucket)
    ctx = context()
    manager_b = ctx.run(
        ctx.on.config_changed(), state(rel, db, secrets=[creds], config={"encryption": True})
    )
    own = manager_b.get_secret(label="encryption-key").tracked_content["key"]

    ctx = context()
    with pytest.raises(testing.ActionFailed) as failed:
        ctx.run(ctx.on.action("restore", params={"backup-id": meta.backup_id}), manager_b)
    message = failed.value.message
    after = failed.value.state
    assert isinstance(after, testing.State)

    assert f"fingerprint {meta.key_fingerprint}" in message
    assert fingerprint(base64.b64decode(own)) in message
    assert key not in message
    assert own not in message
    assert jobs_of(after, db) == []
