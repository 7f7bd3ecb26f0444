r"""The checksum of an uploaded object: the SHA-256 of its parts' SHA-256 digests.

An upload cuts the stream into parts (`PartPlan`) and hashes each part once, in the
thread that sends it. That digest is what SigV4 signs for the part, over HTTP and HTTPS
alike, and the server refuses a part whose bytes do not match it. The object's checksum
is the SHA-256 of the parts' digests, concatenated in order (binary, 32 bytes each): the
stored bytes are hashed once, not once for the transfer and again for the catalog.

Whoever reads the object back (a restore, a copy's verification) cuts it the same way
with `PartsHasher` and compares. By hand, for an object of fewer parts than the plan's
`grow_after` (1,000 by default; all of one size but the last: 16 MiB unless the plan says
otherwise):

    split -b 16M --filter='sha256sum' data.xb.zst | cut -c1-64 \
        | python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read()))' \
        | sha256sum

An empty stream is one empty part.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from database_backup.byteio import Hasher
from database_backup.storage.parts import MAX_PART_SIZE, MIN_PART_SIZE, PartPlan

_HEX64 = re.compile(r"[0-9a-f]{64}")


def compose(part_digests: Iterable[bytes]) -> str:
    """The object's checksum (hex) from its parts' binary SHA-256 digests, in order."""
    return hashlib.sha256(b"".join(part_digests)).hexdigest()


class PartsHasher:
    """Cut a stream as `plan` cuts an upload and compute its `compose`d checksum.

    The same interface as a `hashlib` object for what verification uses: `update` and
    `hexdigest` (which may be called at any point and does not end the stream).
    """

    def __init__(self, plan: PartPlan) -> None:
        """Hash a stream uploaded with `plan`."""
        self._plan = plan
        self._digests: list[bytes] = []
        self._part = hashlib.sha256()
        self._left = plan.size(1)
        self._started = False

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Add the next bytes of the stream."""
        with memoryview(data) as raw, raw.cast("B") as view:
            offset = 0
            while offset < len(view):
                take = min(len(view) - offset, self._left)
                self._part.update(view[offset : offset + take])
                self._started = True
                self._left -= take
                offset += take
                if self._left == 0:
                    self._digests.append(self._part.digest())
                    self._part = hashlib.sha256()
                    self._left = self._plan.size(len(self._digests) + 1)
                    self._started = False

    def hexdigest(self) -> str:
        """The checksum of the bytes added so far (a short last part counts as a part)."""
        if self._started or not self._digests:
            return compose([*self._digests, self._part.digest()])
        return compose(self._digests)


@dataclass(frozen=True)
class WholeChecksum:
    """A recorded SHA-256 of the whole object (`sha256sum`): older backups, binlog files.

    Attributes:
        sha256: the hex digest.
    """

    sha256: str

    def hasher(self) -> Hasher:
        """A fresh SHA-256."""
        return hashlib.sha256()

    def describe(self) -> str:
        """For messages: what kind of checksum this is."""
        return "SHA-256"


@dataclass(frozen=True)
class PartsChecksum:
    """A recorded checksum: the `compose`d digest and the plan that cut the parts.

    Attributes:
        sha256: the hex checksum.
        plan: the part sizes of the upload.
    """

    sha256: str
    plan: PartPlan

    def hasher(self) -> PartsHasher:
        """A hasher that cuts a read-back stream the way the upload did."""
        return PartsHasher(self.plan)

    def describe(self) -> str:
        """For messages: what kind of checksum this is."""
        return f"SHA-256 of its {self.plan.base // (1 << 20)} MiB parts"

    def to_json(self) -> dict[str, Any]:
        """The catalog's form (kebab-case keys)."""
        return {
            "sha256": self.sha256,
            "part-size": self.plan.base,
            "grow-after": self.plan.grow_after,
            "grow-every": self.plan.grow_every,
        }

    @classmethod
    def from_json(cls, value: object) -> PartsChecksum:
        """Read the catalog's form.

        Raises:
            ValueError: not an object with a 64-hex-digit `sha256` and a valid plan.
        """
        if not isinstance(value, dict):
            raise ValueError("parts-sha256 must be an object")
        fields: dict[str, Any] = value  # pyright: ignore[reportUnknownVariableType]
        sha256 = fields.get("sha256")
        if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256):
            raise ValueError("parts-sha256.sha256 must be 64 lowercase hex digits")
        numbers = [fields.get(name) for name in ("part-size", "grow-after", "grow-every")]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in numbers):
            raise ValueError(
                "parts-sha256 needs positive integers part-size, grow-after and grow-every"
            )
        base, grow_after, grow_every = (int(n) for n in numbers)  # pyright: ignore[reportArgumentType]
        if not MIN_PART_SIZE <= base <= MAX_PART_SIZE:
            raise ValueError(f"parts-sha256.part-size must be 5 MiB to 5 GiB, not {base}")
        return cls(sha256, PartPlan(base=base, grow_after=grow_after, grow_every=grow_every))
