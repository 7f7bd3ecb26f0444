"""Two backups of one cluster start at once into an empty prefix on real S3 (Ceph RGW).

The second backup's read of ``cluster.json`` finds none; the first then creates it; the
second's check that nobody else uses the prefix lists it. Both backups must complete.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from database_backup.catalog import BackupMetadata, Catalog, new_backup_id
from database_backup.storage import ObjectNotFoundError, S3Config, S3Storage

CLUSTER = "5d0e7a31-model/mariadb"
IDENTITY_KEY = f"{CLUSTER}/cluster.json"
ARTEFACT = "data.sql.zst"
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=timezone.utc)


class LateStorage(S3Storage):
    """Real S3; once its read of cluster.json found none, waits until another backup wrote it."""

    def __init__(
        self, config: S3Config, missed: threading.Event, written: threading.Event
    ) -> None:
        super().__init__(config)
        self._missed, self._written = missed, written

    def get_bytes(self, key: str) -> bytes:
        try:
            return super().get_bytes(key)
        except ObjectNotFoundError:
            if key == IDENTITY_KEY and not self._missed.is_set():
                self._missed.set()
                assert self._written.wait(60), "the first backup never wrote its cluster.json"
            raise


def backup(
    storage: S3Storage,
    started_at: datetime,
    *,
    after: threading.Event | None = None,
    then: threading.Event | None = None,
) -> str:
    """A small backup as the engine stores it: identity, artefact, then backup.json."""
    if after is not None:
        assert after.wait(60), "the second backup never read cluster.json"
    catalog = Catalog(storage, CLUSTER)
    catalog.ensure_cluster()
    if then is not None:
        then.set()
    backup_id = new_backup_id(started_at)
    data = b"-- dump\n" * 1000
    storage.put_bytes(catalog.artefact_key(backup_id, ARTEFACT), data)
    catalog.write_metadata(
        BackupMetadata(
            backup_id=backup_id,
            kind="logical",
            job_id=f"job-{backup_id}",
            started_at=started_at,
            finished_at=started_at + timedelta(minutes=1),
            artefacts=[ARTEFACT],
            stored_size=len(data),
            raw_size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            compression="zstd",
            encrypted=False,
            flavour="mariadb",
            server_version="10.11.6",
        )
    )
    return backup_id


def test_two_backups_started_at_once_into_an_empty_prefix_both_complete(
    s3_config: S3Config, storage: S3Storage
) -> None:
    # Arrange
    missed, written = threading.Event(), threading.Event()

    # Act
    with LateStorage(s3_config, missed, written) as late, ThreadPoolExecutor(2) as pool:
        second = pool.submit(backup, late, T0 + timedelta(seconds=1))
        first = pool.submit(backup, storage, T0, after=missed, then=written)
        ids = {first.result(timeout=120), second.result(timeout=120)}

    # Assert
    listed = {meta.backup_id for meta in Catalog(storage, CLUSTER).list_backups()}
    assert listed == ids
    assert storage.get_bytes(IDENTITY_KEY).count(CLUSTER.encode()) == 1
