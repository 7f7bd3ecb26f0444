"""Storage errors: what failed, in words an operator can act on, never a secret."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from database_backup.storage.client import sdk_exceptions


class StorageError(Exception):
    """An S3 operation failed. The message says what failed and what to check."""


class AccessDeniedError(StorageError):
    """S3 refused the credentials or the permission (wrong access key, secret key, policy)."""


class BucketNotFoundError(StorageError):
    """The bucket does not exist (or is not visible with these credentials)."""


class ObjectNotFoundError(StorageError):
    """No object at that key."""


class UploadAbortedError(StorageError):
    """A multipart upload failed; no object was stored at the key.

    Attributes:
        key: the full object key of the failed upload.
        upload_id: its multipart upload id.
        aborted: whether the parts already sent were discarded; when False (the endpoint
            was unreachable), `S3Storage.cleanup_incomplete_uploads()` discards them later.
    """

    def __init__(self, message: str, *, key: str, upload_id: str, aborted: bool) -> None:
        super().__init__(message)
        self.key = key
        self.upload_id = upload_id
        self.aborted = aborted


_ACCESS_CODES = {
    "InvalidAccessKeyId": "S3 does not know the access key (InvalidAccessKeyId): check the "
    "access key",
    "SignatureDoesNotMatch": "S3 rejected the request signature (SignatureDoesNotMatch): "
    "check the secret key",
    "AccessDenied": "S3 denied access (AccessDenied): check that these credentials may use "
    "the bucket",
    "InvalidToken": "S3 rejected the session token (InvalidToken): check the credentials",
    "ExpiredToken": "the S3 credentials expired (ExpiredToken): renew them",
    "AllAccessDisabled": "all access to this bucket is disabled (AllAccessDisabled)",
}


#: the server's hash of what it received is not the one sent with it
_DAMAGED_CODES = frozenset({"BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"})


def _response_field(exc: BaseException, section: str, name: str) -> object:
    """`exc.response[section][name]` of a botocore `ClientError`, or None."""
    value: object = getattr(exc, "response", None)
    for key in (section, name):
        if not isinstance(value, Mapping):
            return None
        value = cast("Mapping[str, object]", value).get(key)
    return value


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore `ClientError` ("" when none)."""
    return str(_response_field(exc, "Error", "Code") or "")


def http_status(exc: BaseException) -> int:
    """The HTTP status of a botocore `ClientError` (0 when unknown)."""
    status = _response_field(exc, "ResponseMetadata", "HTTPStatusCode")
    return status if isinstance(status, int) else int(str(status or 0))


def translate(
    exc: BaseException, what: str, *, bucket: str, key: str | None = None
) -> StorageError:
    """Turn a botocore exception into our error type with a clear message.

    Args:
        exc: what boto3/botocore raised.
        what: the operation, in words ("upload", "list backups", ...).
        bucket: the bucket involved.
        key: the object key involved, if any.
    """
    if isinstance(exc, StorageError):
        return exc
    sdk = sdk_exceptions()  # already imported: only an S3 client raises what comes here
    where = f"s3://{bucket}/{key}" if key is not None else f"bucket {bucket!r}"
    if isinstance(exc, sdk.ClientError):
        return _refused(exc, what, where, bucket=bucket, key=key)
    if isinstance(exc, sdk.SSLError):
        return StorageError(
            f"{what} {where} failed: TLS error talking to the endpoint ({exc}): check the "
            "endpoint URL and the CA chain"
        )
    if isinstance(
        exc, (sdk.EndpointConnectionError, sdk.ConnectionClosedError, sdk.ReadTimeoutError)
    ):
        return StorageError(
            f"{what} {where} failed: the S3 endpoint is unreachable or stopped answering "
            f"({type(exc).__name__}); check the endpoint and retry"
        )
    if isinstance(exc, sdk.BotoCoreError):
        return StorageError(f"{what} {where} failed: {type(exc).__name__}: {exc}")
    return StorageError(f"{what} {where} failed: {type(exc).__name__}: {exc}")


def _refused(
    exc: BaseException, what: str, where: str, *, bucket: str, key: str | None
) -> StorageError:
    """The error for an answer of the server (a botocore `ClientError`)."""
    code = error_code(exc)
    status = http_status(exc)
    if code in _ACCESS_CODES:
        return AccessDeniedError(f"{what} {where} failed: {_ACCESS_CODES[code]}")
    if code == "NoSuchBucket" or (status == 404 and key is None):
        return BucketNotFoundError(
            f"{what} {where} failed: the bucket {bucket!r} does not exist (NoSuchBucket): "
            "create it or fix the bucket name"
        )
    if code in _DAMAGED_CODES:
        return StorageError(
            f"{what} {where} failed: S3 received other bytes than were sent ({code}) and "
            "stored none of them: check what sits between this machine and the endpoint "
            "(proxy, TLS offload, network card), then retry"
        )
    if code in ("NoSuchKey", "NotFound", "404") or status == 404:
        return ObjectNotFoundError(f"{what} {where} failed: no such object")
    if status == 403:
        return AccessDeniedError(
            f"{what} {where} failed: S3 answered 403 Forbidden: check the access key, "
            "the secret key and the bucket's permissions"
        )
    return StorageError(f"{what} {where} failed: S3 error {code or status}")
