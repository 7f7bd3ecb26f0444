"""Key fingerprints: a short public id recorded with what a key encrypted."""

from __future__ import annotations

import re

import pytest

from database_backup.stream import generate_key
from database_backup.stream.crypto import fingerprint


def test_fingerprint_is_sixteen_hex_digits_and_stable() -> None:
    key = generate_key()

    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint(key))
    assert fingerprint(key) == fingerprint(bytes(key))


def test_different_keys_have_different_fingerprints() -> None:
    assert fingerprint(b"\x00" * 32) != fingerprint(b"\x00" * 31 + b"\x01")


def test_fingerprint_does_not_contain_the_key() -> None:
    key = bytes(range(32))

    assert key.hex()[:16] not in fingerprint(key)


def test_a_key_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        fingerprint(b"short")
