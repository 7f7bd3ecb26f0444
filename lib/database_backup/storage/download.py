"""Streaming download that resumes after a broken connection.

A file-like reader over one S3 object: when the connection breaks (or the body ends
before its Content-Length) it asks again for the rest with a ranged GET pinned to the
same object by its ETag, so a long restore does not restart from zero.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from typing import Any

from database_backup.storage.client import RetryPolicy, stream_errors
from database_backup.storage.errors import StorageError, translate

logger = logging.getLogger(__name__)


class S3ObjectReader(io.RawIOBase):
    """Raw reader of one object; wrap it in `io.BufferedReader` (see `open_object`).

    Attributes:
        size: the object's size in bytes.
        etag: the object's ETag.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        *,
        retry: RetryPolicy,
    ) -> None:
        super().__init__()
        self._client = client
        self._bucket = bucket
        self._key = key
        self._retry = retry
        self._pos = 0
        self._stream_errors = stream_errors()
        try:
            resp = client.get_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise translate(exc, "download", bucket=bucket, key=key) from exc
        self._body: Any = resp["Body"]
        self.size: int = int(resp["ContentLength"])
        self.etag: str = resp.get("ETag", "")

    def readable(self) -> bool:
        """Always True."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read up to len(buffer) bytes into `buffer`; 0 only at the real end of the object.

        Raises:
            StorageError: the connection broke and resuming failed, or the object changed.
        """
        want = len(buffer)
        if want == 0 or self._pos >= self.size:
            return 0
        failures = 0
        while True:
            try:
                chunk = self._body.read(min(want, self.size - self._pos))
            except self._stream_errors as exc:
                failures += 1
                self._resume(failures, exc)
                continue
            if not chunk:  # the body ended before Content-Length: resume
                failures += 1
                self._resume(failures, None)
                continue
            n = len(chunk)
            buffer[:n] = chunk
            self._pos += n
            return n

    def _resume(self, failures: int, exc: BaseException | None) -> None:
        reason = type(exc).__name__ if exc is not None else "early end of stream"
        if failures > self._retry.part_attempts:
            raise StorageError(
                f"download s3://{self._bucket}/{self._key} failed at byte {self._pos} of "
                f"{self.size} ({reason}) after {failures - 1} resumes: check the endpoint"
            ) from exc
        delay = self._retry.delay(failures)
        logger.warning(
            "download of %s broke at byte %d (%s); resuming in %.1f s",
            self._key,
            self._pos,
            reason,
            delay,
        )
        time.sleep(delay)
        with contextlib.suppress(Exception):
            self._body.close()
        try:
            resp = self._client.get_object(
                Bucket=self._bucket,
                Key=self._key,
                Range=f"bytes={self._pos}-",
                IfMatch=self.etag,
            )
        except Exception as exc2:
            if failures >= self._retry.part_attempts:
                raise translate(
                    exc2, "resume download of", bucket=self._bucket, key=self._key
                ) from exc2
            self._body = _EmptyBody()
            return
        self._body = resp["Body"]

    def close(self) -> None:
        """Close the HTTP response."""
        if not self.closed:
            with contextlib.suppress(Exception):
                self._body.close()
        super().close()


class _EmptyBody:
    """Stands for a body we failed to reopen; reading it triggers the next resume."""

    def read(self, n: int = -1) -> bytes:
        raise ConnectionError("no open response")

    def close(self) -> None:
        """Nothing to close."""


def open_object(
    client: Any,
    bucket: str,
    key: str,
    *,
    retry: RetryPolicy,
    buffer_size: int = 1024 * 1024,
) -> io.BufferedReader:
    """Open `bucket`/`key` for streaming reads (`.read(n)`), with a `buffer_size` buffer."""
    return io.BufferedReader(S3ObjectReader(client, bucket, key, retry=retry), buffer_size)
