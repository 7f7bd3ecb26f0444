"""The engine's catalog reads come from the cluster's index, not a scan of every backup.

Each path is run on a catalog of many backups whose index is current, and the requests it
makes are counted: no `backup.json` is read but the ones the path needs in full.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import timedelta
from typing import cast

import pytest

from database_backup.catalog import BackupMetadata, Catalog
from database_backup.catalog.binlogs import BinlogCatalog, BinlogEntry, Timeline
from database_backup.catalog.documents import dump_document
from database_backup.cli import binlogs as binlogs_cli
from database_backup.cli import listing as listing_cli
from database_backup.cli.state import StateFile
from database_backup.contract import EngineSpec
from database_backup.mysql.physical import incremental
from database_backup.mysql.pitr.plan import plan_recovery
from tests.unit.catalog.counting import CountingStore
from tests.unit.catalog.factories import NOW, SHA, backup
from tests.unit.catalog.memstore import DirMemoryStore

CLUSTER = "model/mysql"
MANY = 300
TIMELINE = "tl-0"
METADATA = "/backup.json"


class KeyedCounts(CountingStore):
    """A CountingStore that also notes the key of every GET."""

    def __init__(self, inner: DirMemoryStore) -> None:
        super().__init__(inner)
        self.got: list[str] = []

    def get_bytes(self, key: str) -> bytes:
        self.got.append(key)
        return super().get_bytes(key)

    def metadata_gets(self) -> list[str]:
        return [key.rsplit("/", 2)[-2] for key in self.got if key.endswith(METADATA)]


def seed(count: int = MANY) -> tuple[DirMemoryStore, list[BackupMetadata]]:
    """`count` physical backups hourly (a full one a day, incrementals between).

    The newest backup is a logical one; one timeline's binlog covers them all; the index
    is current.
    """
    store = DirMemoryStore()
    catalog = Catalog(store, CLUSTER, clock=lambda: NOW)
    catalog.ensure_cluster()
    made: list[BackupMetadata] = []
    for number in range(count):
        full = number % 24 == 0
        meta = replace(
            backup(f"b{number:05d}", (count - number) / 24),
            kind="full" if full else "incremental",
            parent_id=None if full else made[-1].backup_id,
            binlog_file="bin.000001",
            binlog_position=400 + number,
            from_lsn=0 if full else 100 * number,
            to_lsn=100 * (number + 1),
        )
        made.append(meta)
    made.append(replace(backup("b99999", 0.01), kind="logical", databases=["shop"], to_lsn=None))
    for meta in made:
        store.put_bytes(catalog.artefact_key(meta.backup_id, meta.artefacts[0]), b"data")
        store.put_bytes(
            catalog.backup_prefix(meta.backup_id) + "backup.json", dump_document(meta.to_dict())
        )
    binlogs = BinlogCatalog(catalog)
    binlogs.write_timeline(Timeline(TIMELINE, NOW - timedelta(days=30)))
    entry = BinlogEntry(
        name="bin.000001", timeline=TIMELINE, object_name="bin.000001", raw_size=4,
        stored_size=4, sha256=SHA, compression="none", encrypted=False,
        created_at=NOW - timedelta(days=30), first_event_at=NOW - timedelta(days=30),
        last_event_at=NOW,
    )  # fmt: skip
    store.put_bytes(binlogs.object_key(TIMELINE, "bin.000001"), b"data")
    binlogs.write_entry(entry)
    catalog.reindex()
    return store, made


@pytest.fixture(scope="module")
def seeded() -> tuple[DirMemoryStore, list[BackupMetadata]]:
    return seed()


def counted(seeded: tuple[DirMemoryStore, list[BackupMetadata]]) -> KeyedCounts:
    return KeyedCounts(seeded[0])


def test_the_pitr_plan_reads_the_index_and_only_the_chain_of_the_chosen_backup(
    seeded: tuple[DirMemoryStore, list[BackupMetadata]],
):
    store = counted(seeded)
    newest_physical = seeded[1][MANY - 1]

    plan = plan_recovery(Catalog(store, CLUSTER), None)

    assert plan.backup == newest_physical  # the full metadata, read from its backup.json
    assert plan.chain[-1] == newest_physical.backup_id
    assert sorted(store.metadata_gets()) == sorted(plan.chain)  # the chain, nothing else
    assert store.counts["list"] <= 3, store.counts  # timelines, entries, new backup ids


def test_the_incremental_parent_is_the_newest_physical_backup_from_the_index(
    seeded: tuple[DirMemoryStore, list[BackupMetadata]],
):
    store = counted(seeded)

    parent = incremental._pick_parent(Catalog(store, CLUSTER), None)  # the choice alone

    assert parent == seeded[1][MANY - 1]  # not the newer logical one
    assert store.metadata_gets() == [parent.backup_id]  # read in full, from its own file
    assert store.counts == {"get": 2, "list": 1}, store.counts  # index, backup.json


def run_list(store: KeyedCounts, monkeypatch: pytest.MonkeyPatch, *flags: str) -> None:
    monkeypatch.setattr(listing_cli, "make_catalog", lambda _spec: Catalog(store, CLUSTER))
    args = argparse.Namespace(json=True, all="--all" in flags)
    listing_cli.cmd_list(args, cast(EngineSpec, None), StateFile(None, "list"))


def test_the_cli_list_reads_the_index(
    seeded: tuple[DirMemoryStore, list[BackupMetadata]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    store = counted(seeded)
    run_list(KeyedCounts(seeded[0]), monkeypatch, "--all")  # the full scan: the truth
    truth = capsys.readouterr().out

    run_list(store, monkeypatch)

    assert store.metadata_gets() == []
    assert store.counts == {"get": 1, "list": 1}, store.counts
    assert capsys.readouterr().out.count('"backup-id"') == truth.count('"backup-id"') == MANY + 1


def test_purge_binlogs_reads_the_backups_from_the_index(
    seeded: tuple[DirMemoryStore, list[BackupMetadata]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    store = counted(seeded)
    monkeypatch.setattr(binlogs_cli, "make_catalog", lambda _spec: Catalog(store, CLUSTER))

    binlogs_cli.cmd_purge_binlogs(
        argparse.Namespace(dry_run=True), cast(EngineSpec, None), StateFile(None, "purge")
    )

    assert json.loads(capsys.readouterr().out) == []  # every backup needs bin.000001
    assert store.metadata_gets() == []
    # index, timeline document; the new backup ids, the binlog prefix
    assert store.counts == {"get": 2, "list": 2}, store.counts
