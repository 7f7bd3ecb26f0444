"""The catalog index: O(1) requests per read, healed from the per-backup files (the truth)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from backup_manager.catalogs import Catalogs
from backup_manager.locations import Location
from database_backup.catalog import Catalog, ForeignClusterError, RetentionPolicy
from database_backup.catalog.documents import dump_document

from .counting import CountingStore
from .factories import NOW, backup
from .memstore import DirMemoryStore, MemoryStore
from .test_store import store_backup

MODEL = "6f1c0d2e-model"
CLUSTER = f"{MODEL}/mysql"
LOCATION = Location("s3-a", "bucket-a", "AK", "SK")
MANY = 2000


def seed(store: MemoryStore, count: int, cluster: str = CLUSTER) -> list[str]:
    """`count` complete backups, hourly, written as the provider writes them (no index)."""
    catalog = Catalog(store, cluster, clock=lambda: NOW)
    catalog.ensure_cluster()
    ids: list[str] = []
    for number in range(count):
        hours = count - number
        meta = replace(
            backup(f"b{number:05d}", hours / 24),
            kind="full" if number % 24 == 0 else "incremental",
            parent_id=None if number % 24 == 0 else ids[-1],
            stored_size=4,
            databases=["shop"],
        )
        store.put_bytes(catalog.artefact_key(meta.backup_id, meta.artefacts[0]), b"data")
        store.put_bytes(
            catalog.backup_prefix(meta.backup_id) + "backup.json", dump_document(meta.to_dict())
        )
        ids.append(meta.backup_id)
    return ids


def manager(store: object) -> Catalogs:
    return Catalogs({"s3-a": LOCATION}, MODEL, opener=lambda _location: store, clock=lambda: NOW)


def test_list_newest_restore_target_and_retention_cost_at_most_3_requests_at_2000() -> None:
    memory = DirMemoryStore()
    ids = seed(memory, MANY)
    Catalog(memory, CLUSTER, clock=lambda: NOW).reindex()
    store = CountingStore(memory)
    catalogs = manager(store)
    costs: dict[str, int] = {}

    rows = catalogs.rows(["mysql"])
    costs["list"] = store.requests
    store.reset()
    newest = catalogs.newest("mysql", LOCATION)
    costs["newest"] = store.requests
    store.reset()
    target = catalogs.restore_target("mysql", LOCATION, NOW - timedelta(hours=100))
    costs["restore-target"] = store.requests
    store.reset()
    doomed = Catalog(store, CLUSTER, clock=lambda: NOW).purge(
        RetentionPolicy(max_count=500), dry_run=True
    )
    costs["retention"] = store.requests

    assert len(rows) == MANY
    assert newest is not None
    assert newest.backup_id == ids[-1]
    assert target.finished_at <= NOW - timedelta(hours=100)
    assert doomed
    assert doomed[0].backup_id == ids[0]
    assert costs == {"list": 2, "newest": 2, "restore-target": 2, "retention": 2}


def test_a_missing_index_is_rebuilt_by_the_first_read_then_reads_are_cheap() -> None:
    memory = DirMemoryStore()
    ids = seed(memory, 30)
    store = CountingStore(memory)
    catalog = Catalog(store, CLUSTER, clock=lambda: NOW)

    first = catalog.read_index()
    store.reset()
    second = Catalog(store, CLUSTER, clock=lambda: NOW).read_index()

    assert [b.backup_id for b in first.complete] == ids == [b.backup_id for b in second.complete]
    assert store.requests == 2
    stored = json.loads(memory.get_bytes(catalog.index_key))
    assert sorted(stored["backups"]) == ids
    assert "databases" not in stored["backups"][ids[0]]  # summaries, no selection lists


def test_an_unreadable_index_is_rebuilt() -> None:
    memory = MemoryStore()
    ids = seed(memory, 5)
    catalog = Catalog(memory, CLUSTER, clock=lambda: NOW)
    memory.put_bytes(catalog.index_key, b"{not json")

    view = catalog.read_index()

    assert [b.backup_id for b in view.complete] == ids
    assert json.loads(memory.get_bytes(catalog.index_key))["generation"] == 1


def test_a_read_adds_the_backups_the_index_missed_and_rereads_pending_ones() -> None:
    memory = DirMemoryStore()
    ids = seed(memory, 5)
    catalog = Catalog(memory, CLUSTER, clock=lambda: NOW)
    catalog.reindex()
    extra = "b00006"  # written by a writer whose index update was lost
    late = replace(backup(extra, 0.01), stored_size=4)
    memory.put_bytes(catalog.artefact_key(extra, late.artefacts[0]), b"data")
    memory.put_bytes(catalog.backup_prefix(extra) + "backup.json", dump_document(late.to_dict()))
    memory.put_bytes(catalog.artefact_key("b99999", "data.xbstream.zst"), b"partial")

    first = catalog.read_index()
    late_b99999 = replace(backup("b99999", 0.001), stored_size=7)
    memory.put_bytes(
        catalog.backup_prefix("b99999") + "backup.json", dump_document(late_b99999.to_dict())
    )
    store = CountingStore(memory)
    second = Catalog(store, CLUSTER, clock=lambda: NOW).read_index()

    assert [b.backup_id for b in first.complete] == [*ids, extra]
    assert [b.backup_id for b in first.incomplete] == ["b99999"]
    assert [b.backup_id for b in second.complete] == [*ids, extra, "b99999"]
    assert second.incomplete == ()
    stored = json.loads(memory.get_bytes(catalog.index_key))
    assert sorted(stored["backups"]) == [*ids, extra, "b99999"]
    assert stored["pending"] == []


def test_reindex_drops_what_was_deleted_behind_the_index() -> None:
    memory = DirMemoryStore()
    ids = seed(memory, 5)
    catalog = Catalog(memory, CLUSTER, clock=lambda: NOW)
    catalog.reindex()
    memory.delete_prefix(catalog.backup_prefix(ids[0]))  # by hand, not through the catalog

    assert [b.backup_id for b in catalog.reindex().complete] == ids[1:]
    assert sorted(json.loads(memory.get_bytes(catalog.index_key))["backups"]) == ids[1:]


def test_writers_keep_the_index_current() -> None:
    memory = MemoryStore()
    catalog = Catalog(memory, CLUSTER, clock=lambda: NOW)
    catalog.ensure_cluster()
    catalog.read_index()  # the index exists (writers never start one: see below)
    for backup_id, days in (("b1", 3), ("b2", 2), ("b3", 1)):
        store_backup(catalog, backup(backup_id, days))
    catalog.set_hold("b1", NOW + timedelta(days=3))
    catalog.write_verification(
        "b2", {"backup-id": "b2", "result": "pass", "checked-at": "2026-11-22T10:00:00Z"}
    )
    catalog.delete_backup("b3")

    stored = json.loads(memory.get_bytes(catalog.index_key))["backups"]

    assert sorted(stored) == ["b1", "b2"]
    assert stored["b1"]["preserve-until"].startswith("2026-11-25T12:00:00")
    assert stored["b2"]["verification"]["result"] == "pass"
    catalog.set_hold("b1", None)
    assert "preserve-until" not in json.loads(memory.get_bytes(catalog.index_key))["backups"]["b1"]


class OverwritingStore(MemoryStore):
    """Another writer puts its own (older) index right after our first index write."""

    def __init__(self) -> None:
        super().__init__()
        self.stale: bytes | None = None

    def put_bytes(self, key: str, data: bytes) -> None:
        super().put_bytes(key, data)
        if key.endswith("/index.json") and self.stale is not None:
            stale, self.stale = self.stale, None
            super().put_bytes(key, stale)


def test_an_index_update_overwritten_by_a_concurrent_writer_is_applied_again() -> None:
    store = OverwritingStore()
    catalog = Catalog(store, CLUSTER, clock=lambda: NOW)
    store_backup(catalog, backup("b1", 1))
    catalog.read_index()
    store.stale = store.get_bytes(catalog.index_key)  # the other writer's view: no hold

    catalog.set_hold("b1", NOW + timedelta(days=1))

    stored = json.loads(store.get_bytes(catalog.index_key))
    assert "preserve-until" in stored["backups"]["b1"]


def test_retention_never_deletes_a_backup_held_behind_the_index() -> None:
    memory = MemoryStore()
    catalog = Catalog(memory, CLUSTER, clock=lambda: NOW)
    for backup_id, days in (("b1", 3), ("b2", 2), ("b3", 1)):
        store_backup(catalog, backup(backup_id, days))
    catalog.read_index()
    index = memory.get_bytes(catalog.index_key)
    catalog.set_hold("b1", NOW + timedelta(days=3))
    memory.put_bytes(catalog.index_key, index)  # the hold's index update was lost

    decisions = catalog.purge(RetentionPolicy(max_count=1))

    assert [d.backup_id for d in decisions] == ["b2"]
    assert memory.exists(catalog.backup_prefix("b1") + "backup.json")
    assert "preserve-until" in json.loads(memory.get_bytes(catalog.index_key))["backups"]["b1"]


def test_reindex_restores_what_a_listing_cannot_see() -> None:
    memory = MemoryStore()
    catalog = Catalog(memory, CLUSTER, clock=lambda: NOW)
    store_backup(catalog, backup("b1", 1))
    catalog.read_index()
    index = memory.get_bytes(catalog.index_key)
    catalog.set_hold("b1", NOW + timedelta(days=3))
    memory.put_bytes(catalog.index_key, index)  # lost hold: same ids, so reads trust it

    assert catalog.read_index().holds() == {}
    assert catalog.reindex().holds() == {"b1": NOW + timedelta(days=3)}
    assert catalog.read_index().holds() == {"b1": NOW + timedelta(days=3)}


def test_an_index_naming_another_cluster_is_refused() -> None:
    memory = MemoryStore()
    seed(memory, 2)
    theirs = Catalog(memory, CLUSTER, clock=lambda: NOW)
    theirs.reindex()
    memory.put_bytes(f"{MODEL}/other/index.json", memory.get_bytes(theirs.index_key))

    with pytest.raises(ForeignClusterError, match="belongs to cluster"):
        Catalog(memory, f"{MODEL}/other").read_index()


def test_a_writer_never_starts_an_index_over_backups_it_does_not_know() -> None:
    memory = DirMemoryStore()
    ids = seed(memory, 5)  # written before the index existed (an upgrade)
    catalog = Catalog(memory, CLUSTER, clock=lambda: NOW)

    store_backup(catalog, replace(backup("b00009", 0.01), stored_size=1000))

    assert [b.backup_id for b in catalog.read_index().complete] == [*ids, "b00009"]


def test_a_backup_in_progress_costs_a_read_but_no_index_write() -> None:
    memory = DirMemoryStore()
    seed(memory, 3)
    catalog = Catalog(memory, CLUSTER, clock=lambda: NOW)
    catalog.read_index()
    memory.put_bytes(catalog.artefact_key("b99999", "data.xbstream.zst"), b"partial")
    catalog.read_index()  # sees it: now pending
    store = CountingStore(memory)

    view = Catalog(store, CLUSTER, clock=lambda: NOW).read_index()

    assert [b.backup_id for b in view.incomplete] == ["b99999"]
    assert store.counts == {"get": 1, "list": 2}  # the index, the new ids, the pending prefix


def test_a_hold_the_index_missed_also_keeps_the_parents_of_the_held_backup() -> None:
    memory = DirMemoryStore()
    catalog = Catalog(memory, CLUSTER, clock=lambda: NOW)
    catalog.ensure_cluster()
    catalog.read_index()
    store_backup(catalog, backup("b1", 4))
    store_backup(catalog, backup("b2", 3, kind="incremental", parent="b1"))
    store_backup(catalog, backup("b3", 2))
    store_backup(catalog, backup("b4", 1))
    index = memory.get_bytes(catalog.index_key)
    catalog.set_hold("b2", NOW + timedelta(days=3))
    memory.put_bytes(catalog.index_key, index)  # the hold's index update was lost

    decisions = catalog.purge(RetentionPolicy(max_count=2))

    assert decisions == []
    assert [b.backup_id for b in catalog.list_backups()] == ["b1", "b2", "b3", "b4"]


def test_reading_a_prefix_without_a_catalog_writes_nothing_there() -> None:
    memory = DirMemoryStore()

    view = Catalog(memory, f"{MODEL}/typo", clock=lambda: NOW).read_index()

    assert view.entries(include_incomplete=True) == []
    assert memory.objects == {}
