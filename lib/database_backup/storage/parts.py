"""Part sizes for multipart uploads (pure functions).

S3 limits: at most 10,000 parts per upload, every part but the last at least 5 MiB, no part
above 5 GiB, objects up to 5 TiB.

A stream's size is often unknown in advance (a backup tool's stdout), so a `PartPlan`
starts at a base part size and doubles it every so many parts. Memory stays bounded by
(max_concurrency + 1) x the current part size, so the base is kept small and the growth
only kicks in for streams larger than the caller announced:

- no size hint: 16 MiB parts, doubling every 1,000 parts: 15.6 GiB at part 1,000,
  more than 5 TiB before part 10,000.
- a size hint: the smallest MiB-multiple part size (>= 5 MiB) that fits the hint in
  9,000 parts; parts beyond 9,000 (the hint was too low) double every 250 parts, so
  the upload still fits streams up to ~1.8x the hint.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024
GiB = 1024 * MiB
TiB = 1024 * GiB

MIN_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
MAX_PARTS = 10_000
MAX_OBJECT_SIZE = 5 * TiB
DEFAULT_PART_SIZE = 16 * MiB

#: parts planned for the announced size; the rest of the 10,000 is headroom.
HINT_TARGET_PARTS = 9_000


@dataclass(frozen=True)
class PartPlan:
    """The size of each part of one upload.

    Attributes:
        base: the part size of the first parts.
        grow_after: parts at `base` before the size starts doubling.
        grow_every: parts between two doublings.
    """

    base: int
    grow_after: int = 1_000
    grow_every: int = 1_000

    def size(self, part_number: int) -> int:
        """The size of part `part_number` (1-based); the last part may be shorter."""
        if part_number <= self.grow_after:
            return self.base
        doublings = (part_number - self.grow_after - 1) // self.grow_every + 1
        return min(MAX_PART_SIZE, self.base << min(doublings, 20))

    def capacity(self, parts: int = MAX_PARTS) -> int:
        """The largest stream this plan fits in `parts` parts."""
        return sum(self.size(n) for n in range(1, parts + 1))


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def choose_part_size(size_hint: int | None) -> int:
    """The base part size for a stream of about `size_hint` bytes (None = unknown).

    Returns:
        `DEFAULT_PART_SIZE` when unknown; else the smallest whole number of MiB, at
        least 5 MiB and at most 5 GiB, that fits `size_hint` in 9,000 parts.
    """
    if size_hint is None or size_hint <= 0:
        return DEFAULT_PART_SIZE
    size = _round_up(-(-size_hint // HINT_TARGET_PARTS), MiB)
    return max(MIN_PART_SIZE, min(MAX_PART_SIZE, size))


def plan_parts(size_hint: int | None = None, part_size: int | None = None) -> PartPlan:
    """The `PartPlan` for a stream.

    Args:
        size_hint: the expected stream size in bytes, if known.
        part_size: force the base part size (at least 5 MiB); growth still applies
            after 1,000 parts so an unexpectedly long stream does not hit 10,000 parts.

    Raises:
        ValueError: `part_size` is outside 5 MiB..5 GiB.
    """
    if part_size is not None:
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between 5 MiB and 5 GiB, not {part_size}")
        return PartPlan(base=part_size)
    if size_hint is None or size_hint <= 0:
        return PartPlan(base=DEFAULT_PART_SIZE)
    return PartPlan(base=choose_part_size(size_hint), grow_after=HINT_TARGET_PARTS, grow_every=250)
