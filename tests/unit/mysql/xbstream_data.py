"""Synthetic xbstreams and backup records shared by the unit tests of the physical path."""

from __future__ import annotations

import io
import random
import struct
import zlib
from datetime import datetime, timezone

from database_backup.catalog import BackupMetadata
from database_backup.mysql.physical.xbstream import MAGIC


def payload_chunk(
    path: str | bytes,
    data: bytes,
    offset: int = 0,
    *,
    kind: bytes = b"P",
    flags: int = 0,
    crc: int | None = None,
) -> bytes:
    """One payload chunk (or another `kind` laid out like one), its CRC-32 right unless given."""
    name = path.encode() if isinstance(path, str) else path
    head = MAGIC + struct.pack("<BBI", flags, kind[0], len(name)) + name
    checksum = zlib.crc32(data) if crc is None else crc
    return head + struct.pack("<QQI", len(data), offset, checksum) + data


def eof_chunk(path: str | bytes) -> bytes:
    """The end-of-file chunk of `path`."""
    name = path.encode() if isinstance(path, str) else path
    return MAGIC + struct.pack("<BBI", 0, ord("E"), len(name)) + name


class Dribble:
    """Returns the data in reads of random sizes (1 byte to 70 KB)."""

    def __init__(self, data: bytes, seed: int) -> None:
        self._data = io.BytesIO(data)
        self._rng = random.Random(seed)  # noqa: S311 - reproducible test data

    def read(self, n: int = -1) -> bytes:
        return self._data.read(min(n, self._rng.choice([1, 3, 14, 50, 4099, 70_000])))


def full_backup_record(backup_id: str) -> BackupMetadata:
    """A complete, compressed, unencrypted full MariaDB backup's record (1,000 bytes)."""
    now = datetime.now(timezone.utc)
    return BackupMetadata(
        backup_id=backup_id,
        kind="full",
        started_at=now,
        finished_at=now,
        artefacts=["data.xbstream.zst"],
        stored_size=1000,
        sha256="0" * 64,
        compression="zstd",
        encrypted=False,
        flavour="mariadb",
        server_version="10.11.6-MariaDB",
        raw_size=1000,
    )
