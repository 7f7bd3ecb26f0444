"""Helpers for the stream tests: a generated source stream and read loops."""

from __future__ import annotations

import hashlib
import io
import random

from database_backup.stream import ByteSource
from database_backup.stream.base import StageReader

MIB = 1 << 20


class GeneratedSource(StageReader):
    """A deterministic stream of ``size`` bytes, about 2:1 compressible, made on the fly.

    It keeps a fixed 4 MiB pool whatever ``size`` is, and hashes what it hands out.
    """

    def __init__(self, size: int, seed: int = 7) -> None:
        super().__init__()
        rnd = random.Random(seed)  # noqa: S311 - test data, not secrets
        table = bytes(b"abcdefghijklmnop"[i % 16] for i in range(256))
        self._pool = rnd.randbytes(3 * MIB).translate(table) + bytes(MIB)
        self._left = size
        self._offset = 0
        self.hash = hashlib.sha256()

    def _read(self, size: int) -> bytes:
        size = min(size, self._left)
        parts: list[bytes] = []
        missing = size
        while missing:
            take = min(missing, len(self._pool) - self._offset)
            parts.append(self._pool[self._offset : self._offset + take])
            # a step that is not a divisor of the pool: the stream does not repeat exactly
            self._offset = (self._offset + take + 4093) % len(self._pool)
            missing -= take
        data = b"".join(parts)
        self._left -= size
        self.hash.update(data)
        return data


class ShortReads(io.RawIOBase):
    """A source that returns at most ``limit`` bytes per read (like a pipe)."""

    def __init__(self, data: bytes, limit: int) -> None:
        super().__init__()
        self._data = io.BytesIO(data)
        self._limit = limit

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            size = self._limit
        return self._data.read(min(size, self._limit))


def read_all(stream: ByteSource, size: int = MIB) -> bytes:
    """Read ``stream`` to its end ``size`` bytes at a time."""
    parts: list[bytes] = []
    while chunk := stream.read(size):
        parts.append(chunk)
    return b"".join(parts)


def drain(stream: ByteSource, size: int = MIB) -> tuple[int, str]:
    """Read ``stream`` to its end; return its length and SHA-256."""
    digest = hashlib.sha256()
    total = 0
    while chunk := stream.read(size):
        digest.update(chunk)
        total += len(chunk)
    return total, digest.hexdigest()
