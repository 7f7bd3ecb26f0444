"""Zstandard frame boundary tracking (RFC 8878), to detect truncated compressed streams.

The zstd streaming decoder returns end-of-stream silently when its input stops in the
middle of a frame. ``FrameTracker`` follows the frame and block headers of the compressed
bytes (a few header bytes per block of up to 128 KiB: negligible work) and says whether
the input ended exactly at the end of a frame.
"""

from __future__ import annotations

import enum

from .base import ByteSource, StageReader, close_source, read_exact

_ZSTD_MAGIC = 0xFD2FB528
_SKIPPABLE_MASK = 0xFFFFFFF0
_SKIPPABLE_MAGIC = 0x184D2A50
_FCS_SIZES = (0, 2, 4, 8)
_DICT_ID_SIZES = (0, 1, 2, 4)
_RESERVED_BLOCK_TYPE = 3
_RLE_BLOCK_TYPE = 1
_MAX_BLOCK_SIZE = 128 * 1024


class _State(enum.Enum):
    MAGIC = "magic"
    DESCRIPTOR = "frame header descriptor"
    HEADER_REST = "frame header"
    BLOCK_HEADER = "block header"
    SKIPPABLE_SIZE = "skippable frame size"


class FrameFormatError(ValueError):
    """The bytes are not a sequence of zstd frames."""


class FrameTracker:
    """Follow zstd frame structure over bytes fed in order."""

    def __init__(self) -> None:
        self._state = _State.MAGIC
        self._need = 4  # header bytes needed in the current state
        self._header = bytearray()
        self._skip = 0  # payload bytes to pass over before the next header
        self._after_skip = _State.MAGIC
        self._checksum = False
        self._last_block = False
        self.frames = 0  # complete frames seen (skippable ones included)

    @property
    def at_frame_boundary(self) -> bool:
        """True when the bytes fed so far end exactly after a complete frame."""
        return (
            self.frames > 0 and self._state is _State.MAGIC and not self._header and not self._skip
        )

    def feed(self, data: bytes) -> None:
        """Advance over ``data``.

        Raises:
            FrameFormatError: the bytes do not follow the zstd frame format.
        """
        view = memoryview(data)
        pos = 0
        end = len(view)
        while pos < end:
            if self._skip:
                take = min(self._skip, end - pos)
                self._skip -= take
                pos += take
                if not self._skip:
                    self._enter(self._after_skip)
                continue
            take = min(self._need - len(self._header), end - pos)
            self._header += view[pos : pos + take]
            pos += take
            if len(self._header) == self._need:
                header = bytes(self._header)
                self._header.clear()
                self._on_header(header)

    def _enter(self, state: _State, need: int = 0) -> None:
        if state is _State.MAGIC:
            self.frames += 1  # only ever entered at the end of a frame
            need = 4
        elif state is _State.BLOCK_HEADER:
            need = 3
        self._state = state
        self._need = need

    def _on_header(self, header: bytes) -> None:
        if self._state is _State.MAGIC:
            magic = int.from_bytes(header, "little")
            if magic == _ZSTD_MAGIC:
                self._state, self._need = _State.DESCRIPTOR, 1
            elif magic & _SKIPPABLE_MASK == _SKIPPABLE_MAGIC:
                self._state, self._need = _State.SKIPPABLE_SIZE, 4
            else:
                raise FrameFormatError("not a zstd frame (bad magic number)")
        elif self._state is _State.DESCRIPTOR:
            self._on_descriptor(header[0])
        elif self._state is _State.HEADER_REST:
            self._enter(_State.BLOCK_HEADER)
        elif self._state is _State.BLOCK_HEADER:
            self._on_block_header(int.from_bytes(header, "little"))
        else:  # skippable frame size
            self._skip_then(int.from_bytes(header, "little"), _State.MAGIC)

    def _on_descriptor(self, descriptor: int) -> None:
        fcs_flag = descriptor >> 6
        single_segment = bool(descriptor & 0x20)
        if descriptor & 0x08:
            raise FrameFormatError("reserved bit set in a zstd frame header")
        self._checksum = bool(descriptor & 0x04)
        rest = _DICT_ID_SIZES[descriptor & 0x03]
        rest += 0 if single_segment else 1  # window descriptor
        rest += 1 if (fcs_flag == 0 and single_segment) else _FCS_SIZES[fcs_flag]
        if rest:
            self._enter(_State.HEADER_REST, rest)
        else:
            self._enter(_State.BLOCK_HEADER)

    def _on_block_header(self, header: int) -> None:
        last = bool(header & 1)
        block_type = (header >> 1) & 0x03
        block_size = header >> 3
        if block_type == _RESERVED_BLOCK_TYPE or block_size > _MAX_BLOCK_SIZE:
            raise FrameFormatError("corrupt zstd block header")
        payload = 1 if block_type == _RLE_BLOCK_TYPE else block_size
        if not last:
            self._skip_then(payload, _State.BLOCK_HEADER)
        else:
            self._skip_then(payload + (4 if self._checksum else 0), _State.MAGIC)

    def _skip_then(self, count: int, state: _State) -> None:
        if count:
            self._skip = count
            self._after_skip = state
        else:
            self._enter(state)


class FrameTrackingReader(StageReader):
    """Pass bytes through unchanged while a ``FrameTracker`` follows them."""

    def __init__(self, source: ByteSource) -> None:
        super().__init__()
        self._source = source
        self.tracker = FrameTracker()

    def _read(self, size: int) -> bytes:
        data = read_exact(self._source, size)
        self.tracker.feed(data)
        return data

    def _close_source(self) -> None:
        close_source(self._source)
