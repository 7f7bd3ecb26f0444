"""How the engine reads a stored artefact back (the store is the catalog's `ObjectStore`)."""

from __future__ import annotations

from typing import BinaryIO

from database_backup.catalog import BackupMetadata
from database_backup.stream.base import ByteSource


def decode_artefact(source: ByteSource, meta: BackupMetadata, key: bytes | None) -> BinaryIO:
    """The raw bytes of the stored artefact `source` of backup `meta` (see `stream.decode`).

    Its sha256, size and (when encrypted) authentication are checked at EOF, where a
    mismatch raises `stream.IntegrityError`.
    """
    from database_backup.stream import decode  # late: zstd and crypto load after the tool starts

    return decode(
        source,
        key=key if meta.encrypted else None,
        compressed=meta.compression != "none",
        expected_sha256=meta.sha256,
        expected_size=meta.stored_size,
    )
