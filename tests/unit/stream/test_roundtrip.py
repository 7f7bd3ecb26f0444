"""Round trips through the stages and the encode/decode pipelines (property-based)."""

from __future__ import annotations

import hashlib
import io
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from database_backup.stream import (
    ByteSource,
    CompressReader,
    CountingReader,
    DecompressReader,
    DecryptReader,
    DigestReader,
    EncryptReader,
    decode,
    encode,
    generate_key,
)

from .helpers import ShortReads, read_all

# Mostly compressible data (repeated runs) with random bytes mixed in.
payloads = st.one_of(
    st.binary(max_size=4096),
    st.lists(st.tuples(st.binary(min_size=1, max_size=64), st.integers(1, 512)), max_size=40).map(
        lambda runs: b"".join(block * count for block, count in runs)
    ),
)
KEY = generate_key()


def read_in_steps(stream: ByteSource, sizes: list[int]) -> bytes:
    """Read with a cycling list of sizes; check every read is full unless at the end."""
    parts: list[bytes] = []
    step = 0
    while True:
        size = sizes[step % len(sizes)]
        step += 1
        chunk = stream.read(size)
        assert len(chunk) <= size
        parts.append(chunk)
        if len(chunk) < size:
            assert stream.read(size) == b""
            return b"".join(parts)


@settings(max_examples=60, deadline=None)
@given(
    data=payloads,
    level=st.sampled_from([None, 1, 3, 9]),
    encrypted=st.booleans(),
    read_sizes=st.lists(st.integers(1, 70_000), min_size=1, max_size=5),
)
def test_encode_decode_round_trip(
    data: bytes, level: int | None, encrypted: bool, read_sizes: list[int]
) -> None:
    key = KEY if encrypted else None
    stream, digest = encode(io.BytesIO(data), compression_level=level, key=key)
    stored = read_in_steps(stream, read_sizes)

    assert digest.bytes_read == len(stored)
    assert digest.sha256 == hashlib.sha256(stored).hexdigest()
    if encrypted and len(data) >= 16:
        assert data[:16] not in stored
    raw = decode(
        io.BytesIO(stored),
        key=key,
        compressed=level is not None,
        expected_sha256=digest.sha256,
        expected_size=digest.bytes_read,
    )
    assert read_in_steps(raw, read_sizes) == data


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(max_size=3000),
    chunk_size=st.integers(1, 300),
    source_limit=st.integers(1, 500),
)
def test_encryption_round_trip_small_chunks_and_short_reads(
    data: bytes, chunk_size: int, source_limit: int
) -> None:
    sealed = read_all(EncryptReader(ShortReads(data, source_limit), KEY, chunk_size=chunk_size))

    chunks = len(data) // chunk_size + 1  # the last chunk is short, possibly empty
    assert len(sealed) == 44 + len(data) + 16 * chunks
    assert read_all(DecryptReader(ShortReads(sealed, source_limit), KEY), 97) == data


@settings(max_examples=40, deadline=None)
@given(data=payloads, level=st.integers(1, 19), source_limit=st.integers(1, 5000))
def test_compression_round_trip(data: bytes, level: int, source_limit: int) -> None:
    compressed = read_all(CompressReader(ShortReads(data, source_limit), level=level))

    assert read_all(DecompressReader(ShortReads(compressed, source_limit)), 1000) == data


def test_encryption_is_randomised_per_stream() -> None:
    data = b"same data" * 1000
    first = read_all(EncryptReader(io.BytesIO(data), KEY))
    second = read_all(EncryptReader(io.BytesIO(data), KEY))

    assert first != second
    assert first[:12] == second[:12]  # magic and chunk size
    assert read_all(DecryptReader(io.BytesIO(second), KEY)) == data


def test_compression_shrinks_compressible_data() -> None:
    data = b"0123456789abcdef" * 65536

    compressed = read_all(CompressReader(io.BytesIO(data), level=3, threads=2))

    assert len(compressed) < len(data) // 100


def test_concatenated_frames_decompress_as_one_stream() -> None:
    first = read_all(CompressReader(io.BytesIO(b"first part "), level=1))
    second = read_all(CompressReader(io.BytesIO(b"second part"), level=5))

    assert read_all(DecompressReader(io.BytesIO(first + second))) == b"first part second part"


def test_multi_megabyte_round_trip_matches() -> None:
    data = bytes(range(256)) * 20_000 + b"tail"  # ~5 MB, several 1 MiB chunks
    stream, digest = encode(io.BytesIO(data), compression_level=3, key=KEY)
    stored = read_all(stream, 5 << 20)

    raw = decode(
        io.BytesIO(stored),
        key=KEY,
        compressed=True,
        expected_sha256=digest.sha256,
        expected_size=digest.bytes_read,
    )
    assert read_all(raw, 3 << 20) == data


def test_stages_are_file_objects() -> None:
    source = io.BytesIO(b"x" * 5000)
    stage = CountingReader(source)

    assert stage.readable()
    assert not stage.writable()
    assert not stage.seekable()
    assert stage.read(0) == b""
    buffer = bytearray(1000)
    assert stage.readinto(buffer) == 1000
    assert buffer == b"x" * 1000
    assert stage.read() == b"x" * 4000
    assert stage.read(10) == b""
    assert stage.bytes_read == 5000
    stage.close()
    assert source.closed  # closing a stage closes its source


def test_closing_the_pipeline_closes_the_source_and_refuses_reads() -> None:
    source = io.BytesIO(b"data" * 100)
    stream, _ = encode(source, compression_level=3, key=KEY)

    stream.close()

    assert source.closed
    with pytest.raises(ValueError, match="closed"):
        stream.read(10)


def test_pipeline_feeds_copyfileobj_and_counts_raw_bytes() -> None:
    data = b"payload " * 300_000
    raw_counter = CountingReader(io.BytesIO(data))
    stream, digest = encode(raw_counter, compression_level=3, key=None)
    sink = io.BytesIO()

    shutil.copyfileobj(stream, sink, 1 << 20)

    assert raw_counter.bytes_read == len(data)
    assert digest.bytes_read == len(sink.getvalue())
    assert read_all(DecompressReader(io.BytesIO(sink.getvalue()))) == data


def test_digest_reader_passes_bytes_through_and_hashes_them() -> None:
    data = bytes(range(256)) * 1000
    reader = DigestReader(ShortReads(data, 777))

    assert read_all(reader, 4096) == data
    assert reader.sha256 == hashlib.sha256(data).hexdigest()
    assert reader.bytes_read == len(data)
