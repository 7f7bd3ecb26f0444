"""Listing, deleting, copying, TLS and resumable downloads on the real Ceph RGW."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import io
import os
import secrets

import pytest

from database_backup.storage import (
    AccessDeniedError,
    RetryPolicy,
    S3Config,
    S3Storage,
    copy_object,
)
from tests.infra.ceph import CephS3
from tests.unit.catalog.memstore import MemoryStore
from tests.workload.storage_helpers import CallCounter, MiB, PipeFeeder

PART = 5 * MiB


def test_listing_pages_through_every_key(ceph: CephS3, s3_config: S3Config):
    storage = S3Storage(dataclasses.replace(s3_config, path="cluster-a"))
    keys = [f"backups/{n:03d}/backup.json" for n in range(11)]
    for key in keys:
        storage.put_bytes(key, key.encode())
    storage.put_bytes("binlogs/bin.000001", b"log")
    ceph.client().put_object(Bucket=s3_config.bucket, Key="cluster-b/backups/x", Body=b"no")
    calls = CallCounter(storage.client)

    listed = list(storage.list("backups/", page_size=3))

    assert [info.key for info in listed] == keys  # relative to the path, in key order
    assert calls.calls["ListObjectsV2"] == 4  # 3 + 3 + 3 + 2
    assert all(info.size == len(info.key) for info in listed)
    assert all(info.last_modified.tzinfo == datetime.timezone.utc for info in listed)
    assert len(list(storage.list())) == 12  # cluster-b's object is not ours


def test_list_dirs(storage: S3Storage):
    for key in ("backups/b1/data", "backups/b1/backup.json", "backups/b2/data", "top.json"):
        storage.put_bytes(key, b"x")

    assert storage.list_dirs("backups") == ["backups/b1/", "backups/b2/"]
    assert storage.list_dirs("backups/", page_size=1) == ["backups/b1/", "backups/b2/"]
    assert storage.list_dirs() == ["backups/"]


def test_delete_prefix_removes_only_that_prefix(storage: S3Storage):
    for n in range(7):
        storage.put_bytes(f"backups/old/part-{n}", b"x")
    storage.put_bytes("backups/older", b"keep: same leading characters, other prefix")
    storage.put_bytes("backups/new/data", b"keep")

    assert storage.delete_prefix("backups/old/") == 7

    assert [i.key for i in storage.list()] == ["backups/new/data", "backups/older"]
    with pytest.raises(ValueError, match="empty prefix"):
        storage.delete_prefix("")


def test_server_side_copy(storage: S3Storage):
    data = os.urandom(3 * MiB)
    storage.put_bytes("src", data)
    calls = CallCounter(storage.client)

    storage.copy("src", "dst")

    assert calls.calls.get("CopyObject") == 1
    assert "GetObject" not in calls.calls
    assert "PutObject" not in calls.calls
    assert storage.get_bytes("dst") == data


def test_server_side_multipart_copy(s3_config: S3Config):
    storage = S3Storage(
        s3_config, part_size=PART, max_concurrency=3, multipart_copy_threshold=PART
    )
    with PipeFeeder(17 * MiB) as feeder:
        storage.upload_stream("big", feeder.reader)
        feeder.join()
    calls = CallCounter(storage.client)

    storage.copy("big", "big-copy")

    assert calls.calls["UploadPartCopy"] == 4  # 5 + 5 + 5 + 2 MiB
    assert "GetObject" not in calls.calls
    assert hashlib.sha256(storage.get_bytes("big-copy")).hexdigest() == feeder.sha256


def test_copy_to_another_bucket_of_the_same_account_is_server_side(ceph: CephS3, bucket: str):
    other_bucket = f"dest-{secrets.token_hex(4)}"
    ceph.create_bucket(other_bucket)
    try:
        src = S3Storage(ceph.s3_config(bucket, path="a"))
        dst = S3Storage(ceph.s3_config(other_bucket, path="b"))
        src.put_bytes("backups/1/data", b"payload")
        calls = CallCounter(src.client)

        src.copy_to(dst, "backups/1/data", "backups/1/data")

        assert calls.calls.get("CopyObject") == 1
        assert dst.get_bytes("backups/1/data") == b"payload"
        assert ceph.keys(other_bucket) == ["b/backups/1/data"]
    finally:
        ceph.remove_bucket(other_bucket)


def test_copy_to_another_account_streams_through(ceph: CephS3, s3_config: S3Config):
    """Two accounts that cannot see each other's buckets (two regions): streamed copy.

    The data passes through this process with bounded memory and arrives intact.
    """
    remote_user = ceph.create_user(f"region-b-{secrets.token_hex(3)}")
    remote_bucket = f"region-b-{secrets.token_hex(4)}"
    ceph.create_bucket(remote_bucket, user=remote_user)
    try:
        src = S3Storage(s3_config, part_size=PART, max_concurrency=2)
        dst = S3Storage(
            ceph.s3_config(remote_bucket, "replica", user=remote_user),
            part_size=PART,
            max_concurrency=2,
        )
        with pytest.raises(AccessDeniedError):  # no server-side shortcut is possible
            S3Storage(ceph.s3_config(s3_config.bucket, user=remote_user)).check()
        with PipeFeeder(13 * MiB + 1) as feeder:
            src.upload_stream("backups/7/data", feeder.reader)
            feeder.join()
        src_calls = CallCounter(src.client)

        result = src.copy_to(dst, "backups/7/data", "backups/7/data")

        assert result.size == 13 * MiB + 1
        assert result.parts == 3
        assert src_calls.calls.get("GetObject") == 1
        assert "CopyObject" not in src_calls.calls
        stored = dst.get_bytes("backups/7/data")
        assert hashlib.sha256(stored).hexdigest() == feeder.sha256
    finally:
        ceph.remove_bucket(remote_bucket, user=remote_user)


def test_tls_with_the_ca_chain(ceph: CephS3, bucket: str):
    config = ceph.s3_config(bucket, tls=True)
    assert config.endpoint is not None
    assert config.endpoint.startswith("https://")
    storage = S3Storage(config, part_size=PART, max_concurrency=2)
    storage.check()

    with PipeFeeder(12 * MiB) as feeder:
        result = storage.upload_stream("over-tls", feeder.reader)
        feeder.join()

    assert result.parts == 3
    with storage.open_stream("over-tls") as reader:
        assert hashlib.sha256(reader.read()).hexdigest() == feeder.sha256
    storage.close()


def test_path_style_requests(s3_config: S3Config):
    storage = S3Storage(s3_config)
    urls: list[str] = []
    storage.client.meta.events.register(
        "before-send.s3", lambda request, **_: urls.append(request.url)
    )

    storage.put_bytes("styled", b"x")

    assert urls == [f"{s3_config.endpoint}/{s3_config.bucket}/styled"]


def test_download_resumes_after_the_gateway_restarts(ceph: CephS3, s3_config: S3Config):
    storage = S3Storage(
        s3_config,
        part_size=PART,
        retry=RetryPolicy(max_attempts=2, part_attempts=6, backoff=0.2, backoff_max=0.5),
    )
    with PipeFeeder(64 * MiB) as feeder:
        storage.upload_stream("restore-me", feeder.reader)
        feeder.join()
    calls = CallCounter(storage.client)
    digest = hashlib.sha256()

    with storage.open_stream("restore-me") as reader:
        digest.update(reader.read(MiB))
        ceph.kill_rgw()
        ceph.restart_rgw()
        while chunk := reader.read(MiB):
            digest.update(chunk)

    assert digest.hexdigest() == feeder.sha256
    assert calls.calls["GetObject"] >= 2, "the download did not need to resume"


def test_put_and_get_bytes_with_a_path(s3_config: S3Config, ceph: CephS3):
    storage = S3Storage(dataclasses.replace(s3_config, path="/deep/prefix/"))

    storage.put_bytes("backups/x/backup.json", b'{"id": "x"}')

    assert ceph.keys(s3_config.bucket) == ["deep/prefix/backups/x/backup.json"]
    assert storage.get_bytes("backups/x/backup.json") == b'{"id": "x"}'
    assert storage.exists("backups/x/backup.json")
    info = storage.head("backups/x/backup.json")
    assert info.key == "backups/x/backup.json"
    assert info.size == 11
    storage.delete("backups/x/backup.json")
    assert not storage.exists("backups/x/backup.json")
    assert storage.upload_stream("s", io.BytesIO(b"abc")).key == "s"


def test_copy_object_between_s3_and_another_object_store(storage: S3Storage):
    """Any two `ObjectStore`s copy through the protocol's streams (S3 out, S3 in)."""
    payload = secrets.token_bytes(6 * MiB + 3)
    storage.put_bytes("backups/1/data", payload)
    memory = MemoryStore()

    out = copy_object(storage, "backups/1/data", memory, "held/data")
    back = copy_object(memory, "held/data", storage, "backups/2/data")

    assert (out.key, out.size) == ("held/data", len(payload))
    assert back.size == len(payload)
    assert storage.get_bytes("backups/2/data") == payload
