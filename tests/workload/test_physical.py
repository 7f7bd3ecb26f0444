"""Full physical backups to a real RGW and restores into a real MariaDB server.

Data is compared with CHECKSUM TABLE before the backup and after the restore.
"""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from database_backup.catalog import BackupMetadata, Catalog, new_backup_id
from database_backup.mysql import BackupError, RestoreError, backup_full, restore_physical
from database_backup.mysql.physical.commands import (
    BINLOG_INFO_FILES,
    BinlogCoordinates,
    coordinates_from,
)
from database_backup.mysql.physical.xbstream import XbstreamTap
from database_backup.storage import S3Config, S3Storage
from database_backup.stream import generate_key
from tests.infra.ceph import CephS3
from tests.infra.mariadb import MariaDBServer
from tests.workload.engine_helpers import (
    NEEDLE,
    Recorder,
    change,
    checksum_of,
    connection,
    databases,
    fill,
    sha256_of,
    siblings,
)

CLUSTER = "model-0123/mariadb"


@pytest.mark.parametrize(
    ("compression_level", "encrypted"),
    [(None, False), (3, True)],
    ids=["plain", "zstd+encrypted"],
)
def test_backup_change_restore_gives_backup_time_data(
    server: MariaDBServer,
    catalog: Catalog,
    storage: S3Storage,
    tmp_path: Path,
    compression_level: int | None,
    encrypted: bool,
):
    fill(server, "shop")
    before = server.checksum_tables("shop")
    gtid_before = server.scalar("SELECT @@gtid_binlog_pos")
    master = server.query("SHOW MASTER STATUS")[0]
    key = generate_key() if encrypted else None
    progress = Recorder()
    backup_id = new_backup_id(datetime.now(timezone.utc))

    meta = backup_full(
        connection(server),
        catalog,
        backup_id=backup_id,
        job_id="job-1",
        compression_level=compression_level,
        key=key,
        progress=progress,
        workdir=tmp_path / "work",
    )

    # what was recorded matches the server and the stored object
    assert meta.backup_id == backup_id
    assert (meta.kind, meta.status, meta.job_id) == ("full", "complete", "job-1")
    assert meta.flavour == "mariadb"
    assert meta.server_version == server.scalar("SELECT VERSION()")
    assert (meta.binlog_file, meta.binlog_position) == (master[0], int(master[1]))
    assert meta.gtid_set == gtid_before
    assert meta.encrypted is encrypted
    assert meta.compression == ("zstd" if compression_level else "none")
    stored = storage.get_bytes(catalog.artefact_key(backup_id, meta.artefacts[0]))
    assert len(stored) == meta.stored_size
    assert checksum_of(stored, meta) == meta.checksum.sha256
    assert meta.raw_size is not None
    assert meta.raw_size > 0
    if compression_level is None and not encrypted:
        assert meta.stored_size == meta.raw_size
    assert (NEEDLE.encode() in stored) is (not encrypted and compression_level is None)
    if compression_level is None and not encrypted:
        # the metadata tap understands the real tool's stream
        tap = XbstreamTap(io.BytesIO(stored), BINLOG_INFO_FILES)
        while tap.read(1 << 20):
            pass
        assert tap.broken is None
        assert coordinates_from(tap.files, "") == BinlogCoordinates(
            master[0], int(master[1]), gtid_before
        )
    assert catalog.read_metadata(backup_id).checksum == meta.checksum
    job_log = storage.get_bytes(catalog.backup_prefix(backup_id).rstrip("/") + "/job.log")
    assert b"completed OK!" in job_log
    assert server.password.encode() not in job_log
    assert progress.events[-1].phase == "done"
    assert any(e.phase == "backup" and e.bytes_done > 0 for e in progress.events)

    change(server, "shop")
    assert server.checksum_tables("shop") != before
    restore_progress = Recorder()

    result = restore_physical(
        connection(server),
        server,
        catalog,
        backup_id,
        key=key,
        progress=restore_progress,
        workdir=tmp_path / "restore",
    )

    assert server.is_running()
    assert server.checksum_tables("shop") == before
    assert "after_backup" not in databases(server)
    assert result.backup_id == backup_id
    assert result.raw_bytes == meta.raw_size
    assert restore_progress.phases() == [
        "download", "prepare", "stop", "swap", "start", "verify", "cleanup", "done",
    ]  # fmt: skip
    downloads = [e for e in restore_progress.events if e.phase == "download"]
    assert downloads[-1].bytes_done == meta.stored_size
    assert all(e.bytes_estimated == meta.stored_size for e in downloads)
    assert siblings(server.datadir) == []


def test_backup_metadata_is_listed_and_log_kept_beside_it(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    fill(server, "listed", rows=500)
    ids = [new_backup_id(datetime.now(timezone.utc)) + f"-{n}" for n in range(2)]
    for backup_id in ids:
        backup_full(connection(server), catalog, backup_id=backup_id, workdir=tmp_path / backup_id)

    listed = [item.backup_id for item in catalog.list_backups()]
    assert listed == ids
    for backup_id in ids:
        names = {
            info.key.rsplit("/", 1)[1] for info in storage.list(catalog.backup_prefix(backup_id))
        }
        assert names == {"backup.json", "job.log", "data.xbstream.zst"}
        document = json.loads(
            storage.get_bytes(catalog.backup_prefix(backup_id).rstrip("/") + "/backup.json")
        )
        assert document["backup-id"] == backup_id


def test_failed_tool_leaves_no_backup(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    conn = connection(server)
    wrong = type(conn)(user=conn.user, password="wrong-password", host=conn.host, port=conn.port)
    backup_id = new_backup_id(datetime.now(timezone.utc))

    with pytest.raises(BackupError) as failure:
        backup_full(wrong, catalog, backup_id=backup_id, workdir=tmp_path)

    assert "Access denied" in str(failure.value)
    assert "wrong-password" not in str(failure.value)
    assert list(storage.list(catalog.backup_prefix(backup_id))) == []


def test_s3_gateway_killed_mid_backup(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, ceph: CephS3, tmp_path: Path
):
    fill(server, "big", rows=200_000)
    backup_id = new_backup_id(datetime.now(timezone.utc))
    killed = []

    def kill_when_streaming(event: object) -> None:
        done = getattr(event, "bytes_done", 0)
        if not killed and done > 8 * 2**20:
            ceph.kill_rgw()
            killed.append(done)

    with pytest.raises(BackupError) as failure:
        backup_full(
            connection(server),
            catalog,
            backup_id=backup_id,
            compression_level=None,
            progress=kill_when_streaming,
            workdir=tmp_path,
        )

    assert killed, "the gateway was killed while the backup streamed"
    message = str(failure.value)
    assert backup_id in message
    assert "S3 endpoint is unreachable" in message
    assert server.scalar("SELECT 1") == "1"
    ceph.restart_rgw()
    keys = [info.key for info in storage.list(catalog.backup_prefix(backup_id))]
    assert not any(key.endswith("backup.json") for key in keys)
    assert not any(key.endswith("data.xbstream") for key in keys)  # never completed
    assert backup_id not in [item.backup_id for item in catalog.list_backups()]


def test_wrong_s3_secret_fails_clearly_before_the_tool_runs(
    server: MariaDBServer, s3_config: S3Config, tmp_path: Path
):
    bad = dataclasses.replace(s3_config, secret_key="not-the-secret-key")
    catalog = Catalog(S3Storage(bad), CLUSTER)

    with pytest.raises(BackupError) as failure:
        backup_full(
            connection(server),
            catalog,
            backup_id=new_backup_id(datetime.now(timezone.utc)),
            workdir=tmp_path,
        )

    message = str(failure.value)
    assert "SignatureDoesNotMatch" in message
    assert "check the secret key" in message
    assert "not-the-secret-key" not in message
    assert list(tmp_path.glob("backup-*.log")) == []  # failed before the tool ran


def test_reused_backup_id_is_refused_and_the_existing_backup_kept(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    fill(server, "reuse", rows=200)
    backup_id = new_backup_id(datetime.now(timezone.utc))
    first = backup_full(connection(server), catalog, backup_id=backup_id, workdir=tmp_path / "1")

    with pytest.raises(BackupError, match="already used"):
        backup_full(connection(server), catalog, backup_id=backup_id, workdir=tmp_path / "2")

    assert catalog.read_metadata(backup_id).checksum == first.checksum
    stored = storage.get_bytes(catalog.artefact_key(backup_id, first.artefacts[0]))
    assert checksum_of(stored, first) == first.checksum.sha256


def _small_backup(
    server: MariaDBServer, catalog: Catalog, workdir: Path, **options: Any
) -> tuple[BackupMetadata, dict[str, str]]:
    """A full backup of 1,000 rows in `shop`; with the table checksums it holds."""
    fill(server, "shop", rows=1_000)
    before = server.checksum_tables("shop")
    meta = backup_full(
        connection(server),
        catalog,
        backup_id=new_backup_id(datetime.now(timezone.utc)),
        workdir=workdir,
        **options,
    )
    return meta, before


def test_restore_into_a_stopped_server_starts_it_on_the_backup(
    server: MariaDBServer, catalog: Catalog, tmp_path: Path
):
    meta, before = _small_backup(server, catalog, tmp_path / "b")
    change(server, "shop")
    server.stop()

    restore_physical(connection(server), server, catalog, meta.backup_id, workdir=tmp_path / "r")

    assert server.is_running()
    assert server.checksum_tables("shop") == before
    assert siblings(server.datadir) == []


def test_a_backup_recorded_before_format_2_still_restores_and_is_still_checked(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    """A format-1 `backup.json` (a whole-artefact sha256) restores, and is still checked.

    Every backup before the checksum of parts has one; a wrong sha256 in it is refused
    before anything is swapped in.
    """
    meta, before = _small_backup(server, catalog, tmp_path / "b", compression_level=3)
    stored = storage.get_bytes(catalog.artefact_key(meta.backup_id, meta.artefacts[0]))
    older = dataclasses.replace(meta, sha256=sha256_of(stored), parts_sha256=None)
    document = older.to_dict()
    assert (document["format-version"], "parts-sha256" in document) == (1, False)
    key = catalog.backup_prefix(meta.backup_id).rstrip("/") + "/backup.json"
    wrong = {**document, "sha256": sha256_of(b"another artefact")}
    storage.put_bytes(key, json.dumps(wrong).encode())
    change(server, "shop")
    changed = server.checksum_tables("shop")

    with pytest.raises(RestoreError, match="checksum"):
        restore_physical(
            connection(server), server, catalog, meta.backup_id, workdir=tmp_path / "x"
        )
    assert server.checksum_tables("shop") == changed  # nothing swapped in

    storage.put_bytes(key, json.dumps(document).encode())
    restore_physical(connection(server), server, catalog, meta.backup_id, workdir=tmp_path / "r")

    assert server.checksum_tables("shop") == before
    assert siblings(server.datadir) == []
