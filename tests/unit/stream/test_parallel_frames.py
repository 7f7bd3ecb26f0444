"""Framed zstd: independent frames written by the backup, decoded in parallel on restore."""

from __future__ import annotations

import io
import shutil
import subprocess
import threading
import time

import pytest

from database_backup.stream import CompressReader, IntegrityError, decode, encode, generate_key
from database_backup.stream.parallel import (
    END_TAG,
    FRAME_SIZE,
    MARKER_SIZE,
    AutoDecompressReader,
    FramedCompressReader,
    ParallelDecompressReader,
    marker,
    parse_marker,
)

from .helpers import MIB, GeneratedSource, read_all

SIZE = 3 * FRAME_SIZE + 12345  # four frames, the last one short


def generated(size: int = SIZE) -> bytes:
    return read_all(GeneratedSource(size))


RAW = generated()


def frame_offsets(stored: bytes) -> list[tuple[int, int, int]]:
    """(offset, compressed size, raw size) of each frame marker of a framed stream."""
    found: list[tuple[int, int, int]] = []
    offset = 0
    while True:
        parsed = parse_marker(stored[offset : offset + MARKER_SIZE])
        assert parsed is not None, f"no marker at {offset}"
        tag, compressed, raw = parsed
        if tag == END_TAG:
            assert (compressed, raw) == (len(found), sum(item[2] for item in found))
            assert offset + MARKER_SIZE == len(stored)
            return found
        found.append((offset, compressed, raw))
        offset += MARKER_SIZE + compressed


def framed(raw: bytes = RAW) -> bytes:
    stored, _ = encode(io.BytesIO(raw), compression_level=3, key=None)
    return read_all(stored)


def restore(stored: bytes, key: bytes | None = None) -> bytes:
    reader = decode(
        io.BytesIO(stored), key=key, compressed=True, expected_sha256=None, expected_size=None
    )
    return read_all(reader, 1 << 20)


def test_the_backup_writes_one_independent_frame_per_frame_size_of_input() -> None:
    stored = framed()

    frames = frame_offsets(stored)

    assert [raw for _, _, raw in frames] == [FRAME_SIZE, FRAME_SIZE, FRAME_SIZE, 12345]
    assert len(stored) < len(RAW)  # compressed


def test_a_multi_frame_stream_restores_byte_identical_with_encryption_and_digest() -> None:
    key = generate_key()
    stored_reader, digest = encode(io.BytesIO(RAW), compression_level=3, key=key)
    stored = read_all(stored_reader)

    reader = decode(
        io.BytesIO(stored),
        key=key,
        compressed=True,
        expected_sha256=digest.sha256,
        expected_size=digest.bytes_read,
    )

    assert read_all(reader, 300_000) == RAW


def test_the_stock_zstd_tool_still_decompresses_a_framed_stream() -> None:
    zstd = shutil.which("zstd")
    assert zstd is not None, "zstd is a system dependency (scripts/install-system-deps.sh)"

    out = subprocess.run([zstd, "-d", "-c"], input=framed(), capture_output=True, check=True)

    assert out.stdout == RAW


def test_an_old_single_frame_stream_still_restores() -> None:
    key = generate_key()
    old = read_all(CompressReader(io.BytesIO(RAW), level=3))  # as backups were written
    from database_backup.stream import EncryptReader

    stored = read_all(EncryptReader(io.BytesIO(old), key))
    reader = AutoDecompressReader(io.BytesIO(old))

    assert restore(stored, key) == RAW
    assert read_all(reader) == RAW
    assert not reader.parallel


def test_a_framed_stream_is_decoded_in_parallel() -> None:
    reader = AutoDecompressReader(io.BytesIO(framed()))

    assert read_all(reader) == RAW
    assert reader.parallel


@pytest.mark.parametrize("raw", [b"", b"x", bytes(FRAME_SIZE)])
def test_edge_sizes_roundtrip(raw: bytes) -> None:
    stored = framed(raw)

    assert len(frame_offsets(stored)) == 1
    assert restore(stored) == raw


def test_a_corrupted_frame_fails_naming_it_after_the_frames_before_it() -> None:
    stored = bytearray(framed())
    offset, compressed, _ = frame_offsets(bytes(stored))[2]
    stored[offset + MARKER_SIZE + compressed // 2] ^= 0x10
    reader = decode(
        io.BytesIO(bytes(stored)),
        key=None,
        compressed=True,
        expected_sha256=None,
        expected_size=None,
    )

    good = reader.read(2 * FRAME_SIZE)
    with pytest.raises(IntegrityError, match="corrupt in frame 2"):
        read_all(reader)
    assert good == RAW[: 2 * FRAME_SIZE]


def test_a_corrupted_frame_stops_the_feeder_even_when_the_reader_is_not_closed() -> None:
    stored = bytearray(
        read_all(FramedCompressReader(io.BytesIO(generated(20 * MIB)), frame_size=MIB))
    )
    stored[MARKER_SIZE + 100] ^= 0x10  # inside frame 0
    reader = ParallelDecompressReader(io.BytesIO(bytes(stored)), workers=2, in_flight=3)

    with pytest.raises(IntegrityError, match="frame 0"):
        reader.read(MIB)

    feeder = reader._feeder  # the thread under test
    assert feeder is not None
    feeder.join(timeout=5)
    assert not feeder.is_alive()


def test_every_cut_at_or_inside_a_marker_and_inside_a_frame_is_detected() -> None:
    stored = framed(generated(FRAME_SIZE + 100))
    (_, first, _), (second, _, _) = frame_offsets(stored)
    cuts = [0, 3, MARKER_SIZE, MARKER_SIZE + first // 2, second, second + 5, len(stored) - 1]
    for cut in cuts:
        with pytest.raises(IntegrityError, match=r"truncated|corrupt"):
            restore(stored[:cut])


def test_bytes_that_are_not_frames_after_a_frame_are_refused() -> None:
    stored = framed(b"hello" * 1000)

    with pytest.raises(IntegrityError, match="no frame marker at byte"):
        restore(stored[:-MARKER_SIZE] + b"not a frame marker at all!!!")
    with pytest.raises(IntegrityError, match="unexpected bytes after the end"):
        restore(stored + b"garbage")


def test_an_end_marker_that_does_not_match_the_frames_is_refused() -> None:
    stored = framed(generated(FRAME_SIZE + 100))
    (_, first, _), (second, _, _) = frame_offsets(stored)
    lying_end = marker(2, FRAME_SIZE + 100, tag=END_TAG)

    with pytest.raises(IntegrityError, match="end marker announces 2 frames"):
        restore(stored[:second] + lying_end)
    assert first


def test_a_marker_that_lies_about_the_raw_size_is_refused() -> None:
    stored = framed(b"hello" * 1000)
    _, compressed, raw = parse_marker(stored[:MARKER_SIZE]) or (b"", 0, 0)

    with pytest.raises(IntegrityError, match="does not hold the 4999 bytes"):
        restore(marker(compressed, raw - 1) + stored[MARKER_SIZE:])


def test_frames_in_flight_stay_bounded_whatever_the_stream_length() -> None:
    raw = generated(40 * MIB)
    stored = read_all(FramedCompressReader(io.BytesIO(raw), frame_size=MIB))
    reader = ParallelDecompressReader(io.BytesIO(stored), workers=2, in_flight=3)

    out = bytearray()
    while chunk := reader.read(MIB):
        time.sleep(0.002)  # a slow consumer: the feeder must wait, not run ahead
        out += chunk

    assert bytes(out) == raw
    assert reader.frames_held_peak == 3


def test_closing_early_stops_the_feeder_and_the_pool() -> None:
    stored = read_all(FramedCompressReader(io.BytesIO(generated(20 * MIB)), frame_size=MIB))
    before = threading.active_count()
    reader = ParallelDecompressReader(io.BytesIO(stored), workers=2, in_flight=3)

    assert len(reader.read(MIB)) == MIB
    reader.close()

    assert threading.active_count() <= before


def test_compression_uses_no_more_than_the_frames_it_keeps_in_flight() -> None:
    reads: list[int] = []

    class Source(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            data = super().read(size)
            reads.append(self.tell())
            return data

    reader = FramedCompressReader(Source(generated(20 * MIB)), workers=2, frame_size=MIB)

    reader.read(1)

    assert max(reads) <= 3 * MIB  # workers + 1 frames read ahead, not the whole source


@pytest.mark.parametrize("frame_size", [0, FRAME_SIZE + 1])
def test_bad_frame_sizes_are_refused(frame_size: int) -> None:
    with pytest.raises(ValueError, match="frame size"):
        FramedCompressReader(io.BytesIO(b""), frame_size=frame_size)
