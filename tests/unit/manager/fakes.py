"""An in-memory S3 for the manager's unit tests (the workload tests use a real RGW)."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from backup_manager.locations import Location
from database_backup.catalog import BackupMetadata, Catalog
from database_backup.storage import AccessDeniedError
from tests.unit.catalog.memstore import Info, MemoryStore

NOW = datetime.now(timezone.utc).replace(microsecond=0)
ARTEFACT = "data.xbstream.zst"  #: the one artefact of a seeded backup


class FakeBucket(MemoryStore):
    """A MemoryStore with the rest of S3Storage's interface the manager uses."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.denied = False

    def _guard(self) -> None:
        if self.denied:
            raise AccessDeniedError(
                f"check access to bucket {self.name!r} failed: S3 does not know the access "
                "key (InvalidAccessKeyId): check the access key"
            )

    def check(self) -> None:
        self._guard()

    def list(self, prefix: str = "") -> Iterator[Info]:
        self._guard()
        return super().list(prefix)

    def get_bytes(self, key: str) -> bytes:
        self._guard()
        return super().get_bytes(key)

    def open_stream(self, key: str) -> io.BytesIO:
        return io.BytesIO(self.get_bytes(key))

    def copy_to(self, dest: FakeBucket, src_key: str, dst_key: str) -> None:
        dest.put_bytes(dst_key, self.get_bytes(src_key))


class FakeS3:
    """Buckets by name; `open` replaces `backup_manager.locations.open_storage`."""

    def __init__(self) -> None:
        self.buckets: dict[str, FakeBucket] = {}

    def bucket(self, name: str) -> FakeBucket:
        return self.buckets.setdefault(name, FakeBucket(name))

    def open(self, location: Location, *, patient: bool = False) -> FakeBucket:
        return self.bucket(location.bucket)


def add_backup(
    store: Any,
    cluster_id: str,
    backup_id: str,
    *,
    hours_ago: float,
    kind: str = "full",
    parent: str | None = None,
    data: bytes = b"backup-bytes",
    encrypted: bool = False,
) -> BackupMetadata:
    """Store an artefact and a complete backup.json, as the provider would."""
    catalog = Catalog(store, cluster_id)
    catalog.ensure_cluster()
    store.put_bytes(catalog.artefact_key(backup_id, ARTEFACT), data)
    meta = provider_metadata(
        backup_id,
        data,
        hours_ago=hours_ago,
        kind=kind,
        parent=parent,
        encrypted=encrypted,
        description=f"test {backup_id}",
    )
    catalog.write_metadata(meta)
    return meta


def provider_metadata(
    backup_id: str,
    data: bytes,
    *,
    hours_ago: float,
    kind: str,
    parent: str | None,
    description: str,
    encrypted: bool = False,
    stored_size: int | None = None,
) -> BackupMetadata:
    """The backup.json the provider writes for one artefact `data` (took 5 minutes)."""
    finished = NOW - timedelta(hours=hours_ago)
    return BackupMetadata(
        backup_id=backup_id,
        kind=kind,
        parent_id=parent,
        started_at=finished - timedelta(minutes=5),
        finished_at=finished,
        artefacts=[ARTEFACT],
        stored_size=len(data) if stored_size is None else stored_size,
        sha256=hashlib.sha256(data).hexdigest(),
        compression="zstd",
        encrypted=encrypted,
        flavour="mariadb",
        server_version="10.11.6",
        description=description,
    )


def add_binlog(store: Any, cluster_id: str, name: str = "bin.000001") -> None:
    """A shipped binary log under the cluster's binlogs/ prefix."""
    store.put_bytes(f"{cluster_id}/binlogs/{name}", b"binlog")
    store.put_bytes(f"{cluster_id}/binlogs/index.json", json.dumps([name]).encode())
