"""Authenticated, chunked encryption of a byte stream (AES-256-GCM).

Stored format, version 1::

    header  = MAGIC (8 bytes: b"DBBKENC" + version 1)
            | chunk size (4 bytes, big-endian, plaintext bytes per chunk)
            | salt (16 random bytes)
            | key check (16 bytes)
    chunks  = AES-256-GCM(chunk) | tag (16 bytes), repeated

Each stream derives its own keys from the user key and the salt with HKDF-SHA256: the
AES key, and a key-check key whose HMAC over the header identifies a wrong user key
before any data is decrypted. Chunk ``i`` uses the 96-bit nonce ``i`` (unique, since the
AES key is unique to the stream) and the associated data ``header | final flag``, so a
tampered header, reordered, dropped or appended chunks, and truncation (no chunk marked
final, or the final chunk cut) all fail authentication. Every chunk but the last holds
exactly ``chunk size`` bytes; the last one holds fewer (possibly none) and is flagged
final.
"""

from __future__ import annotations

import hmac
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .base import ByteSource, ChunkedStageReader, close_source, read_exact
from .errors import IntegrityError

KEY_SIZE = 32
MAGIC = b"DBBKENC\x01"
CHUNK_SIZE = 1 << 20
MAX_CHUNK_SIZE = 16 << 20
TAG_SIZE = 16
SALT_SIZE = 16
CHECK_SIZE = 16
HEADER_SIZE = len(MAGIC) + 4 + SALT_SIZE + CHECK_SIZE
_HKDF_INFO = b"database-backup stream encryption v1"
_FINGERPRINT_INFO = b"database-backup key fingerprint v1"
FINGERPRINT_SIZE = 8
_FINAL = b"\x01"
_NOT_FINAL = b"\x00"


def generate_key() -> bytes:
    """Return a new random 256-bit encryption key."""
    return os.urandom(KEY_SIZE)


def fingerprint(key: bytes) -> str:
    """A short public id of ``key`` (16 hex digits), recorded with what it encrypted.

    Derived with HKDF-SHA256 under its own label, so it reveals nothing usable about the
    key or the stream keys; two keys with the same fingerprint are, in practice, the same.
    """
    _check_key(key)
    derived = HKDF(
        algorithm=hashes.SHA256(), length=FINGERPRINT_SIZE, salt=None, info=_FINGERPRINT_INFO
    ).derive(bytes(key))
    return derived.hex()


def _check_key(key: object) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_SIZE:
        raise ValueError(f"the encryption key must be {KEY_SIZE} bytes")


def _derive(key: bytes, salt: bytes) -> tuple[AESGCM, bytes]:
    """Return the stream's cipher and key-check key."""
    material = HKDF(
        algorithm=hashes.SHA256(), length=2 * KEY_SIZE, salt=salt, info=_HKDF_INFO
    ).derive(bytes(key))
    return AESGCM(material[:KEY_SIZE]), material[KEY_SIZE:]


def _key_check(check_key: bytes, header_start: bytes) -> bytes:
    return hmac.digest(check_key, header_start, "sha256")[:CHECK_SIZE]


def _nonce(counter: int) -> bytes:
    return counter.to_bytes(12, "big")


class EncryptReader(ChunkedStageReader):
    """Read ``source`` encrypted (format above); the output is larger by 44 + 16/MiB bytes."""

    def __init__(self, source: ByteSource, key: bytes, *, chunk_size: int = CHUNK_SIZE) -> None:
        """Encrypt ``source`` with the 32-byte ``key`` in chunks of ``chunk_size`` bytes."""
        _check_key(key)
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk size must be between 1 and {MAX_CHUNK_SIZE}")
        super().__init__()
        self._source = source
        self._chunk_size = chunk_size
        salt = os.urandom(SALT_SIZE)
        self._aead, check_key = _derive(key, salt)
        start = MAGIC + struct.pack(">I", chunk_size) + salt
        self._header = start + _key_check(check_key, start)
        self._counter = -1  # -1: the header is next
        self._finished = False

    def _next_chunk(self) -> bytes:
        if self._finished:
            return b""
        if self._counter < 0:
            self._counter = 0
            return self._header
        plain = read_exact(self._source, self._chunk_size)
        final = len(plain) < self._chunk_size
        aad = self._header + (_FINAL if final else _NOT_FINAL)
        sealed = self._aead.encrypt(_nonce(self._counter), plain, aad)
        self._counter += 1
        self._finished = final
        return sealed

    def _close_source(self) -> None:
        close_source(self._source)


class DecryptReader(ChunkedStageReader):
    """Read a stream written by ``EncryptReader`` decrypted and authenticated.

    Raises ``IntegrityError`` for a wrong key, a foreign or corrupt header, a tampered,
    reordered or missing chunk, and truncation. Data is only returned once its chunk is
    authenticated; the end of the stream is only reported after the final chunk is.
    """

    def __init__(self, source: ByteSource, key: bytes) -> None:
        """Decrypt ``source`` with the 32-byte ``key``."""
        _check_key(key)
        super().__init__()
        self._source = source
        self._key = bytes(key)
        self._aead: AESGCM | None = None
        self._header = b""
        self._chunk_size = 0
        self._counter = 0
        self._finished = False

    def _read_header(self) -> AESGCM:
        header = read_exact(self._source, HEADER_SIZE)
        if len(header) < HEADER_SIZE:
            raise IntegrityError("encrypted data is truncated: the header is incomplete")
        if header[: len(MAGIC) - 1] != MAGIC[:-1]:
            raise IntegrityError("the data is not an encrypted backup stream (bad magic)")
        if header[: len(MAGIC)] != MAGIC:
            raise IntegrityError("unsupported encrypted stream version")
        start = header[: HEADER_SIZE - CHECK_SIZE]
        (chunk_size,) = struct.unpack(">I", start[len(MAGIC) : len(MAGIC) + 4])
        salt = start[len(MAGIC) + 4 :]
        aead, check_key = _derive(self._key, salt)
        if not hmac.compare_digest(_key_check(check_key, start), header[-CHECK_SIZE:]):
            raise IntegrityError(
                "decryption failed: the encryption key does not match this backup "
                "(or its header is corrupt)"
            )
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise IntegrityError("encrypted data is corrupt: invalid chunk size")
        self._header = header
        self._chunk_size = chunk_size
        return aead

    def _next_chunk(self) -> bytes:
        if self._finished:
            return b""
        if self._aead is None:
            self._aead = self._read_header()
        sealed = read_exact(self._source, self._chunk_size + TAG_SIZE)
        if len(sealed) < TAG_SIZE:
            raise IntegrityError("encrypted data is truncated: the final chunk is missing")
        final = len(sealed) < self._chunk_size + TAG_SIZE
        aad = self._header + (_FINAL if final else _NOT_FINAL)
        try:
            plain = self._aead.decrypt(_nonce(self._counter), sealed, aad)
        except InvalidTag:
            raise IntegrityError(
                f"encrypted data failed authentication at chunk {self._counter}: "
                "it was tampered with, reordered or truncated"
            ) from None
        self._counter += 1
        if final:
            self._finished = True
            if not plain:
                return self._next_chunk()  # an empty final chunk: the end
        return plain

    def _close_source(self) -> None:
        close_source(self._source)
