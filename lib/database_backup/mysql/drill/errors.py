"""The two ways a drill ends without a verdict on the backup, and the one with a bad verdict.

- `DrillRefusedError`: the drill did not start its restore (no room, another drill running, a
  scratch directory that is not allowed, no key): nothing is said about the backup, no
  result is written to storage. The message starts with `drill refused:`.
- `DrillFailedError`: the backup did not prove restorable (a tampered artefact, a server that
  does not start, a corrupt table, sums that differ). The message starts with
  `drill failed:`; the result is written beside the backup.
"""

from __future__ import annotations

from ..errors import EngineError

REFUSED = "drill refused: "
FAILED = "drill failed: "
CANCELLED = "cancelled: "


class DrillError(EngineError):
    """A drill that ended without a pass (the message says why and what to do)."""

    prefix = ""

    def __init__(self, message: str) -> None:
        text = message if message.startswith(self.prefix) else self.prefix + message
        super().__init__(text)


class DrillRefusedError(DrillError):
    """The drill was refused before anything was downloaded or restored."""

    prefix = REFUSED


class DrillFailedError(DrillError):
    """The backup did not prove restorable; the message is the reason."""

    prefix = FAILED


class DrillCancelledError(DrillError):
    """The drill was stopped (SIGTERM: a real restore was asked for, or the unit stops)."""

    prefix = CANCELLED
