"""The file-like base of every stream stage, and small reading helpers.

Every stage is a read-only, non-seekable file object: ``read(n)`` returns exactly ``n``
bytes unless the end of the stream is reached (so a multipart uploader that reads a part
size at a time never gets short parts), ``read()`` / ``read(-1)`` returns the rest.
Closing a stage closes its source.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

#: Read size used towards sources and for ``read(-1)``: large reads keep per-call Python
#: overhead negligible next to the work done in C (zstd, AES-GCM, SHA-256).
READ_SIZE = 1 << 20


class ByteSource(Protocol):
    """Anything with a binary ``read(n)``: files, pipes, other stages, S3 bodies."""

    def read(self, size: int = -1, /) -> bytes:
        """Return up to ``size`` bytes; ``b""`` at the end."""
        ...


def read_exact(source: ByteSource, size: int) -> bytes:
    """Read ``size`` bytes from ``source``, fewer only when it ends first.

    Args:
        source: where to read from; it may return short reads.
        size: how many bytes to return (> 0).

    Returns:
        The bytes read; shorter than ``size`` only at the end of ``source``.
    """
    data = source.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    missing = size - len(data)
    while missing:
        more = source.read(missing)
        if not more:
            break
        parts.append(more)
        missing -= len(more)
    return b"".join(parts)


def close_source(source: object) -> None:
    """Close ``source`` if it has a ``close()`` method."""
    close = getattr(source, "close", None)
    if callable(close):
        close()


class StageReader(io.RawIOBase):
    """Base class of the stages: file-like plumbing around ``_read(size)``.

    Subclasses implement ``_read(size)`` (``size`` > 0, returns exactly ``size`` bytes
    unless the stream ends) and optionally ``_close_source()``.
    """

    def readable(self) -> bool:
        """Return True: the stages are readable."""
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        """Read ``size`` bytes (fewer only at the end), or everything when ``size`` < 0."""
        if self.closed:
            raise ValueError("read from a closed stream")
        if size is None or size < 0:
            return self.readall()
        if size == 0:
            return b""
        return self._read(size)

    def readall(self) -> bytes:
        """Read to the end of the stream."""
        parts: list[bytes] = []
        while chunk := self.read(READ_SIZE):
            parts.append(chunk)
        return b"".join(parts)

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        """Read into a writable buffer, return the number of bytes stored."""
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        """Close this stage and its source."""
        if not self.closed:
            try:
                self._close_source()
            finally:
                super().close()

    def _read(self, size: int) -> bytes:
        raise NotImplementedError

    def _close_source(self) -> None:
        """Close what this stage reads from (override)."""


class ChunkedStageReader(StageReader):
    """A stage that produces its output in whole chunks (``_next_chunk()``)."""

    def __init__(self) -> None:
        super().__init__()
        self._chunk: bytes = b""
        self._pos = 0
        self._eof = False

    def _next_chunk(self) -> bytes:
        """Return the next output chunk, ``b""`` at the end (override)."""
        raise NotImplementedError

    def _available(self) -> int:
        """Bytes left in the current chunk, taking the next one when it is used up (0: end)."""
        available = len(self._chunk) - self._pos
        if available or self._eof:
            return available
        self._chunk = self._next_chunk()
        self._pos = 0
        if not self._chunk:
            self._eof = True
        return len(self._chunk)

    def _consumed(self, take: int) -> None:
        self._pos += take
        if self._pos == len(self._chunk):
            self._chunk = b""
            self._pos = 0

    def _read(self, size: int) -> bytes:
        parts: list[bytes] = []
        missing = size
        while missing and (available := self._available()):
            if self._pos == 0 and available <= missing:
                parts.append(self._chunk)  # whole chunk: no copy
                take = available
            else:
                take = min(available, missing)
                parts.append(self._chunk[self._pos : self._pos + take])
            self._consumed(take)
            missing -= take
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        """Fill ``buffer`` from the chunks (fewer bytes only at the end): one copy, no join."""
        if self.closed:
            raise ValueError("read from a closed stream")
        with memoryview(buffer) as raw, raw.cast("B") as view:
            filled = 0
            while filled < len(view) and (available := self._available()):
                take = min(available, len(view) - filled)
                start = self._pos
                view[filled : filled + take] = memoryview(self._chunk)[start : start + take]
                self._consumed(take)
                filled += take
        return filled
