"""Binlog retention reads only what it needs: one listing, the timelines, no index entry."""

from __future__ import annotations

from collections.abc import Iterator

from database_backup.catalog import Catalog, RetentionPolicy
from database_backup.catalog.binlogs import BinlogCatalog, purge_with_binlogs
from database_backup.storage import ObjectInfo
from tests.unit.catalog.memstore import MemoryStore
from tests.unit.catalog.test_binlogs import at, backup, entry


class CountingStore(MemoryStore):
    """Counts the requests a catalog makes (GETs by key, listings)."""

    def __init__(self) -> None:
        super().__init__()
        self.gets: list[str] = []
        self.listings = 0

    def get_bytes(self, key: str) -> bytes:
        self.gets.append(key)
        return super().get_bytes(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self.listings += 1
        return super().list(prefix)


def _shipped(store: CountingStore, catalog: Catalog, count: int) -> tuple[BinlogCatalog, str]:
    index = BinlogCatalog(catalog)
    timeline = index.create_timeline(now=at(0)).timeline_id
    for number in range(1, count + 1):
        item = entry(timeline, number, number * 10, number * 10 + 9)
        store.put_bytes(index.object_key(timeline, item.object_name), b"data")
        index.write_entry(item)
    return index, timeline


def test_binlog_purge_reads_no_index_entry_and_lists_once():
    store = CountingStore()
    catalog = Catalog(store, "m/app")
    index, timeline = _shipped(store, catalog, 40)
    store.gets.clear()
    store.listings = 0
    doomed = index.purge([backup("b", 305, "bin.000030")])
    assert [b.name for b in doomed] == [f"bin.{n:06d}" for n in range(1, 30)]
    print(f"\n40 binlogs, 29 purged: {len(store.gets)} GET(s), {store.listings} listing(s)")
    assert store.gets == [index.timeline_prefix(timeline) + "timeline.json"]
    assert store.listings == 1


def test_binlog_purge_deletes_a_cut_shipment_and_spares_unknown_files():
    store = CountingStore()
    catalog = Catalog(store, "m/app")
    index, timeline = _shipped(store, catalog, 3)
    prefix = index.timeline_prefix(timeline)
    store.put_bytes(prefix + "bin.000000.zst", b"cut short, no index entry")
    store.put_bytes(prefix + "notes.txt", b"not a binlog")
    index.purge([backup("b", 25, "bin.000002")])
    left = sorted(key[len(prefix) :] for key in store.objects if key.startswith(prefix))
    assert left == [
        "bin.000002.json",
        "bin.000002.zst",
        "bin.000003.json",
        "bin.000003.zst",
        "notes.txt",
        "timeline.json",
    ]


def test_retention_with_binlogs_lists_the_backups_once():
    store = CountingStore()
    catalog = Catalog(store, "m/app")
    _shipped(store, catalog, 4)
    for meta in (backup("old", 15, "bin.000001"), backup("new", 35, "bin.000003")):
        store.put_bytes(catalog.artefact_key(meta.backup_id, "data.xbstream"), b"data")
        catalog.write_metadata(meta)
    catalog.reindex()
    store.gets.clear()
    decisions, binlogs = purge_with_binlogs(catalog, RetentionPolicy(max_count=1))
    assert [d.backup_id for d in decisions] == ["old"]
    assert [b.name for b in binlogs] == ["bin.000001", "bin.000002"]
    metadata_reads = [key for key in store.gets if key.endswith("/backup.json")]
    index_reads = [key for key in store.gets if key == "m/app/index.json"]
    assert metadata_reads == []  # the backups come from the index, read once for both passes
    assert len(index_reads) == 3  # read once; updated once (read, write, read back)
