"""An in-memory `ObjectStore` (the protocol S3Storage implements), for pure unit tests.

The workload tests (tests/workload/test_catalog.py) run the same catalog on real S3.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import BinaryIO

from database_backup.storage import ObjectInfo, ObjectNotFoundError, Readable, UploadResult
from database_backup.storage.checksum import PartsChecksum, PartsHasher
from database_backup.storage.parts import plan_parts

#: The listed-object type (kept under its old name for the tests that import it).
Info = ObjectInfo


class MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, datetime]] = {}
        self.writes: list[str] = []
        self.deletes: list[str] = []

    def check(self) -> None:
        """Always reachable."""

    def put_bytes(self, key: str, data: bytes) -> None:
        self.objects[key] = (bytes(data), datetime.now(timezone.utc))
        self.writes.append(key)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.objects[key][0]
        except KeyError:
            raise ObjectNotFoundError(f"no object {key}") from None

    def head(self, key: str) -> ObjectInfo:
        if key not in self.objects:
            raise ObjectNotFoundError(f"no object {key}")
        data, modified = self.objects[key]
        return ObjectInfo(key, len(data), modified)

    def exists(self, key: str) -> bool:
        return key in self.objects

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for key in sorted(self.objects):
            if key.startswith(prefix):
                yield self.head(key)

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)
        self.deletes.append(key)

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.strip("/"):
            raise ValueError("refusing to delete an empty prefix (everything under the path)")
        keys = [key for key in self.objects if key.startswith(prefix)]
        for key in keys:
            self.delete(key)
        return len(keys)

    def upload_stream(
        self, key: str, source: Readable, *, size_hint: int | None = None
    ) -> UploadResult:
        chunks: list[bytes] = []
        while chunk := source.read(1 << 20):
            chunks.append(chunk)
        data = b"".join(chunks)
        self.put_bytes(key, data)
        plan = plan_parts(size_hint)
        hasher = PartsHasher(plan)  # the checksum S3Storage reports for the same bytes
        hasher.update(data)
        return UploadResult(
            key=key, size=len(data), checksum=PartsChecksum(hasher.hexdigest(), plan)
        )

    def open_stream(self, key: str) -> BinaryIO:
        return io.BytesIO(self.get_bytes(key))


class DirMemoryStore(MemoryStore):
    """A MemoryStore that lists common prefixes (after a key), as S3Storage.list_dirs does."""

    def list_dirs(self, prefix: str = "", *, start_after: str = "") -> list[str]:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        dirs = {
            prefix + key[len(prefix) :].split("/", 1)[0] + "/"
            for key in self.objects
            if key.startswith(prefix) and "/" in key[len(prefix) :] and key > start_after
        }
        return sorted(dirs)
