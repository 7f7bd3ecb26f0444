"""MultipartUpload's bookkeeping, with an in-memory stand-in for S3.

The real S3 path is exercised in tests/workload/test_storage_upload.py.
"""

from __future__ import annotations

import io
import threading

import pytest
from botocore.exceptions import ClientError

from database_backup.storage import RetryPolicy, StorageError, UploadAbortedError
from database_backup.storage.checksum import PartsChecksum, PartsHasher
from database_backup.storage.parts import MAX_PARTS, PartPlan
from database_backup.storage.upload import MultipartUpload, read_part

NO_WAIT = RetryPolicy(max_attempts=1, part_attempts=2, backoff=0.001, abort_attempts=1)


class FakeS3:
    """Just enough of the S3 client API for MultipartUpload."""

    def __init__(self, fail_part: int | None = None, fail_times: int = 99) -> None:
        self.parts: dict[int, bytes] = {}
        self.completed: list[int] | None = None
        self.aborted = False
        self.attempts: dict[int, int] = {}
        self.bodies: list[bytearray] = []  # every body object handed over, kept alive
        self._fail_part = fail_part
        self._fail_times = fail_times
        self._lock = threading.Lock()

    def create_multipart_upload(self, **_: object) -> dict:
        return {"UploadId": "up-1"}

    def upload_part(self, *, PartNumber: int, Body: bytearray, **_: object) -> dict:  # noqa: N803
        with self._lock:
            self.attempts[PartNumber] = self.attempts.get(PartNumber, 0) + 1
            if PartNumber == self._fail_part and self.attempts[PartNumber] <= self._fail_times:
                raise ClientError(
                    {
                        "Error": {"Code": "InternalError"},
                        "ResponseMetadata": {"HTTPStatusCode": 500},
                    },
                    "UploadPart",
                )
            self.parts[PartNumber] = bytes(Body)
            self.bodies.append(Body)
        return {"ETag": f'"{PartNumber}"'}

    def complete_multipart_upload(self, *, MultipartUpload: dict, **_: object) -> None:  # noqa: N803
        self.completed = [p["PartNumber"] for p in MultipartUpload["Parts"]]

    def abort_multipart_upload(self, **_: object) -> None:
        self.aborted = True


def upload(fake: FakeS3, data: bytes, plan: PartPlan) -> tuple[int, int]:
    """Upload `data`; check the checksum the upload reports against a reading of `data`."""
    source = io.BytesIO(data)
    first = read_part(source, plan.size(1))
    job = MultipartUpload(fake, "b", "k", plan, max_concurrency=4, retry=NO_WAIT)
    size, parts, checksum = job.run([first], source)
    reread = PartsHasher(plan)
    reread.update(data)
    assert checksum == PartsChecksum(reread.hexdigest(), plan)
    return size, parts


def test_parts_arrive_in_order_and_complete():
    fake = FakeS3()
    data = bytes(range(256)) * 4 + b"tail"

    assert upload(fake, data, PartPlan(base=100)) == (len(data), 11)
    assert fake.completed == list(range(1, 12))
    assert b"".join(fake.parts[n] for n in sorted(fake.parts)) == data


def test_a_long_upload_fills_the_buffers_of_sent_parts_again():
    """41 parts through 4 senders: at most 5 part buffers ever exist.

    4 are sending and 1 is filling, so a long upload allocates (and faults in) its
    buffers once.
    """
    fake = FakeS3()
    data = bytes(range(251)) * 160 + b"tail"

    assert upload(fake, data, PartPlan(base=1000)) == (len(data), 41)

    assert b"".join(fake.parts[n] for n in sorted(fake.parts)) == data
    assert len({id(body) for body in fake.bodies}) <= 4 + 1
    assert len(fake.bodies) == 41


def test_a_spare_of_another_size_is_not_filled():
    spare = bytearray(b"old" * 4)
    source = io.BytesIO(b"0123456789" * 3 + b"end")

    part = read_part(source, 20, spare)

    assert part == b"0123456789" * 2
    assert part is not spare
    assert spare == b"old" * 4
    assert read_part(source, 12, spare) is spare
    assert spare == b"0123456789end"[:12]
    with memoryview(spare):  # exported: it cannot be cut to the short last part
        last = read_part(source, 12, spare)
    assert last == b"d"
    assert last is not spare
    assert len(spare) == 12


def test_the_short_last_part_cuts_its_spare_to_size():
    spare = bytearray(8)
    source = io.BytesIO(b"abc")

    assert read_part(source, 8, spare) is spare
    assert spare == b"abc"


def test_exactly_10000_parts_is_allowed_and_one_more_is_refused():
    fake = FakeS3()
    assert upload(fake, b"x" * (2 * MAX_PARTS), PartPlan(base=2, grow_after=MAX_PARTS)) == (
        2 * MAX_PARTS,
        MAX_PARTS,
    )

    fake = FakeS3()
    with pytest.raises(UploadAbortedError, match="10,000 parts"):
        upload(fake, b"x" * (2 * MAX_PARTS + 1), PartPlan(base=2, grow_after=MAX_PARTS))
    assert fake.aborted
    assert fake.completed is None


def test_a_transient_part_failure_is_retried():
    fake = FakeS3(fail_part=3, fail_times=1)

    upload(fake, b"y" * 1000, PartPlan(base=100))

    assert fake.attempts[3] == 2
    assert fake.completed == list(range(1, 11))


def test_a_persistent_part_failure_aborts_and_names_the_real_cause():
    fake = FakeS3(fail_part=2)

    with pytest.raises(UploadAbortedError) as excinfo:
        upload(fake, b"z" * 1000, PartPlan(base=100))

    assert "InternalError" in str(excinfo.value)
    assert "skipped" not in str(excinfo.value)
    assert excinfo.value.aborted
    assert fake.aborted
    assert fake.completed is None
    assert isinstance(excinfo.value, StorageError)


def test_a_source_that_implements_only_read_is_read_with_read():
    """An `io.RawIOBase` with only `read` inherits a `readinto` that raises."""

    class OnlyRead(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            super().__init__()
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1, /) -> bytes:
            return self._data.read(min(size, 5))  # short reads, like a pipe

    source = OnlyRead(b"0123456789" * 3)

    assert read_part(source, 16) == b"0123456789012345"
    assert read_part(source, 16) == b"67890123456789"


def test_a_source_that_returns_more_than_asked_is_refused():
    class Overlong:
        def read(self, size: int = -1, /) -> bytes:
            return b"x" * (size + 1)

    with pytest.raises(ValueError, match="more bytes than asked for"):
        read_part(Overlong(), 8)
