"""Every part's bytes are checked by the real gateway: damage on the way is never stored.

Over plain HTTP the part's SHA-256 is signed (SigV4) and RGW compares it with what it
received; over HTTPS botocore leaves the payload unsigned and the part carries our
Content-MD5 instead (`storage/upload.py`). Here the body is changed after the request was
signed, as a faulty link or proxy would, and the gateway must refuse it.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from database_backup.storage import RetryPolicy, S3Storage, UploadAbortedError
from tests.infra.ceph import CephS3
from tests.workload.storage_helpers import MiB, PipeFeeder

PART = 5 * MiB
QUICK = RetryPolicy(
    max_attempts=2, part_attempts=3, backoff=0.05, backoff_max=0.1, abort_attempts=2
)


class Damage:
    """Flips one byte of part `part`'s body after signing, on its first `times` sends."""

    def __init__(self, part: int, times: int) -> None:
        self.part = part
        self.left = times
        self.sends = 0

    def __call__(self, request: Any, **_: Any) -> None:
        if parse_qs(urlsplit(request.url).query).get("partNumber") != [str(self.part)]:
            return
        self.sends += 1
        if self.left > 0:
            self.left -= 1
            body = bytearray(request.body)
            body[len(body) // 2] ^= 0xFF
            request.body = body


@pytest.fixture(params=["http", "https"])
def storage(request: pytest.FixtureRequest, ceph: CephS3, bucket: str) -> S3Storage:
    config = ceph.s3_config(bucket, tls=request.param == "https")
    return S3Storage(config, part_size=PART, max_concurrency=2, retry=QUICK)


def test_a_part_damaged_once_on_the_way_is_refused_and_sent_again(storage: S3Storage):
    damage = Damage(part=2, times=1)
    storage.client.meta.events.register("before-send.s3.UploadPart", damage)

    with PipeFeeder(3 * PART + 99) as feeder:
        result = storage.upload_stream("damaged-once", feeder.reader)
        feeder.join()

    assert damage.sends == 2  # refused once, then stored as sent
    assert result.parts == 4
    with storage.open_stream("damaged-once") as reader:
        assert hashlib.sha256(reader.read()).hexdigest() == feeder.sha256


def test_a_part_damaged_on_every_send_stores_nothing(
    storage: S3Storage, ceph: CephS3, bucket: str
):
    damage = Damage(part=2, times=10)
    storage.client.meta.events.register("before-send.s3.UploadPart", damage)

    with PipeFeeder(3 * PART) as feeder, pytest.raises(UploadAbortedError) as excinfo:
        storage.upload_stream("damaged-always", feeder.reader)

    assert damage.sends == QUICK.part_attempts
    assert excinfo.value.aborted
    assert "S3 received other bytes than were sent" in str(excinfo.value)
    assert "discarded" in str(excinfo.value)
    assert not storage.exists("damaged-always")
    assert ceph.multipart_uploads(bucket) == []
