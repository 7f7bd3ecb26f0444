"""Server-side copy: CopyObject up to 5 GiB, UploadPartCopy in parallel ranges above."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from database_backup.storage.errors import UploadAbortedError, translate
from database_backup.storage.parts import GiB, choose_part_size

logger = logging.getLogger(__name__)

#: CopyObject's limit; larger objects are copied part by part.
COPY_OBJECT_LIMIT = 5 * GiB


def server_side_copy(
    client: Any,
    src_bucket: str,
    src_key: str,
    dst_bucket: str,
    dst_key: str,
    *,
    size: int,
    multipart_threshold: int = COPY_OBJECT_LIMIT,
    part_size: int | None = None,
    max_concurrency: int = 4,
) -> None:
    """Copy an object inside the S3 service, the data never leaves the server.

    Args:
        client: a client whose credentials may read the source and write the target.
        src_bucket: source bucket.
        src_key: source full key.
        dst_bucket: target bucket.
        dst_key: target full key.
        size: the source object's size.
        multipart_threshold: above this size, copy with UploadPartCopy.
        part_size: the range size for UploadPartCopy (default from `choose_part_size`).
        max_concurrency: ranges copied in parallel.

    Raises:
        StorageError: the copy failed; a multipart copy is aborted.
    """
    source = {"Bucket": src_bucket, "Key": src_key}
    if size <= multipart_threshold:
        try:
            client.copy_object(CopySource=source, Bucket=dst_bucket, Key=dst_key)
        except Exception as exc:
            raise translate(exc, "copy to", bucket=dst_bucket, key=dst_key) from exc
        return

    step = part_size or choose_part_size(size)
    ranges = [(start, min(start + step, size) - 1) for start in range(0, size, step)]
    try:
        upload_id = client.create_multipart_upload(Bucket=dst_bucket, Key=dst_key)["UploadId"]
    except Exception as exc:
        raise translate(exc, "copy to", bucket=dst_bucket, key=dst_key) from exc

    def copy_range(part_number: int, first: int, last: int) -> dict[str, Any]:
        resp = client.upload_part_copy(
            Bucket=dst_bucket,
            Key=dst_key,
            UploadId=upload_id,
            PartNumber=part_number,
            CopySource=source,
            CopySourceRange=f"bytes={first}-{last}",
        )
        return {"PartNumber": part_number, "ETag": resp["CopyPartResult"]["ETag"]}

    try:
        with ThreadPoolExecutor(max(1, max_concurrency), thread_name_prefix="s3-copy") as pool:
            futures = [
                pool.submit(copy_range, n, first, last)
                for n, (first, last) in enumerate(ranges, start=1)
            ]
            parts = [fut.result() for fut in futures]
        client.complete_multipart_upload(
            Bucket=dst_bucket, Key=dst_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
        )
    except Exception as exc:
        cause = translate(exc, "copy to", bucket=dst_bucket, key=dst_key)
        aborted = True
        try:
            client.abort_multipart_upload(Bucket=dst_bucket, Key=dst_key, UploadId=upload_id)
        except Exception:
            aborted = False
            logger.warning("could not abort multipart copy %s of %s", upload_id, dst_key)
        raise UploadAbortedError(
            str(cause), key=dst_key, upload_id=upload_id, aborted=aborted
        ) from exc
    logger.debug("copied %s to %s in %d parts", src_key, dst_key, len(ranges))
