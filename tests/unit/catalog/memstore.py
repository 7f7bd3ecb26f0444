"""An in-memory object store with S3Storage's interface, for pure catalog unit tests.

The workload tests (tests/workload/test_catalog.py) run the same catalog on real S3.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

from database_backup.storage import ObjectNotFoundError


@dataclass(frozen=True)
class Info:
    key: str
    size: int
    last_modified: datetime


class MemoryStore:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, datetime]] = {}
        self.writes: list[str] = []
        self.deletes: list[str] = []

    def put_bytes(self, key: str, data: bytes) -> None:
        self.objects[key] = (bytes(data), datetime.now(timezone.utc))
        self.writes.append(key)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.objects[key][0]
        except KeyError:
            raise ObjectNotFoundError(f"no object {key}") from None

    def head(self, key: str) -> Info:
        if key not in self.objects:
            raise ObjectNotFoundError(f"no object {key}")
        data, modified = self.objects[key]
        return Info(key, len(data), modified)

    def exists(self, key: str) -> bool:
        return key in self.objects

    def list(self, prefix: str = "") -> Iterator[Info]:
        for key in sorted(self.objects):
            if key.startswith(prefix):
                yield self.head(key)

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)
        self.deletes.append(key)

    def delete_prefix(self, prefix: str) -> int:
        keys = [key for key in self.objects if key.startswith(prefix)]
        for key in keys:
            self.delete(key)
        return len(keys)
