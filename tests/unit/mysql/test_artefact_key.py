"""The engine refuses a key whose fingerprint differs from the backup's, before reading it."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from database_backup.catalog import BackupMetadata
from database_backup.mysql.objects import check_key, decode_artefact
from database_backup.stream import IntegrityError, encode, generate_key
from database_backup.stream.crypto import fingerprint
from tests.unit.catalog.factories import backup

KEY = generate_key()
OTHER = generate_key()


class Untouchable(io.BytesIO):
    """A source that fails the test if a byte is read."""

    def read(self, size: int | None = -1, /) -> bytes:
        raise AssertionError("the artefact was read")


def encrypted(key_fingerprint: str | None) -> BackupMetadata:
    return replace(backup("b1", 1), encrypted=True, key_fingerprint=key_fingerprint)


def test_a_key_with_another_fingerprint_is_refused_before_a_byte_is_read() -> None:
    meta = encrypted(fingerprint(KEY))

    with pytest.raises(IntegrityError, match=f"fingerprint {fingerprint(KEY)}") as caught:
        decode_artefact(Untouchable(), meta, OTHER)

    assert fingerprint(OTHER) in str(caught.value)


def test_check_key_names_the_backup_and_both_fingerprints() -> None:
    with pytest.raises(IntegrityError, match="backup b1") as caught:
        check_key(encrypted(fingerprint(KEY)), OTHER)

    assert fingerprint(KEY) in str(caught.value)
    assert fingerprint(OTHER) in str(caught.value)


def test_the_right_key_and_old_backups_without_a_fingerprint_pass() -> None:
    check_key(encrypted(fingerprint(KEY)), KEY)
    check_key(encrypted(None), OTHER)  # recorded before fingerprints: the stream decides
    check_key(backup("plain", 1), None)


def test_the_right_key_decodes() -> None:
    stored, digest = encode(io.BytesIO(b"data"), compression_level=None, key=KEY)
    body = stored.read()
    meta = replace(
        encrypted(fingerprint(KEY)),
        compression="none",
        sha256=digest.sha256,
        stored_size=len(body),
    )

    assert decode_artefact(io.BytesIO(body), meta, KEY).read() == b"data"
