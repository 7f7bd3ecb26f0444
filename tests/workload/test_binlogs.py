"""Binlog shipping to a real RGW from a real MariaDB: once, resumable, encrypted, indexed."""

from __future__ import annotations

import hashlib
import itertools
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from database_backup.catalog import Catalog
from database_backup.catalog.binlogs import BinlogCatalog
from database_backup.mysql.binlog.shipping import BinlogError, binlog_lock, ship_binlogs
from database_backup.mysql.pitr.recover import download_binlog
from database_backup.storage import S3Storage
from database_backup.stream import generate_key
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import NEEDLE, connection, fill

CLUSTER = "model-0123/binlogs"

SERVER_OPTIONS = {"server_id": 7}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_each_closed_binlog_is_shipped_once_encrypted_with_its_index_entry(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    key = generate_key()
    conn = connection(server)
    # the first binlog opened when the server started (before this test, under load maybe
    # seconds before): its entry's times count from then
    uptime = int(
        server.scalar(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"
            " WHERE VARIABLE_NAME = 'UPTIME'"
        )
    )
    started = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=uptime)
    fill(server, "ship", rows=2_000)
    server.execute("FLUSH BINARY LOGS")
    server.execute("UPDATE ship.orders SET amount = 1 WHERE id < 10")
    closed = [row[0] for row in server.query("SHOW BINARY LOGS")][:-1]

    first = ship_binlogs(conn, catalog, workdir=tmp_path, key=key, flush=True)
    all_closed = [row[0] for row in server.query("SHOW BINARY LOGS")][:-1]
    assert first.shipped == all_closed
    assert set(closed) < set(all_closed)
    assert first.active == server.query("SHOW MASTER STATUS")[0][0]
    again = ship_binlogs(conn, catalog, workdir=tmp_path, key=key)
    assert again.shipped == []
    assert again.already == all_closed

    index = BinlogCatalog(catalog)
    entries = index.entries(first.timeline)
    assert [e.name for e in entries] == all_closed
    gtid_now = server.scalar("SELECT @@gtid_binlog_pos")
    for entry in entries:
        assert entry.encrypted
        assert entry.compression == "zstd"
        assert entry.server_ids == [7]
        assert entry.flavour == "mariadb"
        assert entry.hostname
        assert started - timedelta(seconds=1) <= entry.created_at <= entry.last_event_at
        stored = storage.get_bytes(index.object_key(entry.timeline, entry.object_name))
        assert NEEDLE.encode() not in stored
        local = server.binlog_dir / entry.name
        fetched = download_binlog(index, entry, tmp_path / "fetched", key)
        assert _sha(fetched) == _sha(local)
        assert entry.raw_size == local.stat().st_size
    assert entries[-1].last_gtids == [gtid_now]
    # each file's GTID list continues where the previous one ended
    for previous, current in itertools.pairwise(entries):
        if previous.last_gtids:
            assert current.gtid_list == previous.last_gtids


def test_a_shipment_killed_before_its_entry_ships_that_file_again(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    conn = connection(server)
    server.execute("CREATE DATABASE IF NOT EXISTS again; FLUSH BINARY LOGS;")
    result = ship_binlogs(conn, catalog, workdir=tmp_path, compression_level=None)
    index = BinlogCatalog(catalog)
    last = index.entries(result.timeline)[-1]
    # as if the process died after the upload and before the entry was written
    storage.delete(index.entry_key(last.timeline, last.name))
    resumed = ship_binlogs(conn, catalog, workdir=tmp_path, compression_level=None)
    assert resumed.shipped == [last.name]
    assert index.entries(result.timeline)[-1].sha256 == last.sha256
    assert [info.key for info in storage.list(index.timeline_prefix(result.timeline))].count(
        index.object_key(last.timeline, last.object_name)
    ) == 1


def test_lock_and_a_gap_are_reported(server: MariaDBServer, catalog: Catalog, tmp_path: Path):
    conn = connection(server)
    ship_binlogs(conn, catalog, workdir=tmp_path, flush=True)
    with binlog_lock(tmp_path), pytest.raises(BinlogError, match="is running"):
        ship_binlogs(conn, catalog, workdir=tmp_path)
    # two files are written and purged on the server before anyone shipped them
    server.execute("FLUSH BINARY LOGS; FLUSH BINARY LOGS;")
    newest = server.query("SHOW MASTER STATUS")[0][0]
    for _attempt in range(50):  # a file is purgeable once its binlog checkpoint is written
        server.execute(f"PURGE BINARY LOGS TO '{newest}'")
        if server.query("SHOW BINARY LOGS")[0][0] == newest:
            break
        time.sleep(0.1)
    assert server.query("SHOW BINARY LOGS")[0][0] == newest
    result = ship_binlogs(conn, catalog, workdir=tmp_path)
    assert len(result.missing) >= 2
    assert result.shipped == []
