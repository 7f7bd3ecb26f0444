"""The checksum of parts computed the plainest way, to check the product's against."""

from __future__ import annotations

import hashlib

from database_backup.storage.parts import PartPlan


def checksum_by_slices(data: bytes, plan: PartPlan) -> str:
    """The hex SHA-256 of the SHA-256s of `data`'s parts, in order.

    Part n is `plan.size(n)` bytes (the last fewer; an empty `data` is one empty part).
    Uses nothing of `storage.checksum`.
    """
    digests, offset, number = [], 0, 1
    while True:
        part = data[offset : offset + plan.size(number)]
        digests.append(hashlib.sha256(part).digest())
        offset += len(part)
        number += 1
        if offset >= len(data):
            return hashlib.sha256(b"".join(digests)).hexdigest()
