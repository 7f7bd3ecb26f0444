"""The one storage protocol: S3Storage and the in-memory store are both `ObjectStore`s."""

from __future__ import annotations

import pytest

from database_backup import catalog as catalog_package
from database_backup.catalog import Catalog
from database_backup.storage import (
    ObjectNotFoundError,
    ObjectStore,
    Readable,
    S3Storage,
    StorageError,
    UploadResult,
    copy_object,
)
from tests.unit.catalog.memstore import MemoryStore

# Checked by pyright: both implement every method of the protocol.
IMPLEMENTATIONS: tuple[type[ObjectStore], ...] = (S3Storage, MemoryStore)


def test_the_catalog_takes_any_object_store():
    store: ObjectStore = MemoryStore()
    catalog = Catalog(store, "model/app")
    catalog.ensure_cluster()
    assert store.exists("model/app/cluster.json")


def test_copy_object_streams_between_stores():
    source, dest = MemoryStore(), MemoryStore()
    source.put_bytes("a/data", b"x" * 3_000_000)
    result = copy_object(source, "a/data", dest, "b/data")
    assert (result.key, result.size) == ("b/data", 3_000_000)
    assert dest.get_bytes("b/data") == b"x" * 3_000_000


def test_copy_object_of_a_missing_key_stores_nothing():
    source, dest = MemoryStore(), MemoryStore()
    with pytest.raises(ObjectNotFoundError):
        copy_object(source, "absent", dest, "b/data")
    assert dest.objects == {}


class _ShortStore(MemoryStore):
    """Stores one byte less than it read (a broken destination)."""

    def upload_stream(
        self, key: str, source: Readable, *, size_hint: int | None = None
    ) -> UploadResult:
        result = super().upload_stream(key, source, size_hint=size_hint)
        return UploadResult(key=key, size=result.size - 1)


def test_a_short_copy_is_deleted_and_reported():
    source, dest = MemoryStore(), _ShortStore()
    source.put_bytes("a/data", b"12345")
    with pytest.raises(StorageError, match="stored 4 bytes instead of 5; the copy was deleted"):
        copy_object(source, "a/data", dest, "b/data")
    assert not dest.exists("b/data")


def test_the_catalog_reexports_the_storage_protocol():
    assert catalog_package.ObjectStore is ObjectStore
