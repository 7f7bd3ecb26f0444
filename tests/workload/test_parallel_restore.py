"""Framed zstd artefacts against the real MariaDB and RGW (issue 14 finding 5).

A physical backup is stored as independent zstd frames and restored with the frames
decoded in parallel; an artefact written the old way (one zstd frame) still restores; a
corrupted frame fails the restore naming the frame, with the current data untouched.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from database_backup.catalog import BackupMetadata, Catalog, new_backup_id
from database_backup.mysql import RestoreError, backup_full, restore_physical
from database_backup.storage import S3Storage
from database_backup.stream import CompressReader, generate_key, pipeline
from database_backup.stream.base import ByteSource
from database_backup.stream.parallel import END_TAG, MARKER_SIZE, parse_marker
from tests.infra.mariadb import MariaDBServer
from tests.threads import lingering_threads
from tests.workload.engine_helpers import change, connection, fill, siblings

CLUSTER = "model-0123/parallel-restore"


def _backup(
    server: MariaDBServer, catalog: Catalog, work: Path, key: bytes | None = None
) -> BackupMetadata:
    fill(server, "shop", rows=40_000)
    return backup_full(
        connection(server),
        catalog,
        backup_id=new_backup_id(datetime.now(timezone.utc)),
        key=key,
        compression_level=3,
        workdir=work / "backup",
    )


def _frames(stored: bytes) -> list[tuple[int, int]]:
    """(offset, compressed size) of each frame of a framed artefact."""
    frames: list[tuple[int, int]] = []
    offset = 0
    while True:
        parsed = parse_marker(stored[offset : offset + MARKER_SIZE])
        assert parsed is not None, f"no frame marker at byte {offset}"
        tag, compressed, _ = parsed
        if tag == END_TAG:
            return frames
        frames.append((offset, compressed))
        offset += MARKER_SIZE + compressed


def _restore(server: MariaDBServer, catalog: Catalog, meta: BackupMetadata, work: Path) -> None:
    restore_physical(connection(server), server, catalog, meta.backup_id, workdir=work / "r")


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_a_multi_frame_artefact_restores_identical(
    server: MariaDBServer,
    catalog: Catalog,
    storage: S3Storage,
    tmp_path: Path,
    encrypted: bool,
):
    key = generate_key() if encrypted else None
    meta = _backup(server, catalog, tmp_path, key)
    at_backup = server.checksum_tables("shop")
    change(server, "shop")
    stored = storage.get_bytes(catalog.artefact_key(meta.backup_id, meta.artefacts[0]))
    if not encrypted:
        assert len(_frames(stored)) >= 3  # several independent frames

    restore_physical(
        connection(server), server, catalog, meta.backup_id, key=key, workdir=tmp_path / "r"
    )

    assert server.checksum_tables("shop") == at_backup


def test_an_artefact_written_as_one_frame_still_restores(
    server: MariaDBServer,
    catalog: Catalog,
    storage: S3Storage,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    def single_frame(source: ByteSource, level: int = 3) -> CompressReader:
        return CompressReader(source, level=level)  # how backups were written before

    monkeypatch.setattr(pipeline, "FramedCompressReader", single_frame)
    meta = _backup(server, catalog, tmp_path)
    monkeypatch.undo()
    at_backup = server.checksum_tables("shop")
    change(server, "shop")
    stored = storage.get_bytes(catalog.artefact_key(meta.backup_id, meta.artefacts[0]))
    assert parse_marker(stored[:MARKER_SIZE]) is None  # really the old format

    _restore(server, catalog, meta, tmp_path)

    assert server.checksum_tables("shop") == at_backup


def test_a_corrupted_frame_fails_the_restore_and_leaves_the_data(
    server: MariaDBServer, catalog: Catalog, storage: S3Storage, tmp_path: Path
):
    meta = _backup(server, catalog, tmp_path)
    change(server, "shop")
    current = server.checksum_tables("shop")
    name = catalog.artefact_key(meta.backup_id, meta.artefacts[0])
    stored = bytearray(storage.get_bytes(name))
    offset, compressed = _frames(bytes(stored))[1]
    stored[offset + MARKER_SIZE + compressed // 2] ^= 0x20
    storage.put_bytes(name, bytes(stored))
    pid = server.pid

    with pytest.raises(RestoreError) as failure:
        _restore(server, catalog, meta, tmp_path)

    message = str(failure.value)
    assert "failed verification" in message
    assert "corrupt in frame 1" in message
    assert "not touched" in message
    assert server.pid == pid
    assert server.checksum_tables("shop") == current
    assert siblings(server.datadir) == []
    assert lingering_threads("zstd-") == []  # the decoder was closed: no feeder waits forever
