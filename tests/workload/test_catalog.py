"""The catalog and the stream stages on a real S3 endpoint (Ceph RGW on loopback)."""

from __future__ import annotations

import hashlib
import io
import json
import os
from datetime import datetime, timedelta, timezone

import pytest

from database_backup.catalog import (
    BackupHeldError,
    BackupMetadata,
    BackupNotFoundError,
    Catalog,
    CatalogError,
    ForeignClusterError,
    IncompleteBackup,
    RetentionPolicy,
    new_backup_id,
)
from database_backup.storage import S3Storage
from database_backup.stream import IntegrityError, decode, encode, generate_key
from tests.infra.ceph import CephS3

CLUSTER = "0b6c3f52-8a1e-4c55-9d0b-model/mysql"
ARTEFACT = "data.xbstream.zst.enc"
DAY = timedelta(days=1)
KEY = generate_key()
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=timezone.utc)


def payload(size: int = 3 << 20) -> bytes:
    """Half random, half repetitive bytes: compressible, but not trivially."""
    random_part = os.urandom(size // 2)
    return random_part + b"row-data;" * ((size - len(random_part)) // 9)


def take_backup(
    storage: S3Storage,
    catalog: Catalog,
    data: bytes,
    *,
    started_at: datetime,
    kind: str = "full",
    parent_id: str | None = None,
) -> BackupMetadata:
    """Upload ``data`` through the stream stages and record it, as the engine does."""
    backup_id = new_backup_id(started_at)
    catalog.ensure_cluster()
    stream, digest = encode(io.BytesIO(data), compression_level=3, key=KEY)
    storage.upload_stream(catalog.artefact_key(backup_id, ARTEFACT), stream)
    meta = BackupMetadata(
        backup_id=backup_id,
        kind=kind,
        parent_id=parent_id,
        job_id="job-1",
        started_at=started_at,
        finished_at=started_at + timedelta(minutes=5),
        artefacts=[ARTEFACT],
        stored_size=digest.bytes_read,
        raw_size=len(data),
        sha256=digest.sha256,
        compression="zstd",
        encrypted=True,
        flavour="mariadb",
        server_version="10.11.6",
        binlog_file="bin.000002",
        binlog_position=345,
        gtid_set="0-1-17",
    )
    catalog.write_log(backup_id, "backup log\n")
    catalog.write_metadata(meta)
    return meta


def restore_bytes(storage: S3Storage, meta: BackupMetadata) -> bytes:
    raw = decode(
        storage.open_stream(f"{CLUSTER}/backups/{meta.backup_id}/{meta.artefacts[0]}"),
        key=KEY,
        compressed=True,
        expected_sha256=meta.sha256,
        expected_size=meta.stored_size,
    )
    return raw.read()


def test_write_list_read_and_restore_metadata_and_data(storage: S3Storage) -> None:
    catalog = Catalog(storage, CLUSTER)
    first_data, second_data = payload(), payload(2 << 20)

    first = take_backup(storage, catalog, first_data, started_at=T0)
    second = take_backup(storage, catalog, second_data, started_at=T0 + DAY)

    # a fresh catalog object sees exactly what is in the bucket
    reader = Catalog(storage, CLUSTER)
    assert [m.backup_id for m in reader.list_backups()] == [first.backup_id, second.backup_id]
    assert reader.read_metadata(first.backup_id) == first
    assert reader.list_backups()[1] == second
    stored = storage.head(f"{CLUSTER}/backups/{first.backup_id}/{ARTEFACT}")
    assert stored.size == first.stored_size < len(first_data)
    document = json.loads(storage.get_bytes(f"{CLUSTER}/backups/{first.backup_id}/backup.json"))
    assert document["format-version"] == 1
    assert document["sha256"] == first.sha256
    assert storage.get_bytes(f"{CLUSTER}/backups/{first.backup_id}/job.log") == b"backup log\n"
    identity = json.loads(storage.get_bytes(f"{CLUSTER}/cluster.json"))
    assert identity["cluster-id"] == CLUSTER
    assert hashlib.sha256(restore_bytes(storage, second)).digest() == (
        hashlib.sha256(second_data).digest()
    )
    assert restore_bytes(storage, first) == first_data


def test_an_artefact_without_backup_json_is_not_a_complete_backup(storage: S3Storage) -> None:
    catalog = Catalog(storage, CLUSTER)
    catalog.ensure_cluster()
    backup_id = new_backup_id(T0)
    data = payload(1 << 20)
    stream, digest = encode(io.BytesIO(data), compression_level=3, key=KEY)
    storage.upload_stream(catalog.artefact_key(backup_id, ARTEFACT), stream)

    assert catalog.list_backups() == []
    (entry,) = catalog.list_backups(include_incomplete=True)
    assert isinstance(entry, IncompleteBackup)
    assert entry.backup_id == backup_id
    assert entry.size == digest.bytes_read
    assert entry.objects == (ARTEFACT,)
    with pytest.raises(BackupNotFoundError, match=backup_id):
        catalog.read_metadata(backup_id)
    with pytest.raises(BackupNotFoundError):
        catalog.set_hold(backup_id, T0 + DAY)  # only complete backups can be held

    catalog.delete_backup(backup_id)  # what a failed backup left behind can be removed

    assert not list(storage.list(catalog.backup_prefix(backup_id)))
    assert catalog.list_backups(include_incomplete=True) == []


def test_metadata_for_a_short_upload_is_refused(storage: S3Storage) -> None:
    catalog = Catalog(storage, CLUSTER)
    meta = take_backup(storage, catalog, payload(1 << 20), started_at=T0)
    catalog.delete_backup(meta.backup_id)
    key = catalog.artefact_key(meta.backup_id, ARTEFACT)
    storage.put_bytes(key, b"only the first bytes")

    with pytest.raises(CatalogError, match="not recording the backup as complete"):
        catalog.write_metadata(meta)
    assert catalog.list_backups() == []


def test_tampered_artefact_in_s3_fails_verification(storage: S3Storage) -> None:
    catalog = Catalog(storage, CLUSTER)
    data = payload(1 << 20)
    meta = take_backup(storage, catalog, data, started_at=T0)
    key = catalog.artefact_key(meta.backup_id, ARTEFACT)
    damaged = bytearray(storage.get_bytes(key))
    damaged[len(damaged) // 2] ^= 0x10
    storage.put_bytes(key, bytes(damaged))

    with pytest.raises(IntegrityError):
        restore_bytes(storage, meta)


def test_holds_round_trip_and_block_deletion_and_purge(storage: S3Storage) -> None:
    now = T0 + 10 * DAY
    catalog = Catalog(storage, CLUSTER, clock=lambda: now)
    metas = [
        take_backup(storage, catalog, payload(256 << 10), started_at=T0 + i * DAY)
        for i in range(4)
    ]
    oldest, newest = metas[0].backup_id, metas[-1].backup_id

    catalog.set_hold(oldest, now + 3 * DAY)
    catalog.set_hold(newest, now + DAY)
    catalog.set_hold(newest, None)  # cancelled (preserve-until null)

    reader = Catalog(storage, CLUSTER, clock=lambda: now)
    assert reader.get_hold(oldest) == now + 3 * DAY
    assert reader.get_hold(newest) is None
    assert reader.holds() == {oldest: now + 3 * DAY}
    with pytest.raises(BackupHeldError, match="held until"):
        reader.delete_backup(oldest)

    reader.purge(RetentionPolicy(max_count=2))
    kept = [m.backup_id for m in reader.list_backups()]
    assert kept == [oldest, metas[2].backup_id, newest]

    later = Catalog(storage, CLUSTER, clock=lambda: now + 4 * DAY)  # the hold has expired
    later.purge(RetentionPolicy(max_count=2))
    assert [m.backup_id for m in later.list_backups()] == [metas[2].backup_id, newest]
    assert not list(storage.list(f"{CLUSTER}/backups/{oldest}/"))


def test_foreign_cluster_prefix_is_refused(storage: S3Storage) -> None:
    Catalog(storage, "other-model/mysql").ensure_cluster()
    storage.copy("other-model/mysql/cluster.json", f"{CLUSTER}/cluster.json")

    catalog = Catalog(storage, CLUSTER)
    with pytest.raises(ForeignClusterError, match="other-model/mysql"):
        catalog.ensure_cluster()
    with pytest.raises(ForeignClusterError):
        catalog.list_backups()
    with pytest.raises(ForeignClusterError, match="inside the catalog"):
        Catalog(storage, "other-model/mysql/nested").ensure_cluster()
    with pytest.raises(ForeignClusterError, match="not part of"):
        Catalog(storage, "other-model").ensure_cluster()


def test_delete_removes_every_object_of_the_backup_only(
    ceph: CephS3, bucket: str, storage: S3Storage
) -> None:
    # the catalog under a storage path: keys land below it in the bucket
    scoped = S3Storage(ceph.s3_config(bucket, path="backups-root"))
    catalog = Catalog(scoped, CLUSTER)
    doomed = take_backup(scoped, catalog, payload(1 << 20), started_at=T0)
    kept = take_backup(scoped, catalog, payload(1 << 20), started_at=T0 + DAY)
    catalog.set_hold(kept.backup_id, T0 + 100 * DAY)
    assert storage.exists(f"backups-root/{CLUSTER}/backups/{doomed.backup_id}/backup.json")

    catalog.delete_backup(doomed.backup_id)

    assert not list(storage.list(f"backups-root/{CLUSTER}/backups/{doomed.backup_id}/"))
    assert [m.backup_id for m in catalog.list_backups(include_incomplete=True)] == [kept.backup_id]
    assert {
        info.key.rsplit("/", 1)[-1] for info in scoped.list(catalog.backup_prefix(kept.backup_id))
    } == {
        ARTEFACT,
        "backup.json",
        "job.log",
        "preserve.json",
    }
    with pytest.raises(BackupNotFoundError):
        catalog.delete_backup(doomed.backup_id)
