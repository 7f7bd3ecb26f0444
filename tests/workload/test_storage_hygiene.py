"""Storage stays bounded: retention purges old binlogs and aborts abandoned uploads (real RGW).

The manager's daily retention (update-status) runs against a real Ceph RGW bucket holding
backups, shipped binlogs and the multipart upload a failed backup left behind.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest

from backup_manager import catalogs as catalogs_mod
from database_backup.catalog import Catalog
from database_backup.catalog.binlogs import BinlogCatalog, BinlogEntry
from database_backup.storage import S3Storage
from tests.infra.ceph import CephS3
from tests.unit.manager.helpers import cluster, context, db_relation, peer, state

from .manager_helpers import (
    NOW,
    location_relation,
    private_paths,  # noqa: F401 - autouse fixture
    put_backup,
    retention_collected,
)

OLD, HELD, FULL = "20261101T010000Z-0000", "20261108T010000Z-1111", "20261120T010000Z-aaaa"
FAILED, RUNNING = "20261121T010000Z-dead", "20261122T010000Z-b00b"
ARTEFACT = "data.xbstream.zst"


def _ship(storage: S3Storage, count: int) -> tuple[BinlogCatalog, str]:
    """`count` shipped binlogs (object, then index entry) on one timeline."""
    index = BinlogCatalog(Catalog(storage, cluster()))
    timeline = index.create_timeline(now=NOW - timedelta(days=30)).timeline_id
    for number in range(1, count + 1):
        name = f"bin.{number:06d}"
        when = NOW - timedelta(days=30 - 4 * number)
        storage.put_bytes(index.object_key(timeline, name + ".zst"), b"binlog bytes")
        index.write_entry(
            BinlogEntry(
                name=name,
                timeline=timeline,
                object_name=name + ".zst",
                raw_size=12,
                stored_size=12,
                sha256="0" * 64,
                compression="zstd",
                encrypted=False,
                created_at=when,
                last_event_at=when + timedelta(days=4),
            )
        )
    return index, timeline


def _backup(storage: S3Storage, backup_id: str, days_ago: float, binlog: str) -> None:
    meta = put_backup(storage, cluster(), backup_id, hours_ago=24 * days_ago, size=64 << 10)
    meta.binlog_file = binlog
    meta.binlog_position = 4
    Catalog(storage, cluster()).write_metadata(meta)


def _abandon(ceph: CephS3, bucket: str, key: str) -> str:
    """A multipart upload with one part sent and never completed (a backup that died)."""
    raw = ceph.client()
    upload_id = raw.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    raw.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"x" * 1024)
    return upload_id


def _counts(ceph: CephS3, bucket: str) -> dict[str, int]:
    keys = ceph.keys(bucket, prefix=f"backups/{cluster()}/")
    return {
        "backup objects": sum("/backups/" in key for key in keys),
        "binlog objects": sum("/binlogs/" in key for key in keys),
        "incomplete uploads": len(ceph.multipart_uploads(bucket)),
    }


def test_retention_purges_unneeded_binlogs_and_abandoned_uploads(
    ceph: CephS3, bucket: str, monkeypatch: pytest.MonkeyPatch
):
    storage = S3Storage(ceph.s3_config(bucket, path="backups"))
    index, timeline = _ship(storage, 6)
    _backup(storage, OLD, 21, "bin.000001")  # past max-age: retention deletes it
    _backup(storage, HELD, 14, "bin.000003")  # past max-age but held
    _backup(storage, FULL, 2, "bin.000005")
    Catalog(storage, cluster()).set_hold(HELD, NOW + timedelta(days=30))
    base = f"backups/{cluster()}/backups"
    # the failed backup: its upload is abandoned; the running one's must survive
    monkeypatch.setattr(catalogs_mod, "INCOMPLETE_UPLOAD_AGE", timedelta(seconds=2))
    abandoned = _abandon(ceph, bucket, f"{base}/{FAILED}/{ARTEFACT}")
    running = _abandon(ceph, bucket, f"{base}/{RUNNING}/{ARTEFACT}")
    time.sleep(3)
    young = _abandon(ceph, bucket, f"{base}/20261122T020000Z-cafe/{ARTEFACT}")
    before = _counts(ceph, bucket)

    rel, secret = location_relation(ceph, "region-a", bucket)
    record = {"job-id": "j-run", "type": "backup", "app": "mysql", "status": "running",
              "backup-id": RUNNING, "location": "region-a"}  # fmt: skip
    config = {"retention-min-count": 1, "retention-max-age": "7d", "backup-schedule": ""}
    history = peer({"history": json.dumps([record])})
    st = state(rel, db_relation(), history, secrets=[secret], config=config)
    ctx = context()
    retention_collected(ctx, ctx.run(ctx.on.update_status(), st))  # the daily run's worker

    after = _counts(ceph, bucket)
    print(f"\nbefore retention: {before}\nafter retention:  {after}")
    ids = [b.backup_id for b in Catalog(storage, cluster()).list_backups()]
    assert ids == [HELD, FULL]
    names = [b.name for b in index.stored_binlogs()[1][timeline]]
    # the oldest kept backup (HELD) starts in bin.000003: nothing older remains
    assert names == ["bin.000003", "bin.000004", "bin.000005", "bin.000006"]
    left = {upload["UploadId"] for upload in ceph.multipart_uploads(bucket)}
    assert abandoned not in left
    assert left == {running, young}
