"""Streaming uploads to the real Ceph RGW: multipart from pipes, bounded memory, faults."""

from __future__ import annotations

import datetime
import hashlib
import io
import subprocess
import threading
import tracemalloc
from pathlib import Path

import pytest

from database_backup.storage import (
    RetryPolicy,
    S3Config,
    S3Storage,
    StorageError,
    UploadAbortedError,
)
from tests.infra.ceph import CephS3
from tests.workload.storage_helpers import CallCounter, CountingSource, MiB, PipeFeeder

PART = 5 * MiB  # S3's minimum part size

FAST_FAIL = RetryPolicy(
    max_attempts=2, part_attempts=2, backoff=0.05, backoff_max=0.1, abort_attempts=2
)


def sha256_of(storage: S3Storage, key: str) -> str:
    digest = hashlib.sha256()
    with storage.open_stream(key) as reader:
        while chunk := reader.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def test_pipe_of_40_mib_goes_up_in_parallel_parts(s3_config: S3Config):
    storage = S3Storage(s3_config, part_size=PART, max_concurrency=3)
    calls = CallCounter(storage.client)
    parts_seen: list[tuple[int, int]] = []

    with PipeFeeder(40 * MiB + 12345) as feeder:
        result = storage.upload_stream(
            "backups/b1/data", feeder.reader, on_part=lambda n, size: parts_seen.append((n, size))
        )
        feeder.join()

    assert result.size == 40 * MiB + 12345
    assert result.parts == 9  # 8 full parts of 5 MiB + the rest
    assert sorted(parts_seen) == [(n, PART) for n in range(1, 9)] + [(9, 12345)]
    assert calls.calls["UploadPart"] == 9
    assert calls.max_active["UploadPart"] >= 2, "parts were not sent in parallel"
    assert calls.max_active["UploadPart"] <= 3
    assert storage.head("backups/b1/data").size == result.size
    assert sha256_of(storage, "backups/b1/data") == feeder.sha256


def test_subprocess_stdout_streams_to_s3(s3_config: S3Config, tmp_path: Path):
    copy = tmp_path / "what-the-producer-wrote"
    producer = subprocess.Popen(
        ["sh", "-c", f"head -c {23 * MiB + 7} /dev/urandom | tee {copy}"],
        stdout=subprocess.PIPE,
    )
    assert producer.stdout is not None
    storage = S3Storage(s3_config, part_size=PART, max_concurrency=2)

    result = storage.upload_stream("dump.sql", producer.stdout)

    assert producer.wait(30) == 0
    assert result.size == 23 * MiB + 7
    assert result.parts == 5
    assert sha256_of(storage, "dump.sql") == hashlib.sha256(copy.read_bytes()).hexdigest()


def test_upload_reads_no_more_than_concurrency_plus_one_parts_ahead(s3_config: S3Config):
    """The uploader never runs more than (max_concurrency + 1) parts ahead of S3.

    Bytes taken from the source minus bytes S3 has acknowledged stay within that bound
    although the pipe always has more to give: the uploader blocks instead of buffering.
    """
    concurrency = 2
    storage = S3Storage(s3_config, part_size=PART, max_concurrency=concurrency)
    acked = 0
    lock = threading.Lock()

    def on_part(_number: int, size: int) -> None:
        nonlocal acked
        with lock:
            acked += size

    def acked_now() -> int:
        with lock:
            return acked

    with PipeFeeder(48 * MiB) as feeder:
        source = CountingSource(feeder.reader, acked=acked_now)
        result = storage.upload_stream("bounded", source, on_part=on_part)

    assert result.size == 48 * MiB
    # The pipe is always ahead of the uploader, so an unbounded reader would run far ahead.
    assert source.high_water <= (concurrency + 1) * PART
    assert source.high_water > concurrency * PART - MiB  # the window is really used


def test_upload_memory_stays_within_the_part_buffers(s3_config: S3Config):
    """Peak Python memory while streaming 48 MiB stays near (max_concurrency + 1) parts."""
    concurrency = 2
    storage = S3Storage(s3_config, part_size=PART, max_concurrency=concurrency)
    storage.check()  # warm up the client before measuring

    with PipeFeeder(48 * MiB) as feeder:
        tracemalloc.start()
        try:
            result = storage.upload_stream("measured", feeder.reader)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        feeder.join()

    assert result.size == 48 * MiB
    assert sha256_of(storage, "measured") == feeder.sha256
    bound = (concurrency + 1) * PART
    assert peak <= bound + 2 * MiB, f"peak {peak / MiB:.1f} MiB > {bound / MiB:.0f} MiB bound"
    assert peak >= PART  # the measurement sees the part buffers at all


def test_a_short_stream_is_one_put(s3_config: S3Config):
    storage = S3Storage(s3_config, part_size=PART)
    calls = CallCounter(storage.client)

    result = storage.upload_stream("small.json", io.BytesIO(b'{"ok": true}'))

    assert result.size == 12
    assert result.parts == 1
    assert "CreateMultipartUpload" not in calls.calls
    assert storage.get_bytes("small.json") == b'{"ok": true}'


def test_an_empty_stream_is_an_empty_object(storage: S3Storage):
    result = storage.upload_stream("empty", io.BytesIO(b""))

    assert result.size == 0
    assert storage.head("empty").size == 0
    assert storage.get_bytes("empty") == b""


def test_a_stream_of_exactly_n_parts(s3_config: S3Config):
    storage = S3Storage(s3_config, part_size=PART, max_concurrency=2)
    data = bytes(range(256)) * (2 * PART // 256)

    result = storage.upload_stream("exact", io.BytesIO(data))

    assert result.parts == 2
    assert storage.get_bytes("exact") == data


def test_source_failure_aborts_and_leaves_nothing(ceph: CephS3, s3_config: S3Config):
    storage = S3Storage(s3_config, part_size=PART, max_concurrency=2)

    with PipeFeeder(30 * MiB) as feeder:
        source = CountingSource(feeder.reader, fail_at=12 * MiB)
        with pytest.raises(UploadAbortedError) as excinfo:
            storage.upload_stream("backups/broken/data", source)

    assert excinfo.value.aborted
    assert isinstance(excinfo.value.__cause__, OSError)
    assert "producer died" in str(excinfo.value)
    assert not storage.exists("backups/broken/data")
    assert ceph.multipart_uploads(s3_config.bucket) == []


def test_gateway_killed_mid_upload(ceph: CephS3, s3_config: S3Config):
    """The endpoint dies mid-upload: a clear StorageError and no object.

    The parts left behind (the abort could not reach the dead gateway) are removed by
    cleanup_incomplete_uploads() once the gateway is back.
    """
    storage = S3Storage(s3_config, part_size=PART, max_concurrency=2, retry=FAST_FAIL)

    with PipeFeeder(40 * MiB) as feeder:
        source = CountingSource(feeder.reader, trigger_at=12 * MiB, trigger=ceph.kill_rgw)
        with pytest.raises(StorageError) as excinfo:
            storage.upload_stream("backups/killed/data", source)

    error = excinfo.value
    assert isinstance(error, UploadAbortedError)
    assert "unreachable" in str(error)
    assert not error.aborted
    assert "cleanup_incomplete_uploads" in str(error)
    assert source.bytes_read < 40 * MiB  # it stopped reading instead of draining the pipe

    ceph.restart_rgw()
    assert not storage.exists("backups/killed/data")
    left = ceph.multipart_uploads(s3_config.bucket)
    assert [u["UploadId"] for u in left] == [error.upload_id]

    assert storage.cleanup_incomplete_uploads("backups/") == 1

    assert ceph.multipart_uploads(s3_config.bucket) == []
    assert storage.cleanup_incomplete_uploads("backups/") == 0


def test_a_brief_gateway_outage_is_retried(ceph: CephS3, s3_config: S3Config):
    """Parts failing while the gateway restarts are retried with backoff; nothing is lost."""
    # botocore gives up at once, so it is our part retry that rides out the outage
    retry = RetryPolicy(max_attempts=1, part_attempts=10, backoff=0.25, backoff_max=1.0)
    storage = S3Storage(s3_config, part_size=PART, max_concurrency=2, retry=retry)
    calls = CallCounter(storage.client)
    restarter: list[threading.Thread] = []

    def outage() -> None:
        ceph.kill_rgw()
        timer = threading.Timer(0.5, ceph.restart_rgw)
        timer.start()
        restarter.append(timer)

    with PipeFeeder(25 * MiB) as feeder:
        source = CountingSource(feeder.reader, trigger_at=7 * MiB, trigger=outage)
        result = storage.upload_stream("survivor", source)
        feeder.join()
    restarter[0].join()

    assert result.size == 25 * MiB
    assert result.parts == 5
    assert calls.calls["UploadPart"] > 5, "no part was retried: the outage was missed"
    assert sha256_of(storage, "survivor") == feeder.sha256
    assert ceph.multipart_uploads(s3_config.bucket) == []


def test_cleanup_spares_uploads_younger_than_older_than(ceph: CephS3, s3_config: S3Config):
    storage = S3Storage(s3_config)
    raw = ceph.client()
    upload_id = raw.create_multipart_upload(Bucket=s3_config.bucket, Key="jobs/j1/data")[
        "UploadId"
    ]

    spared = storage.cleanup_incomplete_uploads("jobs/", older_than=datetime.timedelta(hours=1))
    assert spared == 0
    assert [u["UploadId"] for u in ceph.multipart_uploads(s3_config.bucket)] == [upload_id]

    assert storage.cleanup_incomplete_uploads("other/") == 0
    assert storage.cleanup_incomplete_uploads("jobs/") == 1
    assert ceph.multipart_uploads(s3_config.bucket) == []


def test_the_reported_checksum_is_what_coreutils_compute_from_the_stored_object(
    s3_config: S3Config, tmp_path: Path
):
    """The by-hand check in `storage/checksum.py`'s docstring, on the object RGW stored."""
    storage = S3Storage(s3_config, part_size=PART, max_concurrency=3)
    with PipeFeeder(3 * PART + 777) as feeder:
        result = storage.upload_stream("checked", feeder.reader)
        feeder.join()
    local = tmp_path / "checked"
    local.write_bytes(storage.get_bytes("checked"))
    command = (
        f"split -b {PART // MiB}M --filter='sha256sum' {local} | cut -c1-64 "
        "| python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read()))' "
        "| sha256sum"
    )

    by_hand = subprocess.run(command, shell=True, capture_output=True, text=True, check=True)  # noqa: S602

    assert result.parts == 4
    assert result.checksum is not None
    assert by_hand.stdout.split()[0] == result.checksum.sha256
