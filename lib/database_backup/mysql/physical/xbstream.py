"""Read small files out of an xbstream as it flows past, without storing the stream.

The backup tools write a few small metadata files into the stream, among them
`xtrabackup_binlog_info` (MariaDB 11: `mariadb_backup_binlog_info`) with the binlog file,
position and GTID set, and `xtrabackup_checkpoints` with the LSNs. `XbstreamTap` passes
the stream through unchanged and keeps the content of the files it was asked for.

Chunk format (Percona xbstream, also MariaDB's mbstream): magic `XBSTCK01`, flags (1
byte), type (1 byte: `P` payload, `E` end of file), path length (uint32 LE), path; for `P`
then payload length (uint64 LE), payload offset (uint64 LE), CRC32 (uint32 LE), payload.
On anything else (e.g. sparse chunks) the tap stops looking and only passes data through.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable

from ..toolrun import Readable

logger = logging.getLogger(__name__)

MAGIC = b"XBSTCK01"
_FIXED = struct.Struct("<8sBBI")  # magic, flags, type, path length
_PAYLOAD = struct.Struct("<QQI")  # length, offset, checksum
#: never keep more than this of one captured file
MAX_CAPTURE = 1 << 16


class XbstreamTap:
    """Pass-through reader that captures the named files of an xbstream."""

    def __init__(self, source: Readable, names: Iterable[str]) -> None:
        self._source = source
        self._wanted = set(names)
        self.files: dict[str, bytes] = {}
        self._header = bytearray()
        self._remaining = 0  # payload bytes still to pass in the current chunk
        self._capture: bytearray | None = None
        self._path = ""
        self.broken: str | None = None  # why parsing stopped, if it did

    def read(self, n: int = -1) -> bytes:
        """Read from the source, looking at the bytes on their way through."""
        data = self._source.read(n)
        if data and self.broken is None:
            self._feed(memoryview(data))
        return data

    def readable(self) -> bool:
        """Return True: this is a reader."""
        return True

    def close(self) -> None:
        """Close the source."""
        close = getattr(self._source, "close", None)
        if callable(close):
            close()

    def _feed(self, view: memoryview) -> None:
        while view:
            if self._remaining:
                take = min(self._remaining, len(view))
                if self._capture is not None and len(self._capture) < MAX_CAPTURE:
                    self._capture += view[:take]
                self._remaining -= take
                view = view[take:]
                if not self._remaining:
                    self._end_payload()
                continue
            used = self._take_header(view)
            if used < 0:
                return
            view = view[used:]

    def _take_header(self, view: memoryview) -> int:
        """Add header bytes from `view`; return how many were used (-1: stop parsing)."""
        before = len(self._header)
        self._header += view[:4096]
        header = self._header
        if len(header) < _FIXED.size:
            return len(view[:4096])
        magic, _flags, kind, path_len = _FIXED.unpack_from(header)
        if magic != MAGIC or path_len > 4096:
            return self._stop(f"bad chunk header at a chunk boundary ({magic!r})")
        path_end = _FIXED.size + path_len
        if kind == ord("E"):
            needed = path_end
        elif kind == ord("P"):
            needed = path_end + _PAYLOAD.size
        else:
            return self._stop(f"chunk type {chr(kind)!r} not understood")
        if len(header) < needed:
            return len(view[:4096])
        self._path = bytes(header[_FIXED.size : path_end]).decode("utf-8", "replace")
        if kind == ord("P"):
            length, _offset, _crc = _PAYLOAD.unpack_from(header, path_end)
            self._remaining = length
            if self._path in self._wanted:
                self._capture = self._capture_for(self._path)
            if not length:
                self._end_payload()
        del self._header[:]
        return needed - before

    def _capture_for(self, path: str) -> bytearray:
        return bytearray(self.files.get(path, b""))

    def _end_payload(self) -> None:
        if self._capture is not None:
            self.files[self._path] = bytes(self._capture[:MAX_CAPTURE])
            self._capture = None

    def _stop(self, why: str) -> int:
        logger.info("xbstream metadata tap stopped: %s", why)
        self.broken = why
        return -1
