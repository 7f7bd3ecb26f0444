"""What the engine needs from the catalog's storage beyond the catalog's own protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, runtime_checkable

if TYPE_CHECKING:
    from database_backup.catalog import BackupMetadata, Catalog
    from database_backup.stream.base import ByteSource


@runtime_checkable
class StreamingStorage(Protocol):
    """Streaming upload and download (what `S3Storage` offers)."""

    def upload_stream(self, key: str, source: BinaryIO, *, size_hint: int | None = None) -> Any:
        """Upload everything `source.read()` returns to `key`."""
        ...

    def open_stream(self, key: str) -> BinaryIO:
        """Open `key` for streaming reads."""
        ...


def streaming_storage(catalog: Catalog) -> StreamingStorage:
    """The catalog's storage, checked to support streaming.

    Raises:
        TypeError: the catalog sits on a storage without streaming upload/download.
    """
    storage = catalog.storage
    if not isinstance(storage, StreamingStorage):
        raise TypeError(
            f"the catalog's storage ({type(storage).__name__}) cannot stream; use S3Storage"
        )
    return storage


def decode_artefact(source: ByteSource, meta: BackupMetadata, key: bytes | None) -> BinaryIO:
    """The raw bytes of the stored artefact `source` of backup `meta` (see `stream.decode`).

    Its sha256, size and (when encrypted) authentication are checked at EOF, where a
    mismatch raises `stream.IntegrityError`.
    """
    from database_backup.stream import decode

    return decode(
        source,
        key=key if meta.encrypted else None,
        compressed=meta.compression != "none",
        expected_sha256=meta.sha256,
        expected_size=meta.stored_size,
    )
