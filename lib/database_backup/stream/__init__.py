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

import importlib
from typing import TYPE_CHECKING

from .base import READ_SIZE, ByteSource
from .errors import IntegrityError

if TYPE_CHECKING:
    from .compress import CompressReader, DecompressReader
    from .crypto import DecryptReader, EncryptReader, generate_key
    from .digest import CountingReader, DigestReader
    from .pipeline import decode, encode

# The stages load on first use (PEP 562): importing `stream.base` or `stream.errors` for a
# type must not load zstandard and cryptography into every process at start.
_LAZY = {
    "CompressReader": "compress",
    "DecompressReader": "compress",
    "DecryptReader": "crypto",
    "EncryptReader": "crypto",
    "generate_key": "crypto",
    "CountingReader": "digest",
    "DigestReader": "digest",
    "decode": "pipeline",
    "encode": "pipeline",
}


def __getattr__(name: str) -> object:
    """Import the stage module that defines ``name`` when it is first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
