"""Progress reports of long operations (backup and restore)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report.

    Attributes:
        phase: what runs now, e.g. "backup", "download", "prepare", "stop", "swap",
            "start", "verify", "cleanup", "done".
        bytes_done: bytes processed so far in this phase (0 for phases without bytes).
        bytes_estimated: expected total bytes of this phase (0 when unknown).
    """

    phase: str
    bytes_done: int = 0
    bytes_estimated: int = 0

    @property
    def fraction(self) -> float | None:
        """Return done/estimated clamped to [0, 1], None when there is no estimate."""
        if self.bytes_estimated <= 0:
            return None
        return max(0.0, min(1.0, self.bytes_done / self.bytes_estimated))


ProgressCallback = Callable[[ProgressEvent], None]


def emit(callback: ProgressCallback | None, phase: str, done: int = 0, estimate: int = 0) -> None:
    """Call `callback` with a ProgressEvent if there is a callback."""
    if callback is not None:
        callback(ProgressEvent(phase, done, estimate))
