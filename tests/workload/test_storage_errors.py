"""Clear errors from the real Ceph RGW: credentials, missing bucket/object, dead endpoint, TLS."""

from __future__ import annotations

import dataclasses
import io
import secrets

import pytest

from database_backup.storage import (
    AccessDeniedError,
    BucketNotFoundError,
    ObjectNotFoundError,
    RetryPolicy,
    S3Config,
    S3Storage,
    StorageError,
)
from tests.infra.ceph import CephS3
from tests.infra.net import free_port
from tests.workload.storage_helpers import MiB

QUICK = RetryPolicy(max_attempts=1, part_attempts=1, backoff=0.01, abort_attempts=1)


def test_wrong_secret_key_is_access_denied_with_a_clear_message(s3_config: S3Config):
    wrong = "definitely-not-the-secret-key"
    storage = S3Storage(dataclasses.replace(s3_config, secret_key=wrong), retry=QUICK)

    with pytest.raises(AccessDeniedError) as excinfo:
        storage.check()

    message = str(excinfo.value)
    assert "SignatureDoesNotMatch" in message
    assert "check the secret key" in message
    assert s3_config.bucket in message
    assert wrong not in message
    assert s3_config.secret_key not in message


def test_wrong_access_key_is_access_denied(s3_config: S3Config):
    storage = S3Storage(dataclasses.replace(s3_config, access_key="AKNOBODY"), retry=QUICK)

    with pytest.raises(AccessDeniedError, match=r"InvalidAccessKeyId.*check the access key"):
        storage.check()
    with pytest.raises(AccessDeniedError):
        storage.put_bytes("x", b"data")


def test_wrong_credentials_fail_an_upload_before_any_data_is_sent(
    ceph: CephS3, s3_config: S3Config
):
    storage = S3Storage(
        dataclasses.replace(s3_config, secret_key="wrong"), part_size=5 * MiB, retry=QUICK
    )

    with pytest.raises(AccessDeniedError):
        storage.upload_stream("big", io.BytesIO(bytes(11 * MiB)))

    assert ceph.keys(s3_config.bucket) == []
    assert ceph.multipart_uploads(s3_config.bucket) == []


def test_another_users_bucket_is_access_denied(ceph: CephS3, bucket: str):
    other = ceph.create_user(f"intruder-{secrets.token_hex(3)}")
    storage = S3Storage(ceph.s3_config(bucket, user=other), retry=QUICK)

    with pytest.raises(AccessDeniedError, match="AccessDenied"):
        storage.check()


def test_missing_bucket(ceph: CephS3):
    storage = S3Storage(ceph.s3_config("no-such-bucket-here"), retry=QUICK)

    with pytest.raises(BucketNotFoundError, match=r"'no-such-bucket-here' does not exist"):
        storage.check()
    with pytest.raises(BucketNotFoundError):
        storage.put_bytes("k", b"v")
    with pytest.raises(BucketNotFoundError):
        storage.get_bytes("k")
    with pytest.raises(BucketNotFoundError):
        list(storage.list())


def test_missing_object(storage: S3Storage):
    with pytest.raises(ObjectNotFoundError, match="no such object"):
        storage.get_bytes("nothing/here")
    with pytest.raises(ObjectNotFoundError):
        storage.head("nothing/here")
    with pytest.raises(ObjectNotFoundError):
        storage.open_stream("nothing/here")
    with pytest.raises(ObjectNotFoundError):
        storage.copy("nothing/here", "elsewhere")
    assert not storage.exists("nothing/here")
    storage.delete("nothing/here")  # deleting what is not there is not an error


def test_unreachable_endpoint(s3_config: S3Config):
    dead = dataclasses.replace(s3_config, endpoint=f"http://127.0.0.1:{free_port()}")
    storage = S3Storage(dead, retry=QUICK)

    with pytest.raises(StorageError, match="unreachable") as excinfo:
        storage.check()

    assert not isinstance(excinfo.value, AccessDeniedError)


def test_tls_without_the_ca_chain_is_refused(ceph: CephS3, bucket: str):
    config = dataclasses.replace(ceph.s3_config(bucket, tls=True), tls_ca_chain=None)
    storage = S3Storage(config, retry=QUICK)

    with pytest.raises(StorageError, match=r"TLS.*CA chain"):
        storage.check()


def test_no_secret_in_repr(s3_config: S3Config):
    storage = S3Storage(s3_config)

    for text in (repr(s3_config), repr(storage), str(s3_config)):
        assert s3_config.secret_key not in text
        assert s3_config.access_key not in text
