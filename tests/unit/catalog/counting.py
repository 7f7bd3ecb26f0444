"""A request-counting ObjectStore wrapper: what a catalog operation costs, in S3 requests.

Listings are counted in pages of 1,000 keys (or common prefixes), as S3 serves them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from typing import Any, BinaryIO

from database_backup.storage import ObjectInfo, Readable, UploadResult

PAGE = 1000


class CountingStore:
    """Wraps a MemoryStore (or anything with its methods) and counts the requests."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()

    @property
    def requests(self) -> int:
        return sum(self.counts.values())

    def reset(self) -> None:
        self.counts.clear()

    def __getattr__(self, name: str) -> Any:  # the rest of the interface, uncounted
        return getattr(self.inner, name)

    def check(self) -> None:
        self.counts["head-bucket"] += 1

    def put_bytes(self, key: str, data: bytes) -> None:
        self.counts["put"] += 1
        self.inner.put_bytes(key, data)

    def get_bytes(self, key: str) -> bytes:
        self.counts["get"] += 1
        return self.inner.get_bytes(key)

    def head(self, key: str) -> ObjectInfo:
        self.counts["head"] += 1
        return self.inner.head(key)

    def exists(self, key: str) -> bool:
        self.counts["head"] += 1
        return self.inner.exists(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        found = list(self.inner.list(prefix))
        self.counts["list"] += max(1, math.ceil(len(found) / PAGE))
        return iter(found)

    def list_dirs(self, prefix: str = "", *, start_after: str = "") -> list[str]:
        found = self.inner.list_dirs(prefix, start_after=start_after)
        self.counts["list"] += max(1, math.ceil(len(found) / PAGE))
        return found

    def delete(self, key: str) -> None:
        self.counts["delete"] += 1
        self.inner.delete(key)

    def upload_stream(
        self, key: str, source: Readable, *, size_hint: int | None = None
    ) -> UploadResult:
        self.counts["put"] += 1
        return self.inner.upload_stream(key, source, size_hint=size_hint)

    def open_stream(self, key: str) -> BinaryIO:
        self.counts["get"] += 1
        return self.inner.open_stream(key)

    def delete_prefix(self, prefix: str) -> int:
        keys = list(self.inner.list(prefix))
        self.counts["list"] += max(1, math.ceil(len(keys) / PAGE))
        self.counts["delete"] += math.ceil(len(keys) / PAGE)
        return self.inner.delete_prefix(prefix)
