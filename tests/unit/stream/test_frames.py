"""The zstd frame tracker follows frames written with every header option."""

from __future__ import annotations

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from database_backup.stream.frames import FrameFormatError, FrameTracker


def frame_ends(data: bytes) -> list[int]:
    """Feed ``data`` byte by byte; return the offsets where a frame boundary is reached."""
    tracker = FrameTracker()
    ends = []
    for offset in range(len(data)):
        tracker.feed(data[offset : offset + 1])
        if tracker.at_frame_boundary:
            ends.append(offset + 1)
    return ends


@settings(max_examples=80, deadline=None)
@given(
    frames=st.lists(
        st.tuples(
            st.binary(max_size=600).map(lambda b: b * 3),
            st.integers(1, 19),
            st.booleans(),
            st.booleans(),
        ),
        min_size=1,
        max_size=3,
    ),
    split=st.integers(1, 97),
)
def test_boundaries_are_exactly_the_frame_ends(
    frames: list[tuple[bytes, int, bool, bool]], split: int
) -> None:
    stream = b""
    expected = []
    for data, level, checksum, content_size in frames:
        compressor = zstandard.ZstdCompressor(
            level=level, write_checksum=checksum, write_content_size=content_size
        )
        stream += compressor.compress(data)  # one-shot: single-segment headers
        expected.append(len(stream))

    assert frame_ends(stream) == expected
    tracker = FrameTracker()
    for start in range(0, len(stream), split):  # any feeding pattern gives the same result
        tracker.feed(stream[start : start + split])
    assert tracker.at_frame_boundary
    assert tracker.frames == len(frames)


def test_large_frames_with_many_blocks() -> None:
    data = bytes(range(256)) * 4000 + b"\0" * 500_000  # raw, compressed and RLE blocks
    compressed = zstandard.ZstdCompressor(level=1).compress(data)

    assert frame_ends(compressed) == [len(compressed)]


def test_skippable_frames_count_as_frames() -> None:
    skippable = (0x184D2A5F).to_bytes(4, "little") + (3).to_bytes(4, "little") + b"abc"

    assert frame_ends(skippable) == [len(skippable)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04 not zstd", "magic"),
        ((0xFD2FB528).to_bytes(4, "little") + b"\x08", "reserved"),
        ((0xFD2FB528).to_bytes(4, "little") + b"\x00\x00" + b"\x07\x00\x00", "block"),
    ],
)
def test_malformed_headers_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(FrameFormatError, match=message):
        FrameTracker().feed(data)


def test_empty_input_is_not_a_complete_stream() -> None:
    assert not FrameTracker().at_frame_boundary
