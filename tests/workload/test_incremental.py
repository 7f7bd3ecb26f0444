"""Incremental physical backups and chain restores on a real MariaDB and a real RGW.

Data is compared with CHECKSUM TABLE at each backup and after each restore.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from database_backup.catalog import BackupHeldError, Catalog, RetentionPolicy
from database_backup.catalog.store import METADATA_FILE
from database_backup.mysql import BackupError, RestoreError, backup_full, restore_physical
from database_backup.mysql.physical.incremental import (
    ChainError,
    backup_incremental,
    resolve_chain,
)
from database_backup.storage import S3Storage
from database_backup.stream import generate_key
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import connection, fill, new_id

CLUSTER = "model-0123/incremental"


def test_chain_full_plus_two_incrementals_restores_each_point(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    key = generate_key()
    conn = connection(server)
    fill(server, "inc", rows=5_000)
    at_full = server.checksum_tables("inc")
    full = backup_full(conn, catalog, backup_id=new_id(), key=key, workdir=tmp_path / "f")

    server.execute(
        "UPDATE inc.orders SET amount = amount * 2 WHERE id <= 1000;"
        "INSERT INTO inc.orders SELECT seq, 'late', 1, 'x' FROM inc.seq_5001_to_6000;"
    )
    at_inc1 = server.checksum_tables("inc")
    inc1 = backup_incremental(conn, catalog, backup_id=new_id(), key=key, workdir=tmp_path / "i1")

    server.execute(
        "DELETE FROM inc.orders WHERE id % 7 = 0; CREATE TABLE inc.extra (id INT PRIMARY KEY)"
        " ENGINE=InnoDB; INSERT INTO inc.extra SELECT seq FROM inc.seq_1_to_300;"
    )
    at_inc2 = server.checksum_tables("inc")
    inc2 = backup_incremental(
        conn,
        catalog,
        backup_id=new_id(),
        parent_id=inc1.backup_id,
        key=key,
        workdir=tmp_path / "i2",
    )

    assert (inc1.kind, inc1.parent_id) == ("incremental", full.backup_id)
    assert (inc2.kind, inc2.parent_id) == ("incremental", inc1.backup_id)
    assert inc1.from_lsn == full.to_lsn
    assert inc2.from_lsn == inc1.to_lsn
    assert inc2.to_lsn is not None
    assert inc1.to_lsn is not None
    assert inc2.to_lsn >= inc1.to_lsn
    # an incremental holds only the changed pages: far smaller than the full backup
    assert inc1.raw_size is not None
    assert full.raw_size is not None
    assert inc1.raw_size < full.raw_size
    assert [m.backup_id for m in resolve_chain(catalog, inc2.backup_id)] == [
        full.backup_id,
        inc1.backup_id,
        inc2.backup_id,
    ]

    server.execute("DROP DATABASE inc; CREATE DATABASE after_all;")
    restore_physical(conn, server, catalog, inc2.backup_id, key=key, workdir=tmp_path / "r2")
    assert server.checksum_tables("inc") == at_inc2
    assert server.checksum_tables("inc")["extra"] == at_inc2["extra"]
    assert "after_all" not in {row[0] for row in server.query("SHOW DATABASES")}

    restore_physical(conn, server, catalog, inc1.backup_id, key=key, workdir=tmp_path / "r1")
    assert server.checksum_tables("inc") == at_inc1
    assert at_inc1 != at_inc2 != at_full

    # the catalog keeps the chain: retention and deletion never take a parent away
    with pytest.raises(BackupHeldError, match=f"parent of {inc1.backup_id}"):
        catalog.delete_backup(full.backup_id)
    assert catalog.purge(RetentionPolicy(min_count=1, max_count=1)) == []
    kept = {entry.backup_id for entry in catalog.list_backups()}
    assert kept == {full.backup_id, inc1.backup_id, inc2.backup_id}


def test_missing_parent_is_refused_before_touching_data(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    conn = connection(server)
    fill(server, "inc", rows=500)
    full = backup_full(conn, catalog, backup_id=new_id(), compression_level=None, workdir=tmp_path)
    server.execute("INSERT INTO inc.orders VALUES (100001, 'c', 1, 'n');")
    inc = backup_incremental(
        conn, catalog, backup_id=new_id(), compression_level=None, workdir=tmp_path
    )
    server.execute("INSERT INTO inc.orders VALUES (100002, 'c', 2, 'n');")
    now = server.checksum_tables("inc")
    # the parent loses its backup.json: the chain is broken
    storage.delete(catalog.backup_prefix(full.backup_id) + METADATA_FILE)

    with pytest.raises(ChainError, match=f"needs its parent {full.backup_id}"):
        resolve_chain(catalog, inc.backup_id)
    with pytest.raises(RestoreError, match="missing or incomplete") as caught:
        restore_physical(conn, server, catalog, inc.backup_id, workdir=tmp_path / "r")
    assert caught.value.data_changed is False
    assert server.checksum_tables("inc") == now
    with pytest.raises(BackupError, match="missing or incomplete"):
        backup_incremental(
            conn, catalog, backup_id=new_id(), parent_id=full.backup_id, workdir=tmp_path
        )
