"""Independent zstd frames, compressed and decompressed on every core.

Stored format ("framed zstd", written since issue 14): the raw stream is cut into pieces
of ``FRAME_SIZE`` bytes; each piece is one independent zstd frame (content size and
checksum in it), preceded by a zstd *skippable* frame that says how long the next frame
is::

    marker = 0x184D2A5E (LE) | 20 (LE) | b"DBZF" | compressed size (u64 LE) | raw size (u64 LE)
    end    = 0x184D2A5E (LE) | 20 (LE) | b"DBZE" | frame count (u64 LE) | total raw size (u64 LE)
    stream = (marker | zstd frame)+ end

The end marker makes a stream cut exactly between two frames detectable by itself.

Plain ``zstd -d`` ignores skippable frames, so an artefact still decompresses with the
stock tool. Because every frame's length is known before it is read, the reader hands
whole frames to a pool of decompressing threads (zstandard releases the GIL) and puts
their output back in order; at most ``in_flight`` frames are held at any time, so memory
is bounded by ``in_flight x (FRAME_SIZE + its compressed size)`` whatever the stream size.
Streams written before (one zstd frame) are recognised by their first bytes and read by
the sequential ``DecompressReader``.
"""

from __future__ import annotations

import os
import queue
import struct
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import zstandard

from .base import ByteSource, ChunkedStageReader, StageReader, close_source, read_exact
from .compress import DecompressReader
from .errors import IntegrityError

#: Raw bytes per independent frame.
FRAME_SIZE = 4 << 20
#: At most this many worker threads, whatever the core count (memory stays small).
MAX_WORKERS = 8
MARKER_MAGIC = 0x184D2A5E
MARKER_TAG = b"DBZF"
END_TAG = b"DBZE"
_MARKER = struct.Struct("<II4sQQ")
MARKER_SIZE = _MARKER.size
_PAYLOAD_SIZE = MARKER_SIZE - 8
#: A frame never holds more than this (zstd's worst case for FRAME_SIZE is far lower).
_MAX_COMPRESSED = 2 * FRAME_SIZE + (1 << 16)


def default_workers() -> int:
    """Threads to use: the CPUs this process may run on, at most ``MAX_WORKERS``."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


def marker(compressed_size: int, raw_size: int, *, tag: bytes = MARKER_TAG) -> bytes:
    """The skippable frame announcing a frame of ``compressed_size`` bytes (or the end)."""
    return _MARKER.pack(MARKER_MAGIC, _PAYLOAD_SIZE, tag, compressed_size, raw_size)


def parse_marker(data: bytes) -> tuple[bytes, int, int] | None:
    """``(tag, compressed size or frame count, raw size)`` if ``data`` is a marker."""
    if len(data) != MARKER_SIZE:
        return None
    magic, size, tag, first, second = _MARKER.unpack(data)
    if magic != MARKER_MAGIC or size != _PAYLOAD_SIZE or tag not in (MARKER_TAG, END_TAG):
        return None
    return tag, first, second


class _ThreadCodecs(threading.local):
    """One zstd context per worker thread (contexts are not thread-safe)."""

    def __init__(self, level: int) -> None:
        self.compressor = zstandard.ZstdCompressor(
            level=level, write_checksum=True, write_content_size=True
        )
        self.decompressor = zstandard.ZstdDecompressor()


class FramedCompressReader(ChunkedStageReader):
    """Read ``source`` compressed as framed zstd (format above), on ``workers`` threads.

    The caller's thread reads the source one frame at a time and keeps up to
    ``workers + 1`` frames compressing while it waits for the oldest, so the source (a
    backup tool's pipe) keeps being drained while the pool works.
    """

    def __init__(
        self,
        source: ByteSource,
        level: int = 3,
        *,
        workers: int | None = None,
        frame_size: int = FRAME_SIZE,
    ) -> None:
        """Compress ``source`` at zstd ``level`` into frames of ``frame_size`` raw bytes."""
        from .compress import MAX_LEVEL

        if not 1 <= level <= MAX_LEVEL:
            raise ValueError(f"zstd compression level must be between 1 and {MAX_LEVEL}")
        if not 1 <= frame_size <= FRAME_SIZE:
            raise ValueError(f"the frame size must be between 1 and {FRAME_SIZE} bytes")
        super().__init__()
        self._source = source
        self._frame_size = frame_size
        self._workers = workers or default_workers()
        self._codecs = _ThreadCodecs(level)
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[Future[tuple[bytes, bytes]]] = []
        self._frame = b""  # the frame whose marker was the last chunk
        self._source_done = False
        self._frames = 0
        self._raw_total = 0
        self._ended = False

    def _compress(self, raw: bytes) -> tuple[bytes, bytes]:
        frame = self._codecs.compressor.compress(raw)
        return marker(len(frame), len(raw)), frame

    def _next_chunk(self) -> bytes:
        # A frame's marker and the frame are two chunks: no copy to put them together.
        if self._frame:
            frame, self._frame = self._frame, b""
            return frame
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="zstd-c")
        while not self._source_done and len(self._pending) <= self._workers:
            raw = read_exact(self._source, self._frame_size)
            if len(raw) < self._frame_size:
                self._source_done = True
            if raw or not self._frames:  # an empty stream is still one (empty) frame
                self._pending.append(self._pool.submit(self._compress, raw))
                self._frames += 1
                self._raw_total += len(raw)
        if not self._pending:
            if self._ended:
                return b""
            self._ended = True
            return marker(self._frames, self._raw_total, tag=END_TAG)
        head, self._frame = self._pending.pop(0).result()
        return head

    def _close_source(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        close_source(self._source)


_Item = Future[bytes] | BaseException | None


class ParallelDecompressReader(ChunkedStageReader):
    """Read a framed zstd stream decompressed, frames decoded in parallel, in order.

    A feeder thread reads the source (download, digest and decryption run there, in
    order) and submits each whole frame to a pool of ``workers`` threads; at most
    ``in_flight`` frames (compressed or decompressed, waiting or being consumed) exist at
    any moment. Raises ``IntegrityError`` on a corrupt or truncated frame, a bad marker or
    bytes that are not frames; errors of the source (storage, authentication) are raised
    as they are, after the data that came before them.
    """

    def __init__(
        self,
        source: ByteSource,
        *,
        workers: int | None = None,
        in_flight: int | None = None,
        first_marker: bytes = b"",
    ) -> None:
        """Decompress ``source`` (``first_marker``: the first marker, already read)."""
        super().__init__()
        self._source = source
        self._first = first_marker
        self._workers = workers or default_workers()
        self._in_flight = max(2, in_flight or self._workers + 2)
        self._slots = threading.Semaphore(self._in_flight)
        self._queue: queue.Queue[_Item] = queue.Queue()
        self._stop = threading.Event()
        self._codecs = _ThreadCodecs(3)
        self._pool: ThreadPoolExecutor | None = None
        self._feeder: threading.Thread | None = None
        self._taken = False  # the consumer holds one slot (the frame it reads)
        self._ended = False
        self.frames_held_peak = 0  # the most frames ever held at once (tests)
        self._held = 0
        self._held_lock = threading.Lock()

    # -- feeder thread -----------------------------------------------------------------

    def _feed(self) -> None:
        try:
            head = self._first
            number = 0
            offset = 0
            total = 0
            while not self._stop.is_set():
                head = head or read_exact(self._source, MARKER_SIZE)
                if not head:
                    raise IntegrityError(
                        f"compressed data is truncated: it ends after {number} frames "
                        "without its end marker"
                    )
                parsed = parse_marker(head)
                if parsed is None:
                    raise IntegrityError(
                        f"compressed data is corrupt: no frame marker at byte {offset}"
                    )
                tag, compressed, raw = parsed
                if tag == END_TAG:
                    self._check_end(compressed, raw, number, total)
                    break
                if not self._submit(number, compressed, raw, offset):
                    return
                number += 1
                total += raw
                offset += MARKER_SIZE + compressed
                head = b""
            self._queue.put(None)
        except BaseException as exc:  # handed to the consumer's thread
            self._queue.put(exc)

    def _submit(self, number: int, compressed: int, raw: int, offset: int) -> bool:
        """Read frame ``number`` and queue its decompression; False when stopped."""
        if compressed > _MAX_COMPRESSED or raw > FRAME_SIZE:
            raise IntegrityError(
                f"compressed data is corrupt: impossible frame size at byte {offset}"
            )
        if self._pool is None or not self._acquire():
            return False
        frame = read_exact(self._source, compressed)
        if len(frame) < compressed:
            self._release()
            raise IntegrityError(f"compressed data is truncated: frame {number} is incomplete")
        self._queue.put(self._pool.submit(self._decompress, frame, raw, number))
        return True

    def _check_end(self, frames: int, raw: int, number: int, total: int) -> None:
        if (frames, raw) != (number, total) or not number:
            raise IntegrityError(
                f"compressed data is corrupt: the end marker announces {frames} frames of "
                f"{raw} bytes, the stream held {number} of {total}"
            )
        if read_exact(self._source, 1):
            raise IntegrityError("compressed data is corrupt: unexpected bytes after the end")

    def _acquire(self) -> bool:
        while not self._slots.acquire(timeout=0.2):
            if self._stop.is_set():
                return False
        with self._held_lock:
            self._held += 1
            self.frames_held_peak = max(self.frames_held_peak, self._held)
        return True

    def _release(self) -> None:
        with self._held_lock:
            self._held -= 1
        self._slots.release()

    def _decompress(self, frame: bytes, raw: int, number: int) -> bytes:
        try:
            dobj = self._codecs.decompressor.decompressobj(write_size=max(raw, 1))
            data = dobj.decompress(frame)
            complete = dobj.eof and not dobj.unused_data
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"compressed data is corrupt in frame {number}: {exc}") from None
        if not complete or len(data) != raw:
            raise IntegrityError(
                f"compressed data is corrupt in frame {number}: it does not hold the "
                f"{raw} bytes its marker announces"
            )
        return data

    # -- consumer ----------------------------------------------------------------------

    def _next_chunk(self) -> bytes:
        if self._taken:
            self._taken = False
            self._release()
        if self._ended:
            return b""
        if self._feeder is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="zstd-d")
            self._feeder = threading.Thread(target=self._feed, name="zstd-feed", daemon=True)
            self._feeder.start()
        item = self._queue.get()
        if item is None:
            self._ended = True
            return b""
        if isinstance(item, BaseException):
            self._ended = True
            raise item
        try:
            data = item.result()
        except BaseException:
            self._ended = True
            self._stop.set()  # nothing after a bad frame is read: the feeder stops now
            raise
        self._taken = True
        return data

    def _close_source(self) -> None:
        self._stop.set()
        if self._feeder is not None:
            self._feeder.join(timeout=60)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._queue.put(None)  # wakes a reader still waiting in another thread
        close_source(self._source)


class _Prefixed(StageReader):
    """``prefix`` followed by ``source``."""

    def __init__(self, prefix: bytes, source: ByteSource) -> None:
        super().__init__()
        self._prefix = prefix
        self._source = source

    def _read(self, size: int) -> bytes:
        if not self._prefix:
            return read_exact(self._source, size)
        head, self._prefix = self._prefix[:size], self._prefix[size:]
        if len(head) == size:
            return head
        return head + read_exact(self._source, size - len(head))

    def _close_source(self) -> None:
        close_source(self._source)


class AutoDecompressReader(StageReader):
    """Decompress ``source``: framed streams in parallel, older single-frame ones in order.

    Nothing is read before the first ``read``, so errors of the source surface there.
    """

    def __init__(self, source: ByteSource, *, workers: int | None = None) -> None:
        """Decompress the zstd stream ``source`` with up to ``workers`` threads."""
        super().__init__()
        self._source = source
        self._workers = workers
        self._inner: StageReader | None = None

    @property
    def parallel(self) -> bool:
        """Whether the stream is framed (decoded in parallel); known after the first read."""
        return isinstance(self._inner, ParallelDecompressReader)

    def _open(self) -> StageReader:
        head = read_exact(self._source, MARKER_SIZE)
        if parse_marker(head) is not None:
            return ParallelDecompressReader(self._source, workers=self._workers, first_marker=head)
        return DecompressReader(_Prefixed(head, self._source))

    def _read(self, size: int) -> bytes:
        if self._inner is None:
            self._inner = self._open()
        return self._inner.read(size)

    def _close_source(self) -> None:
        if self._inner is not None:
            self._inner.close()
        else:
            close_source(self._source)
