"""Two backups start at once into an empty prefix: both create the catalog's identity.

The second writer reads no ``cluster.json``, then the first writes it, then the second
lists the prefix to check nobody else uses it. A ``cluster.json`` naming this cluster that
appeared meanwhile is the other writer's: accepted. One naming another cluster is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pytest

from database_backup.catalog import Catalog, ForeignClusterError
from database_backup.catalog.layout import CLUSTER_FILE
from database_backup.storage import ObjectNotFoundError

from .factories import NOW, backup
from .memstore import MemoryStore

CLUSTER = "6f1c0d2e-model/mysql"
IDENTITY_KEY = f"{CLUSTER}/{CLUSTER_FILE}"


class InterleavingStore(MemoryStore):
    """Runs `meanwhile` once, right after the first read of cluster.json found none."""

    def __init__(self, meanwhile: Callable[[MemoryStore], None]) -> None:
        super().__init__()
        self._meanwhile: Callable[[MemoryStore], None] | None = meanwhile

    def get_bytes(self, key: str) -> bytes:
        try:
            return super().get_bytes(key)
        except ObjectNotFoundError:
            if key.endswith(f"/{CLUSTER_FILE}") and self._meanwhile is not None:
                meanwhile, self._meanwhile = self._meanwhile, None
                meanwhile(self)  # the other writer runs between this read and what follows
            raise


def first_writer(store: MemoryStore) -> None:
    """The other backup of the same cluster: its ensure_cluster runs to the end."""
    Catalog(store, CLUSTER, clock=lambda: NOW).ensure_cluster()


def test_identity_written_meanwhile_by_the_same_cluster_is_accepted():
    # Arrange
    store = InterleavingStore(first_writer)
    second = Catalog(store, CLUSTER, clock=lambda: NOW)

    # Act
    second.ensure_cluster()
    meta = backup("20260101T000000Z-aaaaaa", 1)
    store.put_bytes(second.artefact_key(meta.backup_id, meta.artefacts[0]), b"x" * 10)
    second.write_metadata(replace(meta, stored_size=10))

    # Assert
    identity = json.loads(store.get_bytes(IDENTITY_KEY))
    assert identity["cluster-id"] == CLUSTER
    assert store.writes.count(IDENTITY_KEY) == 1  # the first writer's identity is kept
    assert [b.backup_id for b in second.list_backups()] == [meta.backup_id]


def test_identity_of_another_cluster_written_meanwhile_is_refused():
    # Arrange
    def intruder(store: MemoryStore) -> None:
        document = {"format-version": 1, "cluster-id": "other-model/postgres"}
        store.put_bytes(IDENTITY_KEY, json.dumps(document).encode())

    store = InterleavingStore(intruder)
    second = Catalog(store, CLUSTER, clock=lambda: NOW)

    # Act / Assert
    with pytest.raises(ForeignClusterError, match="belongs to cluster 'other-model/postgres'"):
        second.ensure_cluster()
    assert json.loads(store.get_bytes(IDENTITY_KEY))["cluster-id"] == "other-model/postgres"


def test_other_objects_written_meanwhile_are_still_refused():
    # Arrange
    def intruder(store: MemoryStore) -> None:
        store.put_bytes(f"{CLUSTER}/dump.sql", b"not a catalog")

    second = Catalog(InterleavingStore(intruder), CLUSTER, clock=lambda: NOW)

    # Act / Assert
    with pytest.raises(ForeignClusterError, match="not part of this cluster's catalog"):
        second.ensure_cluster()
