"""Zstandard compression stages (multi-threaded compression, bounded-memory decompression)."""

from __future__ import annotations

from typing import IO, BinaryIO, cast

import zstandard

from .base import READ_SIZE, ByteSource, StageReader, close_source
from .errors import IntegrityError
from .frames import FrameFormatError, FrameTrackingReader

#: Highest zstd level accepted (``zstd --ultra`` levels need large windows: refused).
MAX_LEVEL = 19


def _as_io(source: ByteSource) -> IO[bytes]:
    """Type ``source`` for zstandard's stubs: its readers only ever call ``read(n)``."""
    return cast(IO[bytes], source)


class CompressReader(StageReader):
    """Read ``source`` compressed into one zstd frame (with a content checksum).

    Compression runs in zstd's own worker threads (``threads=-1``: one per CPU), outside
    the GIL, so it overlaps with the caller reading and uploading.
    """

    def __init__(self, source: ByteSource, level: int = 3, threads: int = -1) -> None:
        """Compress ``source`` at zstd ``level`` (1..19) with ``threads`` workers (-1: CPUs)."""
        if not 1 <= level <= MAX_LEVEL:
            raise ValueError(f"zstd compression level must be between 1 and {MAX_LEVEL}")
        super().__init__()
        self._source = source
        compressor = zstandard.ZstdCompressor(level=level, threads=threads, write_checksum=True)
        self._reader: BinaryIO = compressor.stream_reader(
            _as_io(source), read_size=READ_SIZE, closefd=False
        )

    def _read(self, size: int) -> bytes:
        data = self._reader.read(size)
        if len(data) == size or not data:
            return data
        parts = [data]
        missing = size - len(data)
        while missing and (more := self._reader.read(missing)):
            parts.append(more)
            missing -= len(more)
        return b"".join(parts)

    def _close_source(self) -> None:
        self._reader.close()
        close_source(self._source)


class DecompressReader(StageReader):
    """Read a zstd stream decompressed, with memory bounded by the read size.

    Raises ``IntegrityError`` on corrupt data, a content checksum mismatch, or when the
    input ends in the middle of a frame (a truncated upload).
    """

    def __init__(self, source: ByteSource) -> None:
        """Decompress the zstd frames read from ``source``."""
        super().__init__()
        self._tap = FrameTrackingReader(source)
        decompressor = zstandard.ZstdDecompressor()
        self._reader: BinaryIO = decompressor.stream_reader(
            _as_io(self._tap), read_size=READ_SIZE, read_across_frames=True, closefd=False
        )
        self._done = False

    def _read(self, size: int) -> bytes:
        if self._done:
            return b""
        parts: list[bytes] = []
        missing = size
        try:
            while missing:
                data = self._reader.read(missing)
                if not data:
                    self._finish()
                    break
                parts.append(data)
                missing -= len(data)
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"compressed data is corrupt: {exc}") from None
        except FrameFormatError as exc:
            raise IntegrityError(f"compressed data is corrupt: {exc}") from None
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def _finish(self) -> None:
        """At the decoder's end: the input must end exactly after a complete frame."""
        if self._tap.read(READ_SIZE):
            raise IntegrityError("compressed data is corrupt: unexpected bytes after the end")
        if not self._tap.tracker.at_frame_boundary:
            raise IntegrityError("compressed data is truncated: the zstd frame is incomplete")
        self._done = True

    def _close_source(self) -> None:
        self._reader.close()
        self._tap.close()
