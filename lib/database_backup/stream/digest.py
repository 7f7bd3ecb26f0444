"""Pass-through stages that hash and count the bytes flowing through them."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from database_backup.byteio import Hasher, fill

from .base import ByteSource, StageReader, close_source, read_exact

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer


class CountingReader(StageReader):
    """Pass ``source`` through unchanged, counting bytes (``bytes_read``)."""

    def __init__(self, source: ByteSource) -> None:
        """Count the bytes read from ``source``."""
        super().__init__()
        self._source = source
        self.bytes_read = 0

    def _read(self, size: int) -> bytes:
        data = read_exact(self._source, size)
        self._took(data)
        return data

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        """Fill ``buffer``; fewer bytes only at the end.

        Straight from the source's own ``readinto`` when it has a working one (the bytes
        are copied once, into ``buffer``), else from its ``read``.
        """
        if self.closed:
            raise ValueError("read from a closed stream")
        with memoryview(buffer) as raw, raw.cast("B") as view:
            filled = fill(self._source, view)
            self._took(view[:filled])
        return filled

    def _took(self, data: bytes | memoryview) -> None:
        """Account for ``data``, which passes through now."""
        self.bytes_read += len(data)

    def _close_source(self) -> None:
        close_source(self._source)


class DigestReader(CountingReader):
    """Pass ``source`` through unchanged, computing its digest and length.

    ``sha256`` is the hex digest of the bytes read so far (the whole stream once read to
    the end), by ``hasher`` (default: SHA-256 of the whole stream); ``bytes_read`` their
    count.
    """

    def __init__(self, source: ByteSource, hasher: Hasher | None = None) -> None:
        """Hash the bytes read from ``source`` with ``hasher`` (default: SHA-256)."""
        super().__init__(source)
        self._hash: Hasher = hasher if hasher is not None else hashlib.sha256()

    @property
    def sha256(self) -> str:
        """Hex digest of the bytes read so far."""
        return self._hash.hexdigest()

    def _took(self, data: bytes | memoryview) -> None:
        super()._took(data)
        self._hash.update(data)
