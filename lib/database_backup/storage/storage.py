"""`S3Storage`: every S3 operation the backups need, on one bucket and prefix."""

from __future__ import annotations

import datetime
import hashlib
import logging
import threading
from collections.abc import Callable, Collection, Iterator
from typing import Any, BinaryIO, cast

from database_backup.storage.checksum import PartsChecksum, compose
from database_backup.storage.client import RetryPolicy, S3Client
from database_backup.storage.config import S3Config
from database_backup.storage.copy import COPY_OBJECT_LIMIT, server_side_copy
from database_backup.storage.download import open_object
from database_backup.storage.errors import (
    ObjectNotFoundError,
    StorageError,
    UploadAbortedError,
    translate,
)
from database_backup.storage.parts import plan_parts
from database_backup.storage.protocol import ObjectInfo, ObjectStore, Readable, UploadResult
from database_backup.storage.upload import MultipartUpload, content_md5, put_part, read_part

logger = logging.getLogger(__name__)

#: DeleteObjects takes at most this many keys per request.
DELETE_BATCH = 1000


class S3Storage:
    """One bucket (and prefix) on an S3 service.

    Every key argument is relative to `config.path`. Errors are `StorageError`s with a
    message that says what failed and what to check, never a credential.

    Args:
        config: where and how.
        part_size: force the multipart part size (>= 5 MiB); by default it follows the
            upload's `size_hint` (see `database_backup.storage.parts`).
        max_concurrency: parts sent (or copied) in parallel per upload.
        retry: retry policy (botocore attempts, our per-part attempts, backoff).
        multipart_copy_threshold: server-side copies above this size use UploadPartCopy.
    """

    def __init__(
        self,
        config: S3Config,
        *,
        part_size: int | None = None,
        max_concurrency: int = 4,
        retry: RetryPolicy | None = None,
        multipart_copy_threshold: int = COPY_OBJECT_LIMIT,
    ) -> None:
        if part_size is not None:
            plan_parts(part_size=part_size)  # validates
        self.config = config
        self.part_size = part_size
        self.max_concurrency = max(1, max_concurrency)
        self.retry = retry or RetryPolicy()
        self.multipart_copy_threshold = multipart_copy_threshold
        self._s3 = S3Client(
            config, max_pool_connections=self.max_concurrency + 4, retry=self.retry
        )
        self._lock = threading.Lock()
        self._active_uploads: set[str] = set()
        self._pending_aborts: list[tuple[str, str]] = []

    def __repr__(self) -> str:
        return f"S3Storage({self.config.location()!r})"

    @property
    def client(self) -> Any:
        """The underlying boto3 client (thread-safe)."""
        return self._s3.client

    @property
    def bucket(self) -> str:
        """The bucket name."""
        return self.config.bucket

    def close(self) -> None:
        """Release connections and the CA bundle file."""
        self._s3.close()

    def __enter__(self) -> S3Storage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- checks ----------------------------------------------------------------------

    def check(self) -> None:
        """Verify the bucket is reachable and listable with these credentials.

        Raises:
            AccessDeniedError: the credentials are wrong or lack permission.
            BucketNotFoundError: the bucket does not exist.
            StorageError: the endpoint is unreachable, TLS fails, ...
        """
        self._call(
            "check access to",
            None,
            self.client.list_objects_v2,
            Bucket=self.bucket,
            Prefix=self.config.prefix,
            MaxKeys=1,
        )

    # -- single objects --------------------------------------------------------------

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store `data` at `key` in one PUT (for metadata and small files)."""
        full = self.config.full_key(key)
        self._call(
            "upload",
            full,
            self.client.put_object,
            Bucket=self.bucket,
            Key=full,
            Body=data,
            ContentMD5=content_md5(data),
        )

    def get_bytes(self, key: str) -> bytes:
        """The whole content of `key` (for metadata and small files).

        Raises:
            ObjectNotFoundError: no object at `key`.
        """
        with self.open_stream(key) as reader:
            return reader.read()

    def open_stream(self, key: str) -> BinaryIO:
        """Open `key` for streaming reads; resumes by itself after a broken connection.

        Raises:
            ObjectNotFoundError: no object at `key`.
        """
        reader = open_object(self.client, self.bucket, self.config.full_key(key), retry=self.retry)
        return cast(BinaryIO, reader)

    def head(self, key: str) -> ObjectInfo:
        """Size, time and ETag of `key`.

        Raises:
            ObjectNotFoundError: no object at `key`.
        """
        full = self.config.full_key(key)
        resp = self._call("look up", full, self.client.head_object, Bucket=self.bucket, Key=full)
        return ObjectInfo(
            key=key,
            size=int(resp["ContentLength"]),
            last_modified=_utc(resp["LastModified"]),
            etag=resp.get("ETag", ""),
        )

    def exists(self, key: str) -> bool:
        """Whether an object is stored at `key`."""
        try:
            self.head(key)
        except ObjectNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        """Delete `key` (no error when it does not exist)."""
        full = self.config.full_key(key)
        self._call("delete", full, self.client.delete_object, Bucket=self.bucket, Key=full)

    # -- streams ---------------------------------------------------------------------

    def upload_stream(
        self,
        key: str,
        source: Readable,
        *,
        size_hint: int | None = None,
        on_part: Callable[[int, int], None] | None = None,
    ) -> UploadResult:
        """Upload everything `source.read()` returns until b"" to `key`.

        A stream shorter than one part goes in one PUT; longer ones in a multipart upload
        with `max_concurrency` parts in flight and at most (max_concurrency + 1) part
        buffers in memory. The object appears only when the whole stream is stored.

        Args:
            key: the target key.
            source: any object with `read(n)` (or `readinto`): a pipe, a file, a stream
                stage. Not closed here.
            size_hint: the expected size, to choose the part size (S3 allows 10,000 parts).
            on_part: called as on_part(part_number, size) from a sender thread after each
                part is stored (progress reporting).

        Raises:
            UploadAbortedError: a multipart upload failed (S3 error, endpoint down, or the
                source raised: the original exception is the `__cause__`); nothing is
                stored at `key`. `aborted` tells whether the partial upload is already
                discarded (else `cleanup_incomplete_uploads()` discards it later).
            StorageError: the upload could not start (credentials, bucket, ...) or a
                single-PUT stream failed (a source error is the `__cause__`); nothing
                is stored at `key`.
        """
        full = self.config.full_key(key)
        plan = plan_parts(size_hint, self.part_size)
        try:
            first = read_part(source, plan.size(1))
        except Exception as exc:
            raise translate(exc, "read the stream for", bucket=self.bucket, key=full) from exc
        if len(first) < plan.size(1):
            digest = hashlib.sha256(first).digest()
            self._call(
                "upload",
                full,
                put_part,
                client=self.client,
                data=first,
                digest=digest,
                Bucket=self.bucket,
                Key=full,
            )
            if on_part is not None:
                on_part(1, len(first))
            return UploadResult(
                key=key, size=len(first), parts=1, checksum=PartsChecksum(compose([digest]), plan)
            )

        upload = MultipartUpload(
            self.client,
            self.bucket,
            full,
            plan,
            max_concurrency=self.max_concurrency,
            retry=self.retry,
            on_part=on_part,
        )
        box = [first]
        del first  # the uploader drops each buffer once sent
        try:
            size, parts, checksum = upload.run(box, source, on_start=self._track)
        except UploadAbortedError as exc:
            if not exc.aborted:
                with self._lock:
                    self._pending_aborts.append((exc.key, exc.upload_id))
            raise
        finally:
            if upload.upload_id:
                with self._lock:
                    self._active_uploads.discard(upload.upload_id)
        logger.info("uploaded %s (%d bytes, %d parts)", full, size, parts)
        return UploadResult(key=key, size=size, parts=parts, checksum=checksum)

    def _track(self, upload_id: str) -> None:
        with self._lock:
            self._active_uploads.add(upload_id)

    def cleanup_incomplete_uploads(
        self,
        prefix: str = "",
        *,
        older_than: datetime.timedelta | None = None,
        spare: Collection[str] = (),
    ) -> int:
        """Abort the multipart uploads left under `prefix`.

        Those are failed uploads whose abort could not reach the server, or uploads of a
        process that died. Uploads this `S3Storage` is running right now are never
        touched. Run it before a new backup job on the job's prefix, or periodically with
        `older_than` on the whole prefix when other processes may be uploading too.

        Args:
            prefix: key prefix, relative to the configuration's path.
            older_than: only abort uploads started at least this long ago.
            spare: key prefixes (relative, like `prefix`) whose uploads are never aborted
                (those of jobs known to be running).

        Returns:
            The number of uploads aborted.
        """
        full_prefix = self.config.full_key(prefix)
        aborted = self._retry_pending_aborts(full_prefix)
        with self._lock:
            active = set(self._active_uploads)
        spared = tuple(self.config.full_key(item) for item in spare)
        cutoff = None
        if older_than is not None:
            cutoff = datetime.datetime.now(datetime.timezone.utc) - older_than
        paginator = self.client.get_paginator("list_multipart_uploads")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full_prefix):
                for upload in page.get("Uploads", []):
                    if upload["UploadId"] in active or upload["Key"].startswith(spared):
                        continue
                    if cutoff is not None and upload["Initiated"] > cutoff:
                        continue
                    if self._abort(upload["Key"], upload["UploadId"]):
                        aborted += 1
        except Exception as exc:
            raise translate(
                exc, "list incomplete uploads in", bucket=self.bucket, key=full_prefix
            ) from exc
        if aborted:
            logger.info("aborted %d incomplete upload(s) under %s", aborted, full_prefix)
        return aborted

    def _retry_pending_aborts(self, full_prefix: str) -> int:
        """Abort the uploads this storage failed to abort before; return how many."""
        with self._lock:
            pending = [p for p in self._pending_aborts if p[0].startswith(full_prefix)]
        for key, upload_id in pending:
            self._abort(key, upload_id)
            with self._lock:
                self._pending_aborts.remove((key, upload_id))
        return len(pending)

    def _abort(self, full_key: str, upload_id: str) -> bool:
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=full_key, UploadId=upload_id
            )
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code == "NoSuchUpload":
                return True
            raise translate(exc, "abort the incomplete upload of", bucket=self.bucket,
                            key=full_key) from exc  # fmt: skip
        return True

    # -- listing ---------------------------------------------------------------------

    def list(self, prefix: str = "", *, page_size: int = 1000) -> Iterator[ObjectInfo]:
        """Every object under `prefix` (recursive, in key order), fetched page by page.

        Args:
            prefix: key prefix, relative to the configuration's path.
            page_size: keys per ListObjectsV2 request (S3's maximum is 1000).
        """
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=self.config.full_key(prefix),
            PaginationConfig={"PageSize": page_size},
        )
        try:
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(
                        key=self.config.relative_key(obj["Key"]),
                        size=int(obj["Size"]),
                        last_modified=_utc(obj["LastModified"]),
                        etag=obj.get("ETag", ""),
                    )
        except StorageError:
            raise
        except Exception as exc:
            raise translate(exc, "list", bucket=self.bucket, key=prefix) from exc

    def list_dirs(
        self, prefix: str = "", *, page_size: int = 1000, start_after: str = ""
    ) -> list[str]:
        """The "directories" right under `prefix` (common prefixes for delimiter "/").

        Args:
            prefix: key prefix, relative to the configuration's path.
            page_size: entries per ListObjectsV2 request (S3's maximum is 1000).
            start_after: list only keys after this one (relative, like `prefix`).

        Returns:
            Relative prefixes ending with "/", sorted, e.g. ["backups/a/", "backups/b/"].
        """
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        paginator = self.client.get_paginator("list_objects_v2")
        dirs: list[str] = []
        after = {"StartAfter": self.config.full_key(start_after)} if start_after else {}
        try:
            for page in paginator.paginate(
                Bucket=self.bucket,
                Prefix=self.config.full_key(prefix),
                Delimiter="/",
                PaginationConfig={"PageSize": page_size},
                **after,
            ):
                dirs.extend(
                    self.config.relative_key(p["Prefix"]) for p in page.get("CommonPrefixes", [])
                )
        except Exception as exc:
            raise translate(exc, "list", bucket=self.bucket, key=prefix) from exc
        return sorted(dirs)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix` (batched DeleteObjects).

        Returns:
            The number of objects deleted.

        Raises:
            ValueError: `prefix` is empty (that would delete everything).
            StorageError: S3 refused a deletion.
        """
        if not prefix.strip("/"):
            raise ValueError("refusing to delete an empty prefix (everything under the path)")
        keys = [self.config.full_key(info.key) for info in self.list(prefix)]
        deleted = 0
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            resp = self._call(
                "delete objects under",
                self.config.full_key(prefix),
                self.client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            errors = resp.get("Errors", [])
            if errors:
                first = errors[0]
                raise StorageError(
                    f"delete objects under s3://{self.bucket}/{self.config.full_key(prefix)} "
                    f"failed for {len(errors)} object(s), e.g. {first.get('Key')}: "
                    f"{first.get('Code')}"
                )
            deleted += len(batch)
        return deleted

    # -- copies ----------------------------------------------------------------------

    def copy(self, src_key: str, dst_key: str) -> None:
        """Copy `src_key` to `dst_key` in this bucket, server-side.

        Raises:
            ObjectNotFoundError: no object at `src_key`.
        """
        size = self.head(src_key).size
        self._server_copy(self, src_key, dst_key, size)

    def copy_to(self, dest: ObjectStore, src_key: str, dst_key: str) -> UploadResult:
        """Copy `src_key` of this storage to `dst_key` of `dest` (another bucket/region).

        Server-side when `dest` is an `S3Storage` with the same endpoint and credentials;
        otherwise streamed through this process (download and upload at once, bounded
        memory).

        Raises:
            ObjectNotFoundError: no object at `src_key`.
            StorageError: reading or writing failed; nothing is stored at `dst_key`.
        """
        size = self.head(src_key).size
        if isinstance(dest, S3Storage) and self.config.same_account(dest.config):
            self._server_copy(dest, src_key, dst_key, size)
            return UploadResult(key=dst_key, size=size)
        where = f"s3://{self.bucket}/{self.config.full_key(src_key)}"
        return _stream_copy(self, src_key, dest, dst_key, size, where=where)

    def _server_copy(self, dest: S3Storage, src_key: str, dst_key: str, size: int) -> None:
        server_side_copy(
            self.client,
            self.bucket,
            self.config.full_key(src_key),
            dest.bucket,
            dest.config.full_key(dst_key),
            size=size,
            multipart_threshold=self.multipart_copy_threshold,
            part_size=self.part_size,
            max_concurrency=self.max_concurrency,
        )

    # -- helpers ---------------------------------------------------------------------

    def _call(self, what: str, key: str | None, method: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except Exception as exc:
            raise translate(exc, what, bucket=self.bucket, key=key) from exc


def _utc(value: datetime.datetime) -> datetime.datetime:
    return value.astimezone(datetime.timezone.utc)


def copy_object(
    source: ObjectStore, src_key: str, dest: ObjectStore, dst_key: str
) -> UploadResult:
    """Copy `src_key` of `source` to `dst_key` of `dest`.

    Server-side when `source` is an `S3Storage` and `dest` one on the same endpoint and
    credentials (see `S3Storage.copy_to`); otherwise streamed through this process.

    Raises:
        ObjectNotFoundError: no object at `src_key`.
        StorageError: reading or writing failed; nothing is stored at `dst_key`.
    """
    if isinstance(source, S3Storage):
        return source.copy_to(dest, src_key, dst_key)
    size = source.head(src_key).size
    return _stream_copy(source, src_key, dest, dst_key, size, where=src_key)


def _stream_copy(
    source: ObjectStore, src_key: str, dest: ObjectStore, dst_key: str, size: int, *, where: str
) -> UploadResult:
    """Download and upload at once (bounded memory); a short copy is deleted."""
    with source.open_stream(src_key) as reader:
        result = dest.upload_stream(dst_key, reader, size_hint=size)
    if result.size != size:
        dest.delete(dst_key)
        raise StorageError(
            f"copy of {where} stored {result.size} bytes instead of {size}; the copy was deleted"
        )
    return result
