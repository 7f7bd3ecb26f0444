"""The binlog index (timelines, entries) and binlog retention, on an in-memory store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from database_backup.catalog import BackupMetadata, Catalog, CatalogError, RetentionPolicy
from database_backup.catalog.binlogs import (
    BinlogCatalog,
    BinlogEntry,
    Timeline,
    binlog_sequence,
    purge_with_binlogs,
    select_binlogs_for_deletion,
    timeline_at,
)
from tests.unit.catalog.factories import SHA
from tests.unit.catalog.memstore import MemoryStore

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def entry(timeline: str, number: int, first: float, last: float) -> BinlogEntry:
    return BinlogEntry(
        name=f"bin.{number:06d}",
        timeline=timeline,
        object_name=f"bin.{number:06d}.zst",
        raw_size=100,
        stored_size=4,
        sha256=SHA,
        compression="zstd",
        encrypted=False,
        created_at=at(first),
        first_event_at=at(first),
        last_event_at=at(last),
    )


def backup(backup_id: str, started: float, binlog_file: str) -> BackupMetadata:
    return BackupMetadata(
        backup_id=backup_id,
        kind="full",
        started_at=at(started),
        finished_at=at(started + 1),
        artefacts=["data.xbstream"],
        stored_size=4,
        sha256=SHA,
        compression="none",
        encrypted=False,
        flavour="mariadb",
        server_version="10.11.6",
        binlog_file=binlog_file,
        binlog_position=400,
        to_lsn=1,
    )


def test_timelines_entries_and_their_order():
    store = MemoryStore()
    index = BinlogCatalog(Catalog(store, "m/app"))
    assert index.current_timeline() is None
    first = index.create_timeline(now=at(0), server_id=1, reason="first shipment")
    second = index.create_timeline(now=at(30), parent=first.timeline_id, fork_backup="b1",
                                   fork_target=at(20))  # fmt: skip
    assert [t.timeline_id for t in index.timelines()] == [first.timeline_id, second.timeline_id]
    assert index.current_timeline() == second
    with pytest.raises(CatalogError, match="check the clock"):
        index.create_timeline(now=at(10))

    for number in (2, 10, 1):
        item = entry(first.timeline_id, number, number, number + 1)
        with pytest.raises(CatalogError, match="not in storage"):
            index.write_entry(item)
        store.put_bytes(index.object_key(first.timeline_id, item.object_name), b"data")
        index.write_entry(item)
    # an entry whose object vanished is not listed (it could not be replayed)
    store.delete(index.object_key(first.timeline_id, "bin.000002.zst"))
    assert [e.name for e in index.entries(first.timeline_id)] == ["bin.000001", "bin.000010"]
    assert index.shipped_names(first.timeline_id) == {"bin.000001", "bin.000002", "bin.000010"}
    assert index.entries(second.timeline_id) == []
    loaded = index.entries(first.timeline_id)[0]
    assert loaded == entry(first.timeline_id, 1, 1, 2)


def test_write_entry_checks_the_stored_size():
    store = MemoryStore()
    index = BinlogCatalog(Catalog(store, "m/app"))
    timeline = index.create_timeline(now=at(0))
    item = entry(timeline.timeline_id, 1, 0, 1)
    store.put_bytes(index.object_key(timeline.timeline_id, item.object_name), b"12345")
    with pytest.raises(CatalogError, match="holds 5 bytes, 4 were written"):
        index.write_entry(item)


def test_timeline_at_and_sequence():
    timelines = [Timeline("a", at(0)), Timeline("b", at(60))]
    assert timeline_at(at(-5), timelines) == timelines[0]  # before the first shipment
    assert timeline_at(at(59), timelines) == timelines[0]
    assert timeline_at(at(60), timelines) == timelines[1]
    assert timeline_at(at(0), []) is None
    assert binlog_sequence("mysql-bin.000042") == 42
    with pytest.raises(ValueError, match="not a binlog file name"):
        binlog_sequence("bin.index")


def _history() -> tuple[list[Timeline], dict[str, list[BinlogEntry]]]:
    timelines = [
        Timeline("t1", at(0)),
        Timeline("t2", at(100), parent="t1", fork_backup="b1", fork_target=at(50)),
    ]
    entries = {
        "t1": [entry("t1", n, n * 10, n * 10 + 9) for n in range(1, 6)],
        "t2": [entry("t2", n, 100 + n * 10, 109 + n * 10) for n in range(1, 4)],
    }
    return timelines, entries


def _names(doomed: list[BinlogEntry]) -> list[str]:
    return [f"{e.timeline}/{e.name}" for e in doomed]


def test_retention_keeps_what_kept_backups_need():
    timelines, entries = _history()
    b1 = backup("b1", 25, "bin.000003")  # on t1, and the fork point of t2
    b2 = backup("b2", 125, "bin.000002")  # on t2
    assert _names(select_binlogs_for_deletion([b1, b2], timelines, entries)) == [
        "t1/bin.000001",
        "t1/bin.000002",
    ]
    # b1 gone: t1 is needed by nobody; t2 only from b2's file on
    assert _names(select_binlogs_for_deletion([b2], timelines, entries)) == [
        *(f"t1/bin.{n:06d}" for n in range(1, 6)),
        "t2/bin.000001",
    ]
    # no backups at all: the current timeline is kept whole, older ones go
    assert _names(select_binlogs_for_deletion([], timelines, entries)) == [
        f"t1/bin.{n:06d}" for n in range(1, 6)
    ]
    # a logical backup anchors nothing
    logical = backup("lg", 25, "bin.000003")
    logical.kind = "logical"
    assert len(select_binlogs_for_deletion([logical], timelines, entries)) == 5


def test_purge_deletes_entry_then_object():
    store = MemoryStore()
    catalog = Catalog(store, "m/app")
    index = BinlogCatalog(catalog)
    timeline = index.create_timeline(now=at(0))
    for number in (1, 2, 3):
        item = entry(timeline.timeline_id, number, number, number + 1)
        store.put_bytes(index.object_key(timeline.timeline_id, item.object_name), b"data")
        index.write_entry(item)
    keeper = backup("b", 1, "bin.000002")
    assert [e.name for e in index.purge([keeper], dry_run=True)] == ["bin.000001"]
    assert len(index.entries(timeline.timeline_id)) == 3
    index.purge([keeper])
    assert [e.name for e in index.entries(timeline.timeline_id)] == ["bin.000002", "bin.000003"]
    entry_key = index.entry_key(timeline.timeline_id, "bin.000001")
    object_key = index.object_key(timeline.timeline_id, "bin.000001.zst")
    assert store.deletes.index(entry_key) < store.deletes.index(object_key)


def test_backup_retention_then_binlog_retention():
    store = MemoryStore()
    catalog = Catalog(store, "m/app")
    index = BinlogCatalog(catalog)
    timeline = index.create_timeline(now=at(0))
    for number in range(1, 5):
        item = entry(timeline.timeline_id, number, number * 10, number * 10 + 9)
        store.put_bytes(index.object_key(timeline.timeline_id, item.object_name), b"data")
        index.write_entry(item)
    for meta in (backup("old", 15, "bin.000001"), backup("new", 35, "bin.000003")):
        store.put_bytes(catalog.artefact_key(meta.backup_id, "data.xbstream"), b"data")
        catalog.write_metadata(meta)

    decisions, binlogs = purge_with_binlogs(catalog, RetentionPolicy(max_count=1), dry_run=True)
    assert [d.backup_id for d in decisions] == ["old"]
    assert [e.name for e in binlogs] == ["bin.000001", "bin.000002"]
    assert len(index.entries(timeline.timeline_id)) == 4  # a dry run changes nothing
    purge_with_binlogs(catalog, RetentionPolicy(max_count=1))
    assert [e.name for e in index.entries(timeline.timeline_id)] == ["bin.000003", "bin.000004"]
    assert [b.backup_id for b in catalog.list_backups()] == ["new"]
