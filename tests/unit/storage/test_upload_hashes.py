"""Each uploaded part is hashed once for the transfer, not twice (issue 14 finding 7).

Over HTTP botocore signs every part's SHA-256 (the server checks it), so a Content-MD5
on top would be a third hash of the stored stream (ours for the catalog is the first).
Over HTTPS botocore leaves the payload unsigned only when a Content-MD5 is present, so
there the MD5 is the one transfer hash. The requests are captured from a real botocore
client just before they would be sent.
"""

from __future__ import annotations

import io
import threading
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from database_backup.storage import RetryPolicy
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


def _capture(endpoint: str) -> list[dict[str, str]]:
    """Upload three parts through a real client; return the headers of each UploadPart."""
    client = S3Client(
        S3Config(bucket="b", access_key="a", secret_key="s", endpoint=endpoint), retry=NO_WAIT
    ).client
    seen: list[dict[str, str]] = []
    lock = threading.Lock()

    def send(request: Any, **_: object) -> AWSResponse:
        headers = {
            k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()
        }
        body = UPLOAD_XML if request.method == "POST" and "uploads" in request.url else b""
        if request.method == "PUT":
            with lock:
                seen.append(headers)
            return AWSResponse(request.url, 200, {"ETag": '"e"'}, _Raw(b""))
        return AWSResponse(request.url, 200, {}, _Raw(body))

    client.meta.events.register("before-send.s3", send)
    data = bytes(range(256)) * 3 * 1024
    source = io.BytesIO(data)
    plan = PartPlan(base=256 * 1024)
    first = read_part(source, plan.size(1))
    MultipartUpload(client, "b", "k", plan, max_concurrency=2, retry=NO_WAIT).run([first], source)
    return seen


def test_over_http_the_signed_payload_hash_is_the_only_transfer_hash() -> None:
    parts = _capture("http://127.0.0.1:9")

    assert len(parts) == 3
    for headers in parts:
        assert "Content-MD5" not in headers
        assert len(headers["X-Amz-Content-SHA256"]) == 64  # the part's SHA-256, signed


@pytest.mark.parametrize("endpoint", ["https://127.0.0.1:9"])
def test_over_https_the_content_md5_is_the_only_transfer_hash(endpoint: str) -> None:
    parts = _capture(endpoint)

    assert len(parts) == 3
    for headers in parts:
        assert "Content-MD5" in headers
        assert headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
