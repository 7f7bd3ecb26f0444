"""Streaming multipart upload with parallel parts and bounded memory.

The reading thread (the caller's) fills one part buffer at a time from the source and
hands it to a pool of `max_concurrency` sender threads. A semaphore with
`max_concurrency` permits is taken before a buffer is handed over and given back only
after the sender dropped it, so at any moment the upload holds at most
`max_concurrency` buffers being sent plus the one being filled:
(max_concurrency + 1) x part size bytes. A sent part's buffer is filled again with a
later part rather than freed, so a long upload allocates those buffers once.

Each part is hashed once, by its sender: that SHA-256 is signed with the part (SigV4,
over HTTP and HTTPS: the server refuses bytes that do not match it, `storage.signing`)
and the object's checksum is composed from the parts' digests (`storage.checksum`), so
no byte is hashed twice. Parts are
retried with backoff on top of botocore's own retries. On any failure the multipart
upload is aborted so no object appears at the key and no parts linger; if the abort
itself cannot reach the server (the endpoint died), the upload id is handed back in
`UploadAbortedError` for `S3Storage.cleanup_incomplete_uploads()` to remove later.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from database_backup.byteio import fill
from database_backup.storage.checksum import PartsChecksum, compose
from database_backup.storage.client import RetryPolicy
from database_backup.storage.errors import (
    StorageError,
    UploadAbortedError,
    error_code,
    translate,
)
from database_backup.storage.parts import MAX_PARTS, PartPlan
from database_backup.storage.protocol import Readable
from database_backup.storage.signing import known_payload

logger = logging.getLogger(__name__)


def read_part(source: Readable, size: int, spare: bytearray | None = None) -> bytearray:
    """Read up to `size` bytes from `source`, looping over short reads (pipes).

    Args:
        source: where to read from.
        size: the part size.
        spare: a buffer of a part already sent, to fill again (no new allocation); used
            only when it has exactly `size` bytes.

    Returns:
        exactly `size` bytes, or fewer at the end of the stream (empty at EOF).
    """
    buf = spare if spare is not None and len(spare) == size else bytearray(size)
    filled = fill(source, buf)
    if filled < size:
        try:
            del buf[filled:]
        except BufferError:  # a sent part's buffer still exported somewhere: not resized
            return buf[:filled]
    return buf


def content_md5(data: bytes | bytearray | memoryview) -> str:
    """Base64 MD5 digest for the Content-MD5 header (an integrity check, not security)."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324


def put_part(client: Any, data: bytearray, digest: bytes, **request: Any) -> Any:
    """Send one part (`upload_part`) or a whole small object (`put_object`, no PartNumber).

    Args:
        client: the botocore client.
        data: the body.
        digest: its binary SHA-256 (`hashlib.sha256(data).digest()`), computed once by
            the caller: the request is signed with it and the server checks it.
        request: the other parameters of the call.

    Returns:
        the response.
    """
    method = client.upload_part if "PartNumber" in request else client.put_object
    with known_payload(data, digest.hex()):
        return method(Body=data, **request)


class MultipartUpload:
    """One streaming multipart upload to `bucket`/`key`.

    Args:
        client: the boto3 S3 client.
        bucket: the bucket.
        key: the full object key.
        plan: the part sizes.
        max_concurrency: parts sent in parallel.
        retry: retry policy for parts and the abort.
        on_part: optional callback(part_number, size) after each part is stored.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        plan: PartPlan,
        *,
        max_concurrency: int,
        retry: RetryPolicy,
        on_part: Callable[[int, int], None] | None = None,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._plan = plan
        self._concurrency = max(1, max_concurrency)
        self._retry = retry
        self._on_part = on_part
        self._slots = threading.Semaphore(self._concurrency)
        self._failed = threading.Event()
        self._error_lock = threading.Lock()
        self._first_error: BaseException | None = None
        # Buffers of parts already sent, filled again by the reader: no new allocation
        # (and no fresh pages to fault in) per part. Still at most max_concurrency + 1
        # buffers: the reader allocates only when no sent buffer is free.
        self._spares: deque[bytearray] = deque()
        self.upload_id: str | None = None
        #: the binary SHA-256 of each part sent, by part number
        self._digests: dict[int, bytes] = {}

    def run(
        self,
        first: list[bytearray],
        source: Readable,
        *,
        on_start: Callable[[str], None] | None = None,
    ) -> tuple[int, int, PartsChecksum]:
        """Upload `first` (a full first part already read) and the rest of `source`.

        Args:
            first: a list holding the first part, already read; emptied here so the
                caller keeps no reference to the buffer.
            source: the rest of the stream.
            on_start: called with the upload id once the multipart upload exists.

        Returns:
            (bytes stored, number of parts, the object's checksum)

        Raises:
            UploadAbortedError: any failure; the upload was aborted (or is pending abort).
        """
        try:
            resp = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)
        except Exception as exc:
            raise translate(exc, "start upload to", bucket=self._bucket, key=self._key) from exc
        self.upload_id = resp["UploadId"]
        if on_start is not None:
            on_start(resp["UploadId"])
        logger.debug("multipart upload %s started for %s", self.upload_id, self._key)
        try:
            etags, total = self._send_all(first, source)
            self._complete(etags)
        except Exception as exc:
            raise self._abort(exc) from exc
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: abort, keep the signal
            self._abort(exc)
            raise
        digests = [self._digests[number] for number in range(1, len(etags) + 1)]
        return total, len(etags), PartsChecksum(compose(digests), self._plan)

    # -- sending ---------------------------------------------------------------------

    def _send_all(
        self, first: list[bytearray], source: Readable
    ) -> tuple[list[dict[str, Any]], int]:
        futures: list[Future[dict[str, Any]]] = []
        total = 0
        # Buffers travel in one-item lists, so whoever pops one holds the only reference.
        box: list[bytearray] = [first.pop()]
        part_number = 1
        with ThreadPoolExecutor(self._concurrency, thread_name_prefix="s3-part") as pool:
            try:
                while True:
                    size = len(box[0])
                    self._slots.acquire()
                    if self._failed.is_set():
                        self._slots.release()
                        break
                    futures.append(pool.submit(self._send_part, part_number, box))
                    total += size
                    box = []
                    if size < self._plan.size(part_number):
                        break  # a short part is the last one
                    part_number += 1
                    nxt = read_part(source, self._plan.size(part_number), self._spare())
                    if not nxt:
                        break
                    if part_number > MAX_PARTS:
                        raise StorageError(
                            f"the stream is larger than {self._plan.capacity()} bytes, the "
                            "most one upload of this plan can hold (10,000 parts): pass a "
                            "size hint"
                        )
                    box = [nxt]
                    del nxt
            except BaseException:
                self._failed.set()
                for fut in futures:
                    fut.cancel()
                raise
            finally:
                box = []
        # Every sender has finished: report the failure that stopped the others.
        if self._first_error is not None:
            raise self._first_error
        return [fut.result() for fut in futures], total

    def _send_part(self, part_number: int, box: list[bytearray]) -> dict[str, Any]:
        data = box.pop()
        try:
            digest = hashlib.sha256(data).digest()  # once, whatever the retries
            attempt = 1
            while True:
                if self._failed.is_set():
                    raise StorageError(f"part {part_number} skipped: another part failed")
                try:
                    resp = put_part(
                        self._client,
                        data,
                        digest,
                        Bucket=self._bucket,
                        Key=self._key,
                        UploadId=self.upload_id,
                        PartNumber=part_number,
                    )
                    break
                except Exception as exc:
                    if attempt >= self._retry.part_attempts or _permanent(exc):
                        raise
                    delay = self._retry.delay(attempt)
                    logger.warning(
                        "part %d of %s failed (%s), retrying in %.1f s",
                        part_number,
                        self._key,
                        type(exc).__name__,
                        delay,
                    )
                    time.sleep(delay)
                    attempt += 1
            self._digests[part_number] = digest
            if self._on_part is not None:
                self._on_part(part_number, len(data))
            return {"PartNumber": part_number, "ETag": resp["ETag"]}
        except BaseException as exc:
            with self._error_lock:
                if not self._failed.is_set():
                    self._first_error = exc
                self._failed.set()
            raise
        finally:
            if not self._failed.is_set():
                self._spares.append(data)
            del data
            self._slots.release()

    def _spare(self) -> bytearray | None:
        try:
            return self._spares.pop()
        except IndexError:
            return None

    def _complete(self, etags: list[dict[str, Any]]) -> None:
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": etags},
        )

    # -- failure ---------------------------------------------------------------------

    def _abort(self, exc: BaseException) -> UploadAbortedError:
        """Abort the upload; return the error to raise (it says whether the abort worked)."""
        cause = translate(exc, "upload to", bucket=self._bucket, key=self._key)
        upload_id = self.upload_id or ""
        for attempt in range(1, self._retry.abort_attempts + 1):
            try:
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=upload_id
                )
            except Exception as abort_exc:
                if error_code(abort_exc) != "NoSuchUpload":
                    if attempt < self._retry.abort_attempts:
                        time.sleep(self._retry.delay(attempt))
                    continue
            logger.info("aborted multipart upload %s of %s", upload_id, self._key)
            return UploadAbortedError(
                f"{cause}; the partial upload was discarded",
                key=self._key,
                upload_id=upload_id,
                aborted=True,
            )
        logger.warning(
            "could not abort multipart upload %s of %s; cleanup_incomplete_uploads() will",
            upload_id,
            self._key,
        )
        return UploadAbortedError(
            f"{cause}; the partial upload could not be discarded now and is left for "
            "cleanup_incomplete_uploads()",
            key=self._key,
            upload_id=upload_id,
            aborted=False,
        )


_PERMANENT_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "NoSuchBucket",
        "NoSuchUpload",
        "InvalidPart",
        "EntityTooLarge",
        "EntityTooSmall",
    }
)


def _permanent(exc: BaseException) -> bool:
    """Whether retrying cannot help (bad credentials, missing bucket, gone upload)."""
    if isinstance(exc, StorageError):
        return True
    return error_code(exc) in _PERMANENT_CODES
