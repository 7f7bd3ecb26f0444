"""Sign a part with the SHA-256 the upload already computed, instead of hashing it again.

SigV4 puts the payload's SHA-256 in the signature; the server hashes what it receives and
refuses the request when they differ. botocore computes that hash itself, over every byte
of every part, while the upload hashes the same bytes for the object's checksum
(`storage.checksum`). Inside `known_payload(body, sha256)` a request whose body is that
very object is signed with `sha256`; everything else is signed as botocore would.

botocore has no parameter for a precomputed payload hash, so `install()` puts a subclass
of its S3 SigV4 signer in its signer registry under the name it already uses ("s3v4").
The subclass changes one thing, the `payload` method, and only inside `known_payload`
for the body given there. When the registered signer is not botocore's pure-Python one
(the CRT signer of `boto3[crt]`), nothing is installed and botocore hashes as before: the
server still checks every part, at the cost of the second hash.

The module imports nothing from the SDK until `install()` runs.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Generator
from contextvars import ContextVar
from typing import Any

#: the body object being sent in this thread, and its hex SHA-256
_KNOWN: ContextVar[tuple[object, str] | None] = ContextVar("known_payload", default=None)
_LOCK = threading.Lock()
_SIGNER_NAME = "s3v4"


@contextlib.contextmanager
def known_payload(body: object, sha256: str) -> Generator[None]:
    """Within the block, sign a request whose body `is` `body` with `sha256` (hex).

    The caller must have hashed exactly the bytes of `body`: a wrong hash is not a silent
    error, the server refuses the request (XAmzContentSHA256Mismatch).
    """
    token = _KNOWN.set((body, sha256))
    try:
        yield
    finally:
        _KNOWN.reset(token)


def install() -> None:
    """Register the signer that honours `known_payload` (idempotent, thread-safe)."""
    auth: Any = importlib.import_module("botocore.auth")
    with _LOCK:
        current = auth.AUTH_TYPE_MAPS.get(_SIGNER_NAME)
        if current is not auth.S3SigV4Auth:  # already ours, or the CRT signer: keep it
            return
        auth.AUTH_TYPE_MAPS[_SIGNER_NAME] = _known_payload_signer(auth.S3SigV4Auth)


def _known_payload_signer(base: type[Any]) -> type[Any]:
    """A subclass of botocore's `S3SigV4Auth` whose `payload` honours `known_payload`."""
    botocore_payload: Any = base.payload

    class KnownPayloadS3SigV4Auth(base):
        def payload(self, request: Any) -> str:
            known = _KNOWN.get()
            if (
                known is not None
                and request.body is known[0]
                and not self._is_streaming_checksum_payload(request)
                and self._should_sha256_sign_payload(request)
            ):
                return known[1]
            return str(botocore_payload(self, request))

    return KnownPayloadS3SigV4Auth
