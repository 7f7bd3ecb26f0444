"""Catalog logic over an in-memory store (the same behaviour runs on real S3 in tests/workload)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from database_backup.catalog import (
    BackupHeldError,
    BackupMetadata,
    BackupNotFoundError,
    Catalog,
    CatalogError,
    ForeignClusterError,
    IncompleteBackup,
    MetadataError,
    RetentionPolicy,
    find_clusters,
)

from .factories import NOW, backup
from .memstore import MemoryStore

CLUSTER = "6f1c0d2e-model/mysql"
DAY = timedelta(days=1)


def make_catalog(store: MemoryStore | None = None, cluster: str = CLUSTER) -> Catalog:
    return Catalog(store or MemoryStore(), cluster, clock=lambda: NOW)


def store_backup(catalog: Catalog, meta: BackupMetadata, payload: bytes = b"x" * 1000) -> None:
    catalog.ensure_cluster()
    catalog.storage.put_bytes(catalog.artefact_key(meta.backup_id, meta.artefacts[0]), payload)
    catalog.write_metadata(replace(meta, stored_size=len(payload)))


def test_layout_keys() -> None:
    catalog = make_catalog()

    assert catalog.backup_prefix("b1") == f"{CLUSTER}/backups/b1/"
    assert (
        catalog.artefact_key("b1", "data.xbstream.zst")
        == f"{CLUSTER}/backups/b1/data.xbstream.zst"
    )
    for bad in ("../x", "a/b", "", " x"):
        with pytest.raises(ValueError, match="invalid"):
            catalog.backup_prefix(bad)
    for bad_cluster in ("", "/abs", "a//b", "a/../b", "a b"):
        with pytest.raises(ValueError, match="invalid cluster id"):
            Catalog(MemoryStore(), bad_cluster)


def test_ensure_cluster_writes_identity_once_and_accepts_it_later() -> None:
    store = MemoryStore()
    make_catalog(store).ensure_cluster()
    make_catalog(store).ensure_cluster()

    document = json.loads(store.get_bytes(f"{CLUSTER}/cluster.json"))
    assert document["cluster-id"] == CLUSTER
    assert document["created-at"] == "2026-11-22T12:00:00Z"
    assert store.writes.count(f"{CLUSTER}/cluster.json") == 1


@pytest.mark.parametrize(
    ("existing_key", "existing_body", "match"),
    [
        (f"{CLUSTER}/cluster.json", {"cluster-id": "other-model/mysql"}, "belongs to cluster"),
        (f"{CLUSTER}/cluster.json", [], "belongs to cluster"),
        ("6f1c0d2e-model/cluster.json", {"cluster-id": "6f1c0d2e-model"}, "inside the catalog"),
        (f"{CLUSTER}/sub/cluster.json", {"cluster-id": f"{CLUSTER}/sub"}, "not part of"),
        (f"{CLUSTER}/notes.txt", "hello", "not part of"),
    ],
)
def test_foreign_prefixes_are_refused(
    existing_key: str, existing_body: object, match: str
) -> None:
    store = MemoryStore()
    store.put_bytes(existing_key, json.dumps(existing_body).encode())
    catalog = make_catalog(store)

    with pytest.raises(ForeignClusterError, match=match):
        catalog.ensure_cluster()
    assert store.writes == [existing_key]  # nothing written by the refused catalog


def test_reading_a_foreign_catalog_is_refused() -> None:
    store = MemoryStore()
    make_catalog(store, "other/app").ensure_cluster()
    store.put_bytes(f"{CLUSTER}/cluster.json", store.get_bytes("other/app/cluster.json"))

    with pytest.raises(ForeignClusterError):
        make_catalog(store).list_backups()


def test_a_catalog_without_cluster_json_but_our_layout_is_adopted() -> None:
    store = MemoryStore()
    store.put_bytes(f"{CLUSTER}/backups/b1/job.log", b"log")

    make_catalog(store).ensure_cluster()

    assert store.exists(f"{CLUSTER}/cluster.json")


def test_metadata_is_written_last_and_read_back() -> None:
    catalog = make_catalog()
    store = catalog.storage
    assert isinstance(store, MemoryStore)
    meta = backup("b1", 1)

    store_backup(catalog, meta)
    catalog.write_log("b1", "it went well")

    of_b1 = [key for key in store.writes if "/backups/b1/" in key]
    assert of_b1[-2].endswith("/b1/backup.json")  # then only the log (and the index, a cache)
    assert store.writes.index(f"{CLUSTER}/backups/b1/data.xbstream.zst") < store.writes.index(
        f"{CLUSTER}/backups/b1/backup.json"
    )
    assert catalog.read_metadata("b1") == replace(meta, stored_size=1000)


def test_write_metadata_refuses_missing_or_short_artefacts() -> None:
    catalog = make_catalog()
    catalog.ensure_cluster()

    with pytest.raises(CatalogError, match="not in storage"):
        catalog.write_metadata(backup("b1", 1))
    catalog.storage.put_bytes(catalog.artefact_key("b1", "data.xbstream.zst"), b"x" * 999)
    with pytest.raises(CatalogError, match="999 bytes but 1000"):
        catalog.write_metadata(backup("b1", 1))
    with pytest.raises(BackupNotFoundError):
        catalog.read_metadata("b1")


def test_write_metadata_refuses_an_incremental_without_its_parent() -> None:
    catalog = make_catalog()

    with pytest.raises(CatalogError, match="parent"):
        store_backup(catalog, backup("i1", 1, kind="incremental", parent="f0"))
    store_backup(catalog, backup("f0", 2))
    store_backup(catalog, backup("i1", 1, kind="incremental", parent="f0"))
    assert catalog.read_metadata("i1").parent_id == "f0"


def test_listing_sorts_by_time_and_separates_incomplete_backups() -> None:
    catalog = make_catalog()
    store_backup(catalog, backup("newer", 1))
    store_backup(catalog, backup("older", 3))
    catalog.storage.put_bytes(catalog.artefact_key("partial", "data.xbstream.zst"), b"half")
    catalog.storage.put_bytes(catalog.artefact_key("broken", "data.xbstream.zst"), b"x")
    catalog.storage.put_bytes(catalog.artefact_key("broken", "backup.json"), b"{not json")

    complete = catalog.list_backups()
    everything = catalog.list_backups(include_incomplete=True)

    assert [entry.backup_id for entry in complete] == ["older", "newer"]
    incomplete = {e.backup_id: e for e in everything if isinstance(e, IncompleteBackup)}
    assert set(incomplete) == {"partial", "broken"}
    assert incomplete["partial"].size == 4
    assert "backup.json" in incomplete["partial"].reason
    assert "not valid JSON" in incomplete["broken"].reason
    assert incomplete["partial"].to_dict()["status"] == "incomplete"


def test_a_backup_whose_artefact_vanished_is_listed_as_incomplete() -> None:
    catalog = make_catalog()
    store_backup(catalog, backup("b1", 1))
    catalog.storage.delete(catalog.artefact_key("b1", "data.xbstream.zst"))

    assert catalog.list_backups() == []
    (entry,) = catalog.list_backups(include_incomplete=True)
    assert isinstance(entry, IncompleteBackup)
    assert "missing" in entry.reason


def test_holds_round_trip_and_cancel() -> None:
    catalog = make_catalog()
    store_backup(catalog, backup("b1", 2))
    store_backup(catalog, backup("b2", 1))

    catalog.set_hold("b1", NOW + 3 * DAY)
    catalog.set_hold("b2", NOW + DAY)
    catalog.set_hold("b2", None)

    assert catalog.get_hold("b1") == NOW + 3 * DAY
    assert catalog.get_hold("b2") is None
    assert catalog.holds() == {"b1": NOW + 3 * DAY}
    document = json.loads(catalog.storage.get_bytes(catalog.artefact_key("b2", "preserve.json")))
    assert document["preserve-until"] is None
    with pytest.raises(BackupNotFoundError):
        catalog.set_hold("missing", NOW + DAY)
    with pytest.raises(ValueError, match="timezone"):
        catalog.set_hold("b1", NOW.replace(tzinfo=None))


def test_corrupt_hold_is_an_error_not_a_silent_release() -> None:
    catalog = make_catalog()
    store_backup(catalog, backup("b1", 2))
    catalog.storage.put_bytes(catalog.artefact_key("b1", "preserve.json"), b'{"x": 1}')

    with pytest.raises(MetadataError, match="preserve-until"):
        catalog.holds()


def test_delete_removes_backup_json_first_and_everything() -> None:
    catalog = make_catalog()
    store = catalog.storage
    assert isinstance(store, MemoryStore)
    store_backup(catalog, backup("b1", 1))
    catalog.write_log("b1", "log")

    catalog.delete_backup("b1")

    assert store.deletes[0] == f"{CLUSTER}/backups/b1/backup.json"
    assert not list(store.list(catalog.backup_prefix("b1")))
    with pytest.raises(BackupNotFoundError):
        catalog.delete_backup("b1")


def test_delete_refuses_held_backups_and_parents_unless_forced() -> None:
    catalog = make_catalog()
    store_backup(catalog, backup("f0", 3))
    store_backup(catalog, backup("i1", 2, kind="incremental", parent="f0"))
    store_backup(catalog, backup("held", 1))
    catalog.set_hold("held", NOW + DAY)

    with pytest.raises(BackupHeldError, match="held until"):
        catalog.delete_backup("held")
    with pytest.raises(BackupHeldError, match="parent of i1"):
        catalog.delete_backup("f0")
    catalog.delete_backup("held", force=True)
    assert [entry.backup_id for entry in catalog.list_backups()] == ["f0", "i1"]


def test_purge_applies_retention_and_honours_holds() -> None:
    catalog = make_catalog()
    for day in range(5, 0, -1):
        store_backup(catalog, backup(f"b{5 - day}", day))
    catalog.set_hold("b0", NOW + DAY)

    dry = catalog.purge(RetentionPolicy(max_count=2), dry_run=True)
    assert [d.backup_id for d in dry] == ["b1", "b2"]
    assert len(catalog.list_backups()) == 5

    catalog.purge(RetentionPolicy(max_count=2))
    assert [entry.backup_id for entry in catalog.list_backups()] == ["b0", "b3", "b4"]


# -- discovering the clusters in a location (issue 12: the bucket is the truth) ----------


class DirStore(MemoryStore):
    """A MemoryStore that lists common prefixes, as S3Storage.list_dirs does."""

    def __init__(self) -> None:
        super().__init__()
        self.dir_listings: list[str] = []

    def list_dirs(self, prefix: str = "", *, start_after: str = "") -> list[str]:
        self.dir_listings.append(prefix)
        dirs = {
            prefix + key[len(prefix) :].split("/", 1)[0] + "/"
            for key in self.objects
            if key.startswith(prefix) and "/" in key[len(prefix) :] and key > start_after
        }
        return sorted(dirs)


@pytest.mark.parametrize("store_type", [MemoryStore, DirStore])
def test_find_clusters_lists_every_catalog_and_nothing_else(store_type: type[MemoryStore]) -> None:
    store = store_type()
    for cluster in ("m1/mysql", "m1/mysql-server", "m2/db"):
        store_backup(make_catalog(store, cluster), backup("20261120T010000Z-aaaa", 1))
    store.put_bytes("m1/notes/readme.txt", b"not a catalog")
    store.put_bytes("loose.txt", b"not a catalog")
    assert find_clusters(store) == ["m1/mysql", "m1/mysql-server", "m2/db"]


def test_find_clusters_walks_two_levels_of_common_prefixes() -> None:
    store = DirStore()
    store_backup(make_catalog(store, "m1/mysql"), backup("20261120T010000Z-aaaa", 1))
    find_clusters(store)
    assert store.dir_listings == ["", "m1/"]


@pytest.mark.parametrize("store_type", [MemoryStore, DirStore])
def test_find_clusters_is_bounded(store_type: type[MemoryStore]) -> None:
    store = store_type()
    for n in range(4):
        make_catalog(store, f"m{n}/db").ensure_cluster()
    with pytest.raises(CatalogError, match="cluster=<model-uuid>/<application>"):
        find_clusters(store, limit=3)
    assert len(find_clusters(store, limit=8)) == 4
