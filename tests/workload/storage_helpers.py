"""Helpers for the storage workload tests: stream sources we can observe."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from typing import Any

MiB = 1024 * 1024


class PipeFeeder:
    """An `os.pipe()` fed by a thread with `total` random bytes; `reader` is the read end.

    Attributes:
        reader: the read end, an unbuffered binary file.
        sha256: hex digest of everything written (valid after `join()`).
    """

    def __init__(self, total: int, chunk: int = 256 * 1024) -> None:
        self.total = total
        self._chunk = chunk
        self._hash = hashlib.sha256()
        read_fd, write_fd = os.pipe()
        self.reader = os.fdopen(read_fd, "rb", buffering=0)
        self._writer = os.fdopen(write_fd, "wb", buffering=0)
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> PipeFeeder:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.reader.close()  # unblocks the writer (EPIPE) if the reader gave up
        self._thread.join(30)

    @property
    def sha256(self) -> str:
        """Digest of the bytes written so far."""
        return self._hash.hexdigest()

    def join(self) -> None:
        """Wait until the writer finished."""
        self._thread.join(30)

    def _feed(self) -> None:
        left = self.total
        try:
            with self._writer:
                while left > 0:
                    data = os.urandom(min(self._chunk, left))
                    self._hash.update(data)
                    self._writer.write(data)
                    left -= len(data)
        except BrokenPipeError:
            pass
        except BaseException as exc:
            self.error = exc


class CountingSource:
    """Wraps a readable; counts bytes handed out, can run a hook once past a threshold.

    Attributes:
        bytes_read: bytes returned to the reader so far.
        high_water: the most bytes ever read ahead of `acked()` (see `check_ahead`).
    """

    def __init__(
        self,
        inner: Any,
        *,
        trigger_at: int | None = None,
        trigger: Callable[[], None] | None = None,
        fail_at: int | None = None,
        acked: Callable[[], int] | None = None,
    ) -> None:
        self._inner = inner
        self._trigger_at = trigger_at
        self._trigger = trigger
        self._fail_at = fail_at
        self._acked = acked
        self.bytes_read = 0
        self.high_water = 0

    def read(self, n: int = -1) -> bytes:
        """Read from the wrapped source."""
        if self._fail_at is not None and self.bytes_read >= self._fail_at:
            raise OSError("the producer died (simulated by the test)")
        data = self._inner.read(n)
        self.bytes_read += len(data)
        if self._acked is not None:
            self.high_water = max(self.high_water, self.bytes_read - self._acked())
        if (
            self._trigger is not None
            and self._trigger_at is not None
            and self.bytes_read >= self._trigger_at
        ):
            trigger, self._trigger = self._trigger, None
            trigger()
        return data


class CallCounter:
    """Counts botocore API calls of one client by operation, and the most in flight."""

    def __init__(self, client: Any) -> None:
        self.calls: dict[str, int] = {}
        self.active: dict[str, int] = {}
        self.max_active: dict[str, int] = {}
        self._lock = threading.Lock()
        events = client.meta.events
        events.register("before-call.s3", self._before)
        events.register("after-call.s3", self._after)
        events.register("after-call-error.s3", self._after)

    def _before(self, model: Any, **kwargs: Any) -> None:
        with self._lock:
            name = model.name
            self.calls[name] = self.calls.get(name, 0) + 1
            self.active[name] = self.active.get(name, 0) + 1
            self.max_active[name] = max(self.max_active.get(name, 0), self.active[name])

    def _after(self, model: Any, **kwargs: Any) -> None:
        with self._lock:
            self.active[model.name] = self.active.get(model.name, 1) - 1
