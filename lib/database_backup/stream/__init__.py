"""Composable byte-stream stages: zstd compression, authenticated encryption, SHA-256.

Every stage is a read-only file object over a source with ``read(n)``; stages chain, and
memory stays bounded by a few chunks of about 1 MiB whatever the stream size. Typical use::

    stream, digest = encode(tool.stdout, compression_level=3, key=key)
    storage.upload_stream(key_name, stream)
    meta.sha256, meta.stored_size = digest.sha256, digest.bytes_read

    raw = decode(storage.open_stream(key_name), key=key, compressed=True,
                 expected_sha256=meta.sha256, expected_size=meta.stored_size)
    shutil.copyfileobj(raw, restore_tool.stdin, 1 << 20)  # IntegrityError on any damage
"""

from __future__ import annotations

from .base import READ_SIZE, ByteSource
from .compress import CompressReader, DecompressReader
from .crypto import DecryptReader, EncryptReader, generate_key
from .digest import CountingReader, DigestReader
from .errors import IntegrityError
from .pipeline import decode, encode

__all__ = [
    "READ_SIZE",
    "ByteSource",
    "CompressReader",
    "CountingReader",
    "DecompressReader",
    "DecryptReader",
    "DigestReader",
    "EncryptReader",
    "IntegrityError",
    "decode",
    "encode",
    "generate_key",
]
