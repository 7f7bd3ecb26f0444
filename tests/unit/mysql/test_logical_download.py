"""A logical restore's download and check, which come before the first statement is sent."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import shutil
from pathlib import Path
from typing import NamedTuple

import pytest

from database_backup.catalog import BackupMetadata, Catalog
from database_backup.mysql.logical import restore
from database_backup.mysql.logical.restore import LogicalRestoreError
from tests.unit.catalog.factories import backup
from tests.unit.catalog.memstore import MemoryStore

DUMP = b"-- Current Database: `shop`\nCREATE DATABASE `shop`;\n" * 1000


def _stored(data: bytes, **changes: object) -> tuple[Catalog, BackupMetadata]:
    catalog = Catalog(MemoryStore(), "model/db")
    meta = dataclasses.replace(
        backup("20261122T120000Z-0001", 1, kind="logical"),
        artefacts=["dump.sql"], compression="none", stored_size=len(data),
        raw_size=len(data), sha256=hashlib.sha256(data).hexdigest(),
    )  # fmt: skip
    meta = dataclasses.replace(meta, **changes)
    catalog.storage.put_bytes(catalog.artefact_key(meta.backup_id, "dump.sql"), data)
    return catalog, meta


class _Usage(NamedTuple):
    total: int
    used: int
    free: int


def test_too_little_room_is_refused_before_downloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    catalog, meta = _stored(DUMP)
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: _Usage(1 << 30, 1 << 30, 1 << 20))
    local = tmp_path / "a"
    with pytest.raises(LogicalRestoreError, match="not enough free space") as caught:
        restore._download(catalog, meta, local, None)
    assert "it needs 65 MiB, 1 MiB are free" in str(caught.value)
    assert "nothing was applied" in str(caught.value)
    assert caught.value.data_changed is False
    assert not local.exists()


def test_a_download_shorter_than_recorded_is_refused(tmp_path: Path):
    catalog, meta = _stored(
        DUMP[:-10], stored_size=len(DUMP), sha256=hashlib.sha256(DUMP).hexdigest()
    )
    with pytest.raises(LogicalRestoreError, match=r"failed verification.*nothing was applied"):
        restore._download(catalog, meta, tmp_path / "a", None)


def test_an_artefact_that_does_not_decompress_is_refused(tmp_path: Path):
    catalog, meta = _stored(DUMP, compression="zstd")  # recorded as zstd, stored plain
    local = tmp_path / "a"
    restore._download(catalog, meta, local, None)
    with pytest.raises(LogicalRestoreError, match="does not decrypt or decompress completely"):
        restore._check_decodes(local, meta, None, None)


def test_a_sound_artefact_is_downloaded_and_decodes(tmp_path: Path):
    catalog, meta = _stored(DUMP)
    local = tmp_path / "a"
    restore._download(catalog, meta, local, None)
    restore._check_decodes(local, meta, None, None)
    assert local.read_bytes() == DUMP


def _stored_by_upload(data: bytes) -> tuple[Catalog, BackupMetadata]:
    """As a backup stores it now: the checksum is the one the upload reports (parts)."""
    catalog, meta = _stored(data)
    key = catalog.artefact_key(meta.backup_id, "dump.sql")
    result = catalog.storage.upload_stream(key, io.BytesIO(data))
    assert result.checksum is not None
    return catalog, dataclasses.replace(meta, sha256=None, parts_sha256=result.checksum.to_json())


def test_a_backup_with_a_checksum_of_parts_downloads_and_verifies(tmp_path: Path):
    catalog, meta = _stored_by_upload(DUMP)

    restore._download(catalog, meta, tmp_path / "a", None)

    assert (tmp_path / "a").read_bytes() == DUMP


def test_a_changed_byte_fails_the_checksum_of_parts(tmp_path: Path):
    catalog, meta = _stored_by_upload(DUMP)
    key = catalog.artefact_key(meta.backup_id, "dump.sql")
    catalog.storage.put_bytes(key, DUMP.replace(b"shop", b"shoq", 1))

    with pytest.raises(LogicalRestoreError, match="SHA-256 of its 16 MiB parts mismatch"):
        restore._download(catalog, meta, tmp_path / "a", None)
