"""Writes from page-aligned buffers on one writer thread, in the order they were queued.

`O_DIRECT` writes need an aligned buffer, an aligned length and an aligned offset; they
block until the device has the data. `AlignedWriter` keeps ``count`` aligned buffers: the
caller fills one while the thread writes another, and whole-file tasks (pad the tail,
truncate, fsync, close) are queued behind the file's writes, so nothing waits for a disk
but the caller that needs a buffer still being written. A failed task is raised, with the
file's name, by the next call that waits (`buffer` or `drain`).
"""

from __future__ import annotations

import errno
import mmap
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from ..errors import EngineError

#: direct I/O alignment (the largest logical block size in use)
ALIGN = 4096


class WriteError(EngineError):
    """A queued write or file task failed; ``path`` names the file, ``strerror`` why."""

    def __init__(self, path: str, cause: OSError) -> None:
        super().__init__(f"writing {path} failed: {cause.strerror}")
        self.path = path
        self.strerror = cause.strerror


def pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (short writes continued)."""
    while data:
        done = os.pwrite(fd, data, offset)
        if done <= 0:
            raise OSError(errno.EIO, "short write")
        data = data[done:]
        offset += done


def finish_file(fd: int, size: int, tail: bytes, on_disk: int, direct: bool) -> None:
    """Write ``tail`` at ``on_disk`` (padded to ALIGN when direct), set ``size``, fsync, close."""
    try:
        if tail and direct:
            pad = mmap.mmap(-1, ALIGN)
            try:
                pad[: len(tail)] = tail
                with memoryview(pad) as view:
                    pwrite_all(fd, view, on_disk)
            finally:
                pad.close()
            os.ftruncate(fd, size)
        elif tail:
            pwrite_all(fd, memoryview(tail), on_disk)
        os.fsync(fd)
    finally:
        os.close(fd)


class AlignedWriter:
    """``count`` page-aligned buffers of ``size`` bytes and one thread writing them."""

    def __init__(self, size: int, count: int = 2) -> None:
        """Allocate the buffers (``size`` a multiple of ALIGN) and start the thread."""
        if size % ALIGN or count < 1:
            raise ValueError(f"buffer size must be a multiple of {ALIGN}, count at least 1")
        self._buffers = [mmap.mmap(-1, size) for _ in range(count)]
        self._busy: list[tuple[Future[None], str] | None] = [None] * count
        self._next = 0
        self._tasks: deque[tuple[Future[None], str]] = deque()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="direct-write")

    def buffer(self) -> mmap.mmap:
        """The next buffer, once the thread is done with it.

        Raises:
            WriteError: a queued write or task failed.
        """
        self._reap()
        busy = self._busy[self._next]
        if busy is not None:
            self._busy[self._next] = None
            _wait(*busy)
        return self._buffers[self._next]

    def write(self, fd: int, length: int, offset: int, path: str) -> None:
        """Queue the write of the first ``length`` bytes of `buffer()`'s buffer; rotate."""
        buf = self._buffers[self._next]

        def run() -> None:
            with memoryview(buf) as view, view[:length] as data:
                pwrite_all(fd, data, offset)

        self._busy[self._next] = (self._pool.submit(run), path)
        self._next = (self._next + 1) % len(self._buffers)

    def task(self, work: Callable[[], None], path: str) -> None:
        """Queue ``work`` behind every write queued so far."""
        self._tasks.append((self._pool.submit(work), path))

    def drain(self) -> None:
        """Wait for everything queued.

        Raises:
            WriteError: a queued write or task failed (the first one).
        """
        pending = [item for item in self._busy if item is not None]
        self._busy = [None] * len(self._buffers)
        pending.extend(self._tasks)
        self._tasks.clear()
        first: WriteError | None = None
        for future, path in pending:
            try:
                _wait(future, path)
            except WriteError as exc:
                first = first or exc
        if first is not None:
            raise first

    def close(self) -> None:
        """Wait for the thread, then free the buffers (errors are not raised here)."""
        self._pool.shutdown(wait=True)
        for buf in self._buffers:
            if not buf.closed:
                buf.close()

    def _reap(self) -> None:
        while self._tasks and self._tasks[0][0].done():
            _wait(*self._tasks.popleft())


def _wait(future: Future[None], path: str) -> None:
    try:
        future.result()
    except OSError as exc:
        raise WriteError(path, exc) from None
