"""Backups record their key's fingerprint; another key is refused before anything is touched.

Against the real MariaDB and RGW: physical and logical backups made with one key, restores
given another key (as a new manager with a new key would send), and the right key.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from database_backup.catalog import Catalog, new_backup_id
from database_backup.mysql import RestoreError, backup_full, restore_physical
from database_backup.mysql.logical.dump import backup_logical
from database_backup.mysql.logical.restore import LogicalRestoreError, restore_logical
from database_backup.storage import S3Storage
from database_backup.stream import generate_key
from database_backup.stream.crypto import fingerprint
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import change, connection, fill, new_id

CLUSTER = "model-0123/fingerprint"
KEY = generate_key()
OTHER = generate_key()


def _stored_fingerprint(storage: S3Storage, catalog: Catalog, backup_id: str) -> object:
    document = json.loads(storage.get_bytes(f"{catalog.backup_prefix(backup_id)}backup.json"))
    return document.get("key-fingerprint")


def test_physical_backup_records_the_fingerprint_and_another_key_is_refused_first(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    fill(server, "shop", rows=2_000)
    backup_id = new_backup_id(datetime.now(timezone.utc))
    meta = backup_full(connection(server), catalog, backup_id=backup_id, key=KEY,
                       compression_level=3, workdir=tmp_path / "b")  # fmt: skip
    change(server, "shop")
    current = server.checksum_tables("shop")
    pid = server.pid

    assert _stored_fingerprint(storage, catalog, meta.backup_id) == fingerprint(KEY)
    assert (
        KEY.hex()
        not in storage.get_bytes(f"{catalog.backup_prefix(meta.backup_id)}backup.json").decode()
    )
    with pytest.raises(RestoreError) as failure:
        restore_physical(connection(server), server, catalog, meta.backup_id, key=OTHER,
                         workdir=tmp_path / "r")  # fmt: skip

    message = str(failure.value)
    assert f"fingerprint {fingerprint(KEY)}" in message
    assert fingerprint(OTHER) in message
    assert "not touched" in message
    assert server.pid == pid
    assert server.checksum_tables("shop") == current


def test_logical_backup_with_another_key_is_refused_before_a_statement_runs(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    fill(server, "keyed", rows=300)
    conn = connection(server)
    meta = backup_logical(conn, catalog, backup_id=new_id(), databases=["keyed"],
                          compression_level=None, key=KEY, workdir=tmp_path)  # fmt: skip
    server.execute("DROP DATABASE keyed; CREATE DATABASE keyed;")

    assert _stored_fingerprint(storage, catalog, meta.backup_id) == fingerprint(KEY)
    with pytest.raises(LogicalRestoreError, match=f"fingerprint {fingerprint(KEY)}") as caught:
        restore_logical(conn, catalog, meta.backup_id, key=OTHER, workdir=tmp_path / "r")
    assert caught.value.data_changed is False
    assert server.checksum_tables("keyed") == {}

    restore_logical(conn, catalog, meta.backup_id, key=KEY, workdir=tmp_path / "ok")
    assert server.checksum_tables("keyed")
