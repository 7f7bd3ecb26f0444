"""Damage detection: tampering, truncation, wrong keys, reordering, digest and size checks."""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from database_backup.storage.checksum import PartsHasher
from database_backup.storage.parts import PartPlan
from database_backup.stream import (
    CompressReader,
    DecompressReader,
    DecryptReader,
    EncryptReader,
    IntegrityError,
    decode,
    encode,
    generate_key,
)
from database_backup.stream.crypto import HEADER_SIZE, TAG_SIZE

from .helpers import read_all

KEY = generate_key()
CHUNK = 64
PLAIN = bytes(range(256)) * 2 + b"end"  # 515 bytes: 8 full chunks of 64 and a short one
SEALED = read_all(EncryptReader(io.BytesIO(PLAIN), KEY, chunk_size=CHUNK))
SEALED_CHUNK = CHUNK + TAG_SIZE


def sealed_chunks(sealed: bytes) -> tuple[bytes, list[bytes]]:
    body = sealed[HEADER_SIZE:]
    return sealed[:HEADER_SIZE], [
        body[i : i + SEALED_CHUNK] for i in range(0, len(body), SEALED_CHUNK)
    ]


def decrypt(sealed: bytes, key: bytes = KEY) -> bytes:
    return read_all(DecryptReader(io.BytesIO(sealed), key), 100)


def test_fixture_stream_has_the_expected_shape() -> None:
    header, chunks = sealed_chunks(SEALED)

    assert len(header) == HEADER_SIZE
    assert len(chunks) == 9
    assert len(chunks[-1]) == 3 + TAG_SIZE
    assert decrypt(SEALED) == PLAIN


def test_every_single_byte_change_is_detected() -> None:
    for position in range(len(SEALED)):
        damaged = bytearray(SEALED)
        damaged[position] ^= 0x01
        with pytest.raises(IntegrityError):
            decrypt(bytes(damaged))


def test_every_truncation_is_detected() -> None:
    for length in range(len(SEALED)):
        with pytest.raises(IntegrityError):
            decrypt(SEALED[:length])


def test_truncation_at_a_chunk_boundary_is_reported_as_truncation() -> None:
    data = b"a" * (CHUNK * 3)  # exact multiple: an empty final chunk follows
    sealed = read_all(EncryptReader(io.BytesIO(data), KEY, chunk_size=CHUNK))
    header, chunks = sealed_chunks(sealed)
    assert len(chunks) == 4
    assert len(chunks[-1]) == TAG_SIZE

    with pytest.raises(IntegrityError, match="truncated"):
        decrypt(header + b"".join(chunks[:3]))
    assert decrypt(sealed) == data


def test_data_before_the_error_is_authenticated() -> None:
    damaged = bytearray(SEALED)
    damaged[HEADER_SIZE + 5 * SEALED_CHUNK + 7] ^= 0x80
    reader = DecryptReader(io.BytesIO(bytes(damaged)), KEY)

    assert reader.read(5 * CHUNK) == PLAIN[: 5 * CHUNK]
    with pytest.raises(IntegrityError, match="chunk 5"):
        reader.read(1)


@pytest.mark.parametrize(
    "rearrange",
    [
        pytest.param(lambda c: [c[1], c[0], *c[2:]], id="swap-first-two"),
        pytest.param(lambda c: [*c[:3], *c[4:]], id="drop-middle"),
        pytest.param(lambda c: [*c[:3], c[3], c[3], *c[4:]], id="duplicate"),
        pytest.param(lambda c: [*c[:-2], c[-1]], id="drop-before-final"),
        pytest.param(lambda c: [*c, c[-1]], id="repeat-final"),
        pytest.param(lambda c: c[:-1], id="drop-final"),
        pytest.param(lambda c: [*c[:-1], c[-1][:-1]], id="cut-final-tag"),
        pytest.param(lambda c: [*c, b"trailing"], id="append-garbage"),
    ],
)
def test_reordered_dropped_or_added_chunks_are_detected(
    rearrange: Callable[[list[bytes]], list[bytes]],
) -> None:
    header, chunks = sealed_chunks(SEALED)

    with pytest.raises(IntegrityError):
        decrypt(header + b"".join(rearrange(chunks)))


def test_chunks_from_another_stream_with_the_same_key_are_rejected() -> None:
    other = read_all(EncryptReader(io.BytesIO(PLAIN), KEY, chunk_size=CHUNK))
    header, chunks = sealed_chunks(SEALED)
    other_header, other_chunks = sealed_chunks(other)

    with pytest.raises(IntegrityError):
        decrypt(header + b"".join([*chunks[:2], other_chunks[2], *chunks[3:]]))
    with pytest.raises(IntegrityError):
        decrypt(other_header + b"".join(chunks))


def test_wrong_key_is_reported_as_such_without_revealing_keys() -> None:
    wrong = generate_key()

    with pytest.raises(IntegrityError, match="encryption key does not match") as caught:
        decrypt(SEALED, wrong)

    message = str(caught.value)
    for secret in (KEY, wrong):
        assert secret.hex() not in message
        assert repr(secret) not in message


def test_non_encrypted_data_is_refused() -> None:
    with pytest.raises(IntegrityError, match="not an encrypted backup stream"):
        decrypt(b"just some plain text that is long enough to be a header")
    with pytest.raises(IntegrityError, match="truncated"):
        decrypt(b"")


@pytest.mark.parametrize("key", [b"", b"short", bytes(31), bytes(33)])
def test_bad_key_lengths_are_refused(key: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        EncryptReader(io.BytesIO(b"x"), key)
    with pytest.raises(ValueError, match="32 bytes"):
        DecryptReader(io.BytesIO(b"x"), key)


def test_generated_keys_are_32_random_bytes() -> None:
    keys = {generate_key() for _ in range(20)}

    assert len(keys) == 20
    assert all(len(key) == 32 for key in keys)


# zstd -------------------------------------------------------------------------------

COMPRESSIBLE = b"".join(b"line %d of a log-like text\n" % i for i in range(3000))
COMPRESSED = read_all(CompressReader(io.BytesIO(COMPRESSIBLE), level=3))


def decompress(data: bytes) -> bytes:
    return read_all(DecompressReader(io.BytesIO(data)), 10_000)


def test_every_truncation_of_a_compressed_stream_is_detected() -> None:
    assert decompress(COMPRESSED) == COMPRESSIBLE
    for length in range(len(COMPRESSED)):
        with pytest.raises(IntegrityError):
            decompress(COMPRESSED[:length])


def test_no_single_byte_change_of_a_compressed_stream_yields_different_data() -> None:
    # A few header/table bits do not affect the output (e.g. the window size): those
    # decode to the same bytes. Every other change must be an error, never other data.
    detected = 0
    for position in range(len(COMPRESSED)):
        damaged = bytearray(COMPRESSED)
        damaged[position] ^= 0x04
        try:
            assert decompress(bytes(damaged)) == COMPRESSIBLE
        except IntegrityError:
            detected += 1
    assert detected > len(COMPRESSED) * 0.95


def test_trailing_garbage_after_a_compressed_stream_is_detected() -> None:
    with pytest.raises(IntegrityError, match="corrupt"):
        decompress(COMPRESSED + b"garbage!")


def test_skippable_frames_are_passed_over() -> None:
    skippable = (0x184D2A53).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"12345"

    assert decompress(skippable + COMPRESSED + skippable) == COMPRESSIBLE


def test_highly_compressible_data_decompresses_in_bounded_pieces() -> None:
    compressed = read_all(CompressReader(io.BytesIO(bytes(64 << 20)), level=3))
    assert len(compressed) < 64 << 10
    reader = DecompressReader(io.BytesIO(compressed))

    sizes = {len(reader.read(1 << 20)) for _ in range(64)}

    assert sizes == {1 << 20}
    assert reader.read(1) == b""


@pytest.mark.parametrize("level", [0, 20, -1])
def test_bad_compression_levels_are_refused(level: int) -> None:
    with pytest.raises(ValueError, match="level"):
        CompressReader(io.BytesIO(b""), level=level)


# pipeline verification ---------------------------------------------------------------


def encoded(data: bytes, *, level: int | None = 3, key: bytes | None = None) -> tuple[bytes, str]:
    stream, digest = encode(io.BytesIO(data), compression_level=level, key=key)
    stored = read_all(stream)
    return stored, digest.sha256


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "encrypted"])
@pytest.mark.parametrize("level", [None, 3], ids=["raw", "zstd"])
def test_digest_mismatch_is_raised_by_the_final_read(level: int | None, key: bytes | None) -> None:
    data = b"backup data " * 200_000  # 2.4 MB
    stored, _ = encoded(data, level=level, key=key)
    wrong_sha = hashlib.sha256(b"something else").hexdigest()
    raw = decode(
        io.BytesIO(stored),
        key=key,
        compressed=level is not None,
        expected_sha256=wrong_sha,
        expected_size=len(stored),
    )

    received = bytearray()
    with pytest.raises(IntegrityError, match="recorded checksum"):  # noqa: PT012
        while True:
            chunk = raw.read(1 << 20)
            assert chunk, "the end of a stream with a wrong digest was reported"
            received += chunk
    # the error comes at the end: what came before it was the data
    assert len(received) > len(data) // 2
    assert data.startswith(received)


@pytest.mark.parametrize("delta", [-1, 1])
def test_size_mismatch_is_detected(delta: int) -> None:
    stored, sha = encoded(b"some data" * 1000, level=None)

    raw = decode(
        io.BytesIO(stored),
        key=None,
        compressed=False,
        expected_sha256=sha,
        expected_size=len(stored) + delta,
    )

    with pytest.raises(IntegrityError, match="recorded"):
        read_all(raw)


def test_trailing_bytes_after_an_encrypted_stream_fail_the_size_check() -> None:
    stored, sha = encoded(b"abc" * 1000, level=3, key=KEY)

    raw = decode(
        io.BytesIO(stored + b"\0"),
        key=KEY,
        compressed=True,
        expected_sha256=sha,
        expected_size=len(stored),
    )

    with pytest.raises(IntegrityError):
        read_all(raw)


def test_matching_digest_and_size_pass_and_uppercase_hex_is_accepted() -> None:
    data = b"ok" * 5000
    stored, sha = encoded(data, level=3, key=KEY)

    raw = decode(
        io.BytesIO(stored),
        key=KEY,
        compressed=True,
        expected_sha256=sha.upper(),
        expected_size=len(stored),
    )

    assert read_all(raw) == data
    assert raw.read(10) == b""


@settings(max_examples=50, deadline=None)
@given(data=st.binary(min_size=1, max_size=5000), cut=st.integers(1, 5000))
def test_any_truncated_pipeline_stream_is_detected(data: bytes, cut: int) -> None:
    stored, _ = encoded(data, level=3, key=KEY)
    cut = min(cut, len(stored))

    with pytest.raises(IntegrityError):
        read_all(
            decode(
                io.BytesIO(stored[:-cut]),
                key=KEY,
                compressed=True,
                expected_sha256=None,
                expected_size=None,
            )
        )


@settings(max_examples=50, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=5000), where=st.integers(0, 10**6), bit=st.integers(0, 7)
)
def test_any_flipped_bit_in_a_plain_stream_fails_the_digest(
    data: bytes, where: int, bit: int
) -> None:
    stored, sha = encoded(data, level=None)
    damaged = bytearray(stored)
    damaged[where % len(damaged)] ^= 1 << bit

    with pytest.raises(IntegrityError, match="recorded checksum"):
        read_all(
            decode(
                io.BytesIO(bytes(damaged)),
                key=None,
                compressed=False,
                expected_sha256=sha,
                expected_size=len(stored),
            )
        )


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "encrypted"])
def test_a_checksum_of_parts_is_verified_at_the_end(key: bytes | None) -> None:
    """The parts hasher a backup's `parts-sha256` names: the right plan passes."""
    data = random.Random(7).randbytes(300_000)  # noqa: S311 - incompressible test data
    stream, counter = encode(io.BytesIO(data), compression_level=3, key=key, sha256=False)
    stored = read_all(stream)
    plan = PartPlan(base=1024)
    hasher = PartsHasher(plan)
    hasher.update(stored)

    def decoded(cut_by: PartPlan) -> bytes:
        raw = decode(
            io.BytesIO(stored),
            key=key,
            compressed=True,
            expected_sha256=hasher.hexdigest(),
            expected_size=counter.bytes_read,
            hasher=PartsHasher(cut_by),
        )
        return read_all(raw)

    assert len(stored) > 2048  # several parts either way
    assert decoded(plan) == data
    with pytest.raises(IntegrityError, match="recorded checksum"):
        decoded(PartPlan(base=2048))
