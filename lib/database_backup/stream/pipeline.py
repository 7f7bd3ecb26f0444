"""Composition of the stages for storing and for reading back a backup stream.

Storing: ``source -> [zstd, independent frames] -> [encrypt] -> digest`` (the digest and
size describe the stored bytes, i.e. what is in object storage). Reading back:
``stored -> digest -> [decrypt] -> [zstd -d, frames in parallel] -> verify`` (frames:
see ``parallel``): at the end of the stream the digest and size of the stored bytes are
compared with the catalog's, and the final read raises ``IntegrityError`` on a
mismatch, so a consumer extracting into a staging directory learns about it before it
swaps anything in.
"""

from __future__ import annotations

from typing import BinaryIO, Literal, cast, overload

from database_backup.byteio import Hasher

from .base import READ_SIZE, ByteSource, StageReader, close_source
from .digest import CountingReader, DigestReader
from .errors import IntegrityError
from .parallel import AutoDecompressReader, FramedCompressReader


@overload
def encode(
    source: ByteSource,
    *,
    compression_level: int | None,
    key: bytes | None,
    sha256: Literal[True] = True,
) -> tuple[BinaryIO, DigestReader]: ...


@overload
def encode(
    source: ByteSource, *, compression_level: int | None, key: bytes | None, sha256: Literal[False]
) -> tuple[BinaryIO, CountingReader]: ...


def encode(
    source: ByteSource, *, compression_level: int | None, key: bytes | None, sha256: bool = True
) -> tuple[BinaryIO, CountingReader]:
    """Build the storing pipeline over ``source``.

    Args:
        source: the raw backup stream (a pipe from the backup tool, a file...).
        compression_level: zstd level, or None for no compression.
        key: 32-byte encryption key, or None for no encryption.
        sha256: hash the stored bytes (a `DigestReader`); False when the upload hashes
            them itself (`S3Storage.upload_stream` reports the object's checksum), so
            they are hashed once.

    Returns:
        ``(stream, counter)``: read ``stream`` to its end (e.g. upload it); then
        ``counter.bytes_read`` (and ``counter.sha256`` with ``sha256``) describe the
        stored bytes. ``stream`` is the counting stage itself.
    """
    stage: ByteSource = source
    if compression_level is not None:
        stage = FramedCompressReader(stage, level=compression_level)
    if key is not None:
        from .crypto import EncryptReader  # cryptography loads only for encrypted streams

        stage = EncryptReader(stage, key)
    counter = DigestReader(stage) if sha256 else CountingReader(stage)
    return cast(BinaryIO, counter), counter


class VerifyingReader(StageReader):
    """At the end of ``inner``, check the digest and size of the stored bytes."""

    def __init__(
        self,
        inner: ByteSource,
        digest: DigestReader,
        expected_sha256: str | None,
        expected_size: int | None,
    ) -> None:
        """Verify ``digest`` (the stored bytes under ``inner``) when ``inner`` ends."""
        super().__init__()
        self._inner = inner
        self._digest = digest
        self._sha256 = expected_sha256.lower() if expected_sha256 else None
        self._size = expected_size
        self._verified = False

    def _read(self, size: int) -> bytes:
        if self._verified:
            return b""
        data = self._inner.read(size)
        if self._size is not None and self._digest.bytes_read > self._size:
            raise IntegrityError(
                f"stored data is longer than recorded ({self._size} bytes): wrong or "
                "modified object"
            )
        if len(data) < size:
            self._verify()
        return data

    def _verify(self) -> None:
        # stored bytes the decoder did not need (trailing data) still count
        while self._digest.read(READ_SIZE):
            pass
        stored = self._digest.bytes_read
        if self._size is not None and stored != self._size:
            raise IntegrityError(
                f"stored data has {stored} bytes, {self._size} were recorded: "
                "the object is truncated or was modified"
            )
        if self._sha256 is not None and self._digest.sha256 != self._sha256:
            raise IntegrityError(
                "stored data does not match its recorded checksum: the object is corrupt "
                "or was modified"
            )
        self._verified = True

    def _close_source(self) -> None:
        close_source(self._inner)


def decode(
    source: ByteSource,
    *,
    key: bytes | None,
    compressed: bool,
    expected_sha256: str | None,
    expected_size: int | None,
    hasher: Hasher | None = None,
) -> BinaryIO:
    """Build the reading-back pipeline over the stored bytes ``source``.

    Args:
        source: the stored stream (e.g. an S3 download).
        key: the encryption key if the stream is encrypted, else None.
        compressed: whether the stream is zstd-compressed.
        expected_sha256: recorded hex digest of the stored bytes, or None.
        expected_size: recorded size of the stored bytes, or None.
        hasher: what computed ``expected_sha256`` (default: SHA-256 of the whole
            stream; a ``storage.checksum.PartsHasher`` for a checksum of parts).

    Returns:
        The raw stream. Its reads raise ``IntegrityError`` on any corruption; the read
        that reaches the end raises it when the digest or size differ from the record.
    """
    digest = DigestReader(source, hasher)
    stage: ByteSource = digest
    if key is not None:
        from .crypto import DecryptReader  # as in encode

        stage = DecryptReader(stage, key)
    if compressed:
        stage = AutoDecompressReader(stage)
    return cast(BinaryIO, VerifyingReader(stage, digest, expected_sha256, expected_size))
