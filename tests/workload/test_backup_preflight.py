"""The storage preflight overlaps the backup tool's start, and its failure stops the tool."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from database_backup.catalog import Catalog, new_backup_id
from database_backup.mysql import BackupError, backup_full
from database_backup.storage import S3Storage
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import checksum_of, connection, fill

CLUSTER = "model-0123/preflight"
_TOOLS = ("mariabackup", "mariadb-backup")


@pytest.fixture(scope="module")
def server(server: MariaDBServer) -> MariaDBServer:
    """The module's own server (tests/workload/fixtures.py) with 2,000 rows in `shop`."""
    fill(server, "shop", rows=2_000)
    return server


def _tool_children() -> list[int]:
    """PIDs of backup tools whose parent is this process (read from /proc)."""
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == me and comm in _TOOLS:
            found.append(int(entry.name))
    return found


def test_the_catalog_is_opened_while_the_tool_already_runs(
    server: MariaDBServer, storage: S3Storage, tmp_path: Path
):
    running_at_open: list[list[int]] = []

    def open_catalog() -> Catalog:
        running_at_open.append(_tool_children())
        return Catalog(storage, CLUSTER)

    backup_id = new_backup_id(datetime.now(timezone.utc))
    meta = backup_full(connection(server), open_catalog, backup_id=backup_id, workdir=tmp_path)

    assert len(running_at_open) == 1
    assert running_at_open[0], "the preflight waited for nothing: no backup tool was running"
    catalog = Catalog(storage, CLUSTER)
    assert catalog.read_metadata(backup_id).checksum == meta.checksum
    stored = storage.get_bytes(catalog.artefact_key(backup_id, meta.artefacts[0]))
    assert checksum_of(stored, meta) == meta.checksum.sha256
    assert len(stored) == meta.stored_size


def test_a_failing_preflight_stops_the_tool_and_leaves_nothing(
    server: MariaDBServer, storage: S3Storage, tmp_path: Path
):
    def open_catalog() -> Catalog:
        raise RuntimeError("the endpoint is unreachable: check the storage settings")

    backup_id = new_backup_id(datetime.now(timezone.utc))
    with pytest.raises(BackupError, match="cannot use the backup storage: the endpoint"):
        backup_full(connection(server), open_catalog, backup_id=backup_id, workdir=tmp_path)

    assert _tool_children() == []  # killed and reaped
    assert list(storage.list(Catalog(storage, CLUSTER).backup_prefix(backup_id))) == []
    assert list(tmp_path.glob("backup-*.log")) == []  # the local log as it was: absent
    assert list(tmp_path.glob("xb-*")) == []


def test_a_refused_id_keeps_the_earlier_local_log(
    server: MariaDBServer, storage: S3Storage, tmp_path: Path
):
    catalog = Catalog(storage, CLUSTER)
    backup_id = new_backup_id(datetime.now(timezone.utc))
    backup_full(connection(server), catalog, backup_id=backup_id, workdir=tmp_path)
    log = tmp_path / f"backup-{backup_id}.log"
    before = log.read_bytes()

    with pytest.raises(BackupError, match="already used"):
        backup_full(connection(server), catalog, backup_id=backup_id, workdir=tmp_path)

    assert log.read_bytes() == before
    assert _tool_children() == []
