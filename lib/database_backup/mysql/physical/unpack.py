"""Unpack a MariaDB xbstream into a directory with direct I/O, durably.

What `mbstream -x` does, without its cost: mbstream asks the kernel to drop every file's
cached pages after each write (`posix_fadvise(DONTNEED)`), so a restore of 4 GiB spends
most of its time in the kernel writing back and reclaiming page cache. Here every large
write goes to the disk with ``O_DIRECT`` from page-aligned buffers written on a thread
(`directio.AlignedWriter`: no page cache is filled, none has to be reclaimed), the
unaligned tail of a file is written padded and the file truncated to its size, and every
file is fsynced when its end-of-file chunk arrives, every directory at the end: the staged
copy is on disk before anything is swapped in. A filesystem that refuses ``O_DIRECT``
gets ordinary writes, fsynced the same way.

The stream is checked as mbstream checks it: the chunk magic, known chunk types (unknown
ones are skipped only when flagged ignorable), the CRC-32 of every payload, chunks of a
file in order, and paths that stay inside the target (no absolute path, no ``..``, no
symbolic link followed, for directories too). Anything else raises `UnpackError` naming
the chunk; what was written stays in the target for the caller to discard.

Format (Percona xbstream, MariaDB's mbstream): magic ``XBSTCK01``, flags (1 byte), type
(1 byte: ``P`` payload, ``E`` end of file), path length (u32 LE), path; then, for any type
but ``E``, payload length (u64 LE), payload offset (u64 LE), CRC-32 (u32 LE), payload.
xtrabackup 8's sparse chunks (``S``) are not written by mariabackup; the MySQL flavour
keeps the ``xbstream -x`` tool.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
import zlib
from functools import partial
from pathlib import Path

from ..errors import EngineError
from ..toolrun import Readable
from .directio import ALIGN, AlignedWriter, WriteError, finish_file, pwrite_all

MAGIC = b"XBSTCK01"
_FIXED = struct.Struct("<8sBBI")  # magic, flags, type, path length
_PAYLOAD = struct.Struct("<QQI")  # length, offset, checksum
_IGNORABLE = 0x01
_PAYLOAD_TYPE = ord("P")
_EOF_TYPE = ord("E")
#: longest path mbstream accepts (FN_REFLEN - 1)
MAX_PATH = 511
#: each of the two page-aligned buffers direct writes go through (one fills, one is written)
BUFFER_SIZE = 8 << 20
#: source reads (a decoded frame is 4 MiB)
READ_SIZE = 4 << 20
_DIR_MODE = 0o750
_FILE_MODE = 0o640


class UnpackError(EngineError):
    """The stream is not a valid xbstream, or a file could not be written."""


class _Input:
    """The source as a sequence of byte views, with exact reads across its chunks."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._view = memoryview(b"")
        self.consumed = 0  # bytes handed out so far (the stream offset)
        self.ended = False

    def _fill(self) -> bool:
        if not self._view and not self.ended:
            data = self._source.read(READ_SIZE)
            if data:
                self._view = memoryview(data)
            else:
                self.ended = True
        return bool(self._view)

    def take(self, limit: int) -> memoryview:
        """Up to `limit` bytes (fewer at a chunk boundary; empty only at the end)."""
        if not self._fill():
            return memoryview(b"")
        piece = self._view[:limit]
        rest = self._view[len(piece) :]
        self._view = rest if rest else memoryview(b"")  # a finished read is not kept alive
        self.consumed += len(piece)
        return piece

    def exact(self, size: int) -> bytes | None:
        """Exactly `size` bytes, or None when the stream ends first."""
        first = self.take(size)
        if len(first) == size:
            return bytes(first)
        parts = [bytes(first)]
        got = len(first)
        while got < size:
            piece = self.take(size - got)
            if not piece:
                return None
            parts.append(bytes(piece))
            got += len(piece)
        return b"".join(parts)

    def at_end(self) -> bool:
        """Whether nothing is left."""
        return not self._fill()


class _File:
    """One file being written: its descriptor, what was accepted and what is on disk."""

    def __init__(self, path: str, fd: int, direct: bool) -> None:
        self.path = path
        self.fd = fd
        self.direct = direct
        self.size = 0  # bytes accepted (the next chunk's offset)
        self.on_disk = 0  # bytes written (a multiple of ALIGN when direct)
        self.carry = b""  # accepted, not yet written (shorter than ALIGN)


class XbstreamUnpacker:
    """Write the files of an xbstream under `target` (an existing, empty directory)."""

    def __init__(self, target: Path) -> None:
        self._target = Path(target)
        self._root = os.open(self._target, os.O_RDONLY | os.O_DIRECTORY)
        self._writer = AlignedWriter(BUFFER_SIZE)
        self._files: dict[str, _File] = {}
        self._dirs: dict[str, int] = {}  # relative directory -> its open descriptor
        self._direct_ok = hasattr(os, "O_DIRECT")
        self.files_written = 0
        self.bytes_written = 0

    def unpack(self, source: Readable) -> int:
        """Read `source` to its end, writing its files; return the bytes of the stream read.

        Raises:
            UnpackError: a malformed stream (with its byte offset) or a write that failed.
        """
        stream = _Input(source)
        try:
            while not stream.at_end():
                self._chunk(stream)
            if self._files:
                raise UnpackError(
                    f"xbstream is truncated at byte {stream.consumed}: {len(self._files)} "
                    f"file(s) have no end-of-file chunk (first: {next(iter(self._files))})"
                )
            self._writer.drain()
            self._sync_dirs()
        except WriteError as exc:
            raise UnpackError(f"writing {exc.path} failed: {exc.strerror}") from None
        finally:
            self.close()
        return stream.consumed

    def close(self) -> None:
        """Wait for the writer, close every open file (idempotent)."""
        self._writer.close()
        for item in self._files.values():
            with contextlib.suppress(OSError):
                os.close(item.fd)
        self._files.clear()
        for fd in self._dirs.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._dirs.clear()
        if self._root >= 0:
            with contextlib.suppress(OSError):
                os.close(self._root)
            self._root = -1

    # -- chunks --------------------------------------------------------------------------

    def _chunk(self, stream: _Input) -> None:
        at = stream.consumed
        head = stream.exact(_FIXED.size)
        if head is None:
            raise UnpackError(f"xbstream is truncated: a chunk header at byte {at} is cut")
        magic, flags, kind, path_len = _FIXED.unpack(head)
        if magic != MAGIC:
            raise UnpackError(f"xbstream is damaged: no chunk magic at byte {at}")
        if path_len > MAX_PATH:
            raise UnpackError(f"xbstream is damaged: path length {path_len} at byte {at}")
        raw_path = stream.exact(path_len)
        if raw_path is None:
            raise UnpackError(f"xbstream is truncated: the path at byte {at} is cut")
        path = _safe_path(raw_path, at)
        if kind == _EOF_TYPE:
            self._end_file(path, at)
            return
        fields = stream.exact(_PAYLOAD.size)
        if fields is None:
            raise UnpackError(f"xbstream is truncated: the chunk at byte {at} is cut")
        length, offset, checksum = _PAYLOAD.unpack(fields)
        if kind != _PAYLOAD_TYPE:
            if not flags & _IGNORABLE:
                raise UnpackError(
                    f"xbstream chunk type {kind:#04x} at byte {at} is not understood "
                    "(a newer or other tool's stream?)"
                )
            self._skip(stream, length, at)
            return
        item = self._files.get(path) or self._open(path, at)
        if offset != item.size:
            raise UnpackError(
                f"xbstream is damaged: chunk of {path} at byte {at} is for offset {offset}, "
                f"{item.size} expected"
            )
        self._payload(stream, item, length, checksum, at)

    def _skip(self, stream: _Input, length: int, at: int) -> None:
        left = length
        while left:
            piece = stream.take(min(left, READ_SIZE))
            if not piece:
                raise UnpackError(f"xbstream is truncated: the chunk at byte {at} is cut")
            left -= len(piece)

    def _payload(self, stream: _Input, item: _File, length: int, checksum: int, at: int) -> None:
        crc = 0
        left = length
        while left:
            piece = stream.take(min(left, BUFFER_SIZE - ALIGN))
            if not piece:
                raise UnpackError(f"xbstream is truncated: the payload at byte {at} is cut")
            crc = zlib.crc32(piece, crc)
            self._write(item, piece)
            left -= len(piece)
        if crc != checksum:
            raise UnpackError(
                f"xbstream is damaged: checksum mismatch in the chunk of {item.path} at byte {at}"
            )
        item.size += length

    # -- files ---------------------------------------------------------------------------

    def _open(self, path: str, at: int) -> _File:
        parent, _, name = path.rpartition("/")
        where = self._directory(parent) if parent else self._root
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            if self._direct_ok:
                try:
                    fd = os.open(name, flags | os.O_DIRECT, _FILE_MODE, dir_fd=where)
                    direct = True
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    self._direct_ok = False  # this filesystem refuses O_DIRECT
                    fd = os.open(name, flags, _FILE_MODE, dir_fd=where)
                    direct = False
            else:
                fd = os.open(name, flags, _FILE_MODE, dir_fd=where)
                direct = False
        except FileExistsError:
            raise UnpackError(
                f"xbstream is damaged: {path} appears twice (chunk at byte {at})"
            ) from None
        except OSError as exc:
            raise UnpackError(f"cannot create {path} in {self._target}: {exc.strerror}") from None
        item = _File(path, fd, direct)
        self._files[path] = item
        return item

    def _directory(self, parent: str) -> int:
        """The descriptor of directory `parent`, created as needed, never through a link."""
        known = self._dirs.get(parent)
        if known is not None:
            return known
        above, _, name = parent.rpartition("/")
        where = self._directory(above) if above else self._root
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, _DIR_MODE, dir_fd=where)
            fd = os.open(
                name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=where
            )
        except OSError as exc:
            raise UnpackError(
                f"cannot create directory {parent} in {self._target}: {exc.strerror} "
                "(a link or a file is in the way?)"
            ) from None
        self._dirs[parent] = fd
        return fd

    def _write(self, item: _File, data: memoryview) -> None:
        try:
            if not item.direct:
                pwrite_all(item.fd, data, item.on_disk)
                item.on_disk += len(data)
            else:
                buf = self._writer.buffer()
                carry = len(item.carry)
                buf[:carry] = item.carry
                end = carry + len(data)
                buf[carry:end] = data
                aligned = end - end % ALIGN
                item.carry = buf[aligned:end]
                if aligned:
                    self._writer.write(item.fd, aligned, item.on_disk, item.path)
                    item.on_disk += aligned
        except WriteError as exc:
            raise UnpackError(f"writing {exc.path} failed: {exc.strerror}") from None
        except OSError as exc:
            raise UnpackError(f"writing {item.path} failed: {exc.strerror}") from None
        self.bytes_written += len(data)

    def _end_file(self, path: str, at: int) -> None:
        item = self._files.pop(path, None)
        if item is None:  # an empty file has its end chunk only
            item = self._open(path, at)
            self._files.pop(path)
        # the tail, the size, fsync and close run behind the file's queued writes
        work = partial(finish_file, item.fd, item.size, item.carry, item.on_disk, item.direct)
        self._writer.task(work, item.path)
        self.files_written += 1

    def _sync_dirs(self) -> None:
        """Flush every directory created, deepest first, then the target."""
        order = sorted(self._dirs, key=lambda d: d.count("/"), reverse=True)
        for name, fd in [*((d, self._dirs[d]) for d in order), (".", self._root)]:
            try:
                os.fsync(fd)
            except OSError as exc:
                raise UnpackError(
                    f"flushing directory {name} in {self._target} failed: {exc.strerror}"
                ) from None


def _safe_path(raw: bytes, at: int) -> str:
    """The chunk's path, relative and inside the target, or UnpackError."""
    try:
        path = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UnpackError(f"xbstream is damaged: the path at byte {at} is not UTF-8") from None
    parts = path.split("/")
    if (
        not path
        or "\x00" in path
        or path.startswith("/")
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise UnpackError(f"xbstream path {path!r} at byte {at} leaves the target: refused")
    return path


def unpack(source: Readable, target: Path) -> int:
    """Unpack the xbstream `source` into the directory `target`; return the bytes read."""
    return XbstreamUnpacker(target).unpack(source)
