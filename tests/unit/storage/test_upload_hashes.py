"""Each uploaded byte is hashed once (issue 14, finding 7 and the 4 GiB backup).

The sender hashes each part; the request is signed with that SHA-256 (the server checks
it), over HTTP and HTTPS alike, with no Content-MD5; the object's checksum is composed
from the same digests, and botocore's signer does not hash the body again. The requests
are captured from a real botocore client just before they would be sent.
"""

from __future__ import annotations

import hashlib
import io
import threading
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from database_backup.storage import RetryPolicy, signing
from database_backup.storage.checksum import PartsChecksum, PartsHasher
from database_backup.storage.client import S3Client
from database_backup.storage.config import S3Config
from database_backup.storage.parts import PartPlan
from database_backup.storage.upload import MultipartUpload, read_part

NO_WAIT = RetryPolicy(max_attempts=1, part_attempts=1, backoff=0.001, abort_attempts=1)
UPLOAD_XML = (
    b"<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
    b"<UploadId>up-1</UploadId></InitiateMultipartUploadResult>"
)


class _Raw(io.BytesIO):
    def stream(self, *_: object, **__: object) -> Any:
        yield self.getvalue()


DATA = bytes(range(256)) * 3 * 1024
PLAN = PartPlan(base=256 * 1024)


class _BodyHashing:
    """Counts the bytes botocore's signer hashes (its `sha256`), by wrapping it."""

    def __init__(self) -> None:
        self.hashed = 0
        self._real = hashlib.sha256
        self._lock = threading.Lock()

    def _count(self, size: int) -> None:
        with self._lock:
            self.hashed += size

    def __call__(self, data: bytes = b"") -> Any:
        counter = self
        inner = self._real(data)
        self._count(len(data))

        class Counted:
            def update(self, more: bytes) -> None:
                counter._count(len(more))
                inner.update(more)

            def __getattr__(self, name: str) -> Any:  # digest, hexdigest, copy, sizes
                return getattr(inner, name)

        return Counted()


@pytest.fixture
def body_hashing(monkeypatch: pytest.MonkeyPatch) -> _BodyHashing:
    import botocore.auth

    counter = _BodyHashing()
    monkeypatch.setattr(botocore.auth, "sha256", counter)
    return counter


def _capture(
    endpoint: str, found: list[PartsChecksum] | None = None
) -> list[tuple[dict[str, str], bytes]]:
    """Upload three parts through a real client; return each UploadPart's headers and body."""
    client = S3Client(
        S3Config(bucket="b", access_key="a", secret_key="s", endpoint=endpoint), retry=NO_WAIT
    ).client
    seen: list[tuple[dict[str, str], bytes]] = []
    lock = threading.Lock()

    def send(request: Any, **_: object) -> AWSResponse:
        headers = {
            k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
        }
        body = UPLOAD_XML if request.method == "POST" and "uploads" in request.url else b""
        if request.method == "PUT":
            with lock:
                seen.append((headers, bytes(request.body)))
            return AWSResponse(request.url, 200, {"ETag": '"e"'}, _Raw(b""))
        return AWSResponse(request.url, 200, {}, _Raw(body))

    client.meta.events.register("before-send.s3", send)
    source = io.BytesIO(DATA)
    first = read_part(source, PLAN.size(1))
    job = MultipartUpload(client, "b", "k", PLAN, max_concurrency=2, retry=NO_WAIT)
    _, _, checksum = job.run([first], source)
    if found is not None:
        found.append(checksum)
    return seen


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9", "https://127.0.0.1:9"])
def test_every_part_is_signed_with_its_sha256_and_carries_no_md5(endpoint: str) -> None:
    parts = _capture(endpoint)

    assert len(parts) == 3
    for headers, body in parts:
        assert "Content-MD5" not in headers
        assert headers["X-Amz-Content-SHA256"] == hashlib.sha256(body).hexdigest()
        assert "x-amz-content-sha256" in headers["Authorization"]  # signed, so checked


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9", "https://127.0.0.1:9"])
def test_the_signer_does_not_hash_the_parts_again(
    endpoint: str, body_hashing: _BodyHashing
) -> None:
    parts = _capture(endpoint)

    assert len(parts) == 3
    # what botocore still hashes: its canonical requests, a few hundred bytes each
    assert body_hashing.hashed < 16 * 1024, body_hashing.hashed


def test_the_object_checksum_is_composed_from_the_signed_part_hashes() -> None:
    found: list[PartsChecksum] = []
    parts = _capture("http://127.0.0.1:9", found)

    reread = PartsHasher(PLAN)
    reread.update(DATA)
    signed = [bytes.fromhex(headers["X-Amz-Content-SHA256"]) for headers, _ in parts]
    assert found == [PartsChecksum(reread.hexdigest(), PLAN)]
    assert found[0].sha256 == hashlib.sha256(b"".join(signed)).hexdigest()


def test_a_body_other_than_the_known_one_is_hashed_by_botocore(
    body_hashing: _BodyHashing,
) -> None:
    """A request made inside `known_payload` for another body (a nested HeadBucket, say)."""
    client = S3Client(
        S3Config(bucket="b", access_key="a", secret_key="s", endpoint="http://127.0.0.1:9"),
        retry=NO_WAIT,
    ).client
    seen: list[str] = []

    def send(request: Any, **_: object) -> AWSResponse:
        seen.append(request.headers["X-Amz-Content-SHA256"].decode())
        return AWSResponse(request.url, 200, {"ETag": '"e"'}, _Raw(b""))

    client.meta.events.register("before-send.s3", send)
    known, other = bytearray(b"k" * 70_000), bytearray(b"o" * 70_000)
    with signing.known_payload(known, "0" * 64):
        client.put_object(Bucket="b", Key="k", Body=other)

    assert seen == [hashlib.sha256(other).hexdigest()]
    assert body_hashing.hashed >= len(other)
