"""How the engine reads a stored artefact back (the store is the catalog's `ObjectStore`)."""

from __future__ import annotations

from typing import BinaryIO

from database_backup.catalog import BackupMetadata
from database_backup.stream.base import ByteSource
from database_backup.stream.errors import IntegrityError


def check_key(meta: BackupMetadata, key: bytes | None) -> None:
    """Refuse `key` for backup `meta` when the key's fingerprint is not the one recorded.

    Backups recorded before fingerprints existed (none in `backup.json`) pass: the
    stream's own key check still refuses a wrong key before any data is decrypted.

    Raises:
        IntegrityError: the backup was encrypted with another key (nothing was read).
    """
    if not meta.encrypted or key is None or meta.key_fingerprint is None:
        return
    from database_backup.stream.crypto import fingerprint  # late, as in decode_artefact

    given = fingerprint(key)
    if given != meta.key_fingerprint:
        raise IntegrityError(
            f"backup {meta.backup_id} was encrypted with the key of fingerprint "
            f"{meta.key_fingerprint}, not the key given (fingerprint {given}): give the "
            "key it was made with; nothing was read and the current data was not touched"
        )


def decode_artefact(source: ByteSource, meta: BackupMetadata, key: bytes | None) -> BinaryIO:
    """The raw bytes of the stored artefact `source` of backup `meta` (see `stream.decode`).

    Its checksum, size and (when encrypted) authentication are checked at EOF, where a
    mismatch raises `stream.IntegrityError`.
    """
    from database_backup.stream import decode  # late: zstd and crypto load after the tool starts

    check_key(meta, key)
    checksum = meta.checksum
    return decode(
        source,
        key=key if meta.encrypted else None,
        compressed=meta.compression != "none",
        expected_sha256=checksum.sha256,
        expected_size=meta.stored_size,
        hasher=checksum.hasher(),
    )
