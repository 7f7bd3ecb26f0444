"""S3Config, the botocore client settings and error messages (no network)."""

from __future__ import annotations

import logging
import os

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError, EndpointConnectionError

from database_backup.storage import (
    AccessDeniedError,
    BucketNotFoundError,
    ObjectNotFoundError,
    S3Config,
    S3Storage,
    StorageError,
    botocore_config,
)
from database_backup.storage.errors import translate

SECRET = "s3cr3t-value-that-must-not-leak"


def config(**kwargs) -> S3Config:
    values = {
        "bucket": "backups",
        "access_key": "AKIDEXAMPLE",
        "secret_key": SECRET,
        "endpoint": "https://s3.example.test",
        "region": "eu-west-1",
    }
    values.update(kwargs)
    return S3Config(**values)


class _EmptyRaw:
    def stream(self, **_):
        yield b""


def capture_urls(storage: S3Storage) -> list[str]:
    """Answer every request with an empty 200 locally, recording the URL it would hit."""
    urls: list[str] = []

    def answer(request, **_):
        urls.append(request.url)
        return AWSResponse(request.url, 200, {}, _EmptyRaw())

    storage.client.meta.events.register("before-send.s3", answer)
    return urls


def test_virtual_addressing_is_configured_and_used():
    storage = S3Storage(config(uri_style="virtual"))

    assert storage.client.meta.config.s3["addressing_style"] == "virtual"
    urls = capture_urls(storage)
    storage.put_bytes("k", b"v")
    assert urls == ["https://backups.s3.example.test/k"]


def test_path_addressing_is_the_default():
    storage = S3Storage(config())

    assert storage.client.meta.config.s3["addressing_style"] == "path"
    urls = capture_urls(storage)
    storage.put_bytes("k", b"v")
    assert urls == ["https://s3.example.test/backups/k"]


def test_checksums_and_retries_suit_s3_compatible_servers():
    cfg = botocore_config(config(), max_attempts=7)

    assert getattr(cfg, "request_checksum_calculation") == "when_required"  # noqa: B009
    assert getattr(cfg, "response_checksum_validation") == "when_required"  # noqa: B009
    assert getattr(cfg, "retries") == {"max_attempts": 7, "mode": "standard"}  # noqa: B009


def test_a_bad_uri_style_is_refused():
    with pytest.raises(ValueError, match="uri_style"):
        config(uri_style="dns")


def test_path_prefix_normalization():
    assert config(path="").full_key("a/b") == "a/b"
    assert config(path="/x/y/").full_key("a") == "x/y/a"
    assert config(path="x").full_key("/a") == "x/a"
    assert config(path="x").relative_key("x/a/b") == "a/b"


def test_secrets_stay_out_of_reprs():
    cfg = config(tls_ca_chain="-----BEGIN CERTIFICATE-----\n...")

    assert SECRET not in repr(cfg)
    assert "AKIDEXAMPLE" not in repr(cfg)
    assert SECRET not in repr(S3Storage(config()))


def test_the_ca_chain_goes_to_a_private_file_removed_on_close():
    storage = S3Storage(config(tls_ca_chain="-----BEGIN CERTIFICATE-----\nMIIB\n"))
    path = storage.client._endpoint.http_session._verify

    assert os.stat(path).st_mode & 0o077 == 0
    storage.close()
    assert not os.path.exists(path)


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutObject",
    )


@pytest.mark.parametrize(
    ("code", "status", "kind", "words"),
    [
        ("SignatureDoesNotMatch", 403, AccessDeniedError, "check the secret key"),
        ("InvalidAccessKeyId", 403, AccessDeniedError, "check the access key"),
        ("AccessDenied", 403, AccessDeniedError, "may use the bucket"),
        ("403", 403, AccessDeniedError, "403 Forbidden"),
        ("NoSuchBucket", 404, BucketNotFoundError, "does not exist"),
        ("NoSuchKey", 404, ObjectNotFoundError, "no such object"),
        ("InternalError", 500, StorageError, "InternalError"),
        ("BadDigest", 400, StorageError, "S3 received other bytes than were sent"),
        ("XAmzContentSHA256Mismatch", 400, StorageError, "stored none of them"),
    ],
)
def test_error_translation(code: str, status: int, kind: type, words: str):
    error = translate(client_error(code, status), "upload", bucket="b", key="k")

    assert type(error) is kind
    assert words in str(error)
    assert "s3://b/k" in str(error)


def test_connection_errors_say_unreachable():
    error = translate(
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), "list", bucket="b"
    )

    assert "unreachable" in str(error)


def test_sdk_debug_logs_are_kept_out_of_a_debug_root_logger():
    for name in ("botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.NOTSET)
    logging.getLogger("boto3").setLevel(logging.DEBUG)  # explicitly asked for: kept

    S3Storage(config())

    assert logging.getLogger("botocore").level == logging.WARNING
    assert logging.getLogger("urllib3").level == logging.WARNING
    assert logging.getLogger("boto3").level == logging.DEBUG
    logging.getLogger("boto3").setLevel(logging.NOTSET)
