"""What code that stores backups depends on: the `ObjectStore` protocol and its values.

The catalog, the engine (streaming artefacts in and out) and the copy worker take an
`ObjectStore`; `S3Storage` is the implementation, an in-memory store the unit tests' one.
Copying between two stores is `storage.copy_object` (server-side when both are S3Storage
on one account).
Keys are relative to the store's own prefix. Errors are `StorageError`s
(`ObjectNotFoundError` for a missing key). No SDK import here.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from database_backup.storage.checksum import PartsChecksum


@dataclass(frozen=True)
class ObjectInfo:
    """One object.

    Attributes:
        key: the key relative to the configuration's `path`.
        size: bytes.
        last_modified: when it was written (UTC, aware).
        etag: the ETag as the server reports it ("" when unknown).
    """

    key: str
    size: int
    last_modified: datetime.datetime
    etag: str = ""


@dataclass(frozen=True)
class UploadResult:
    """A finished upload.

    Attributes:
        key: the key, relative to the configuration's path.
        size: bytes stored.
        parts: number of parts (1 for a single PUT).
        checksum: the stored object's checksum (`storage.checksum`); None from a
            server-side copy (the copy is verified by reading it back).
    """

    key: str
    size: int
    parts: int = 1
    checksum: PartsChecksum | None = None


class Readable(Protocol):
    """What an upload reads from: anything with `read(n)` (a pipe, a file, a stream stage)."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes; b"" at the end."""
        ...


class ObjectStore(Protocol):
    """A bucket (and prefix) of objects: small objects, streams, listing, deletion."""

    def check(self) -> None:
        """Verify the store is reachable with these credentials (`AccessDeniedError`...)."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store `data` at `key` (metadata and small files)."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """The whole object at `key`; `ObjectNotFoundError` if missing."""
        ...

    def head(self, key: str) -> ObjectInfo:
        """Describe the object at `key`; `ObjectNotFoundError` if missing."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored at `key`."""
        ...

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """The objects under `prefix`, recursively, in key order."""
        ...

    def delete(self, key: str) -> None:
        """Delete `key` (no error when it does not exist)."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix` (never the empty prefix); return how many."""
        ...

    def upload_stream(
        self, key: str, source: Readable, *, size_hint: int | None = None
    ) -> UploadResult:
        """Store everything `source.read()` returns until b"" at `key`; all or nothing."""
        ...

    def open_stream(self, key: str) -> BinaryIO:
        """Open `key` for streaming reads; `ObjectNotFoundError` if missing."""
        ...
