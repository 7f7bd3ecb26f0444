"""A drill's verdict: the `verification` object (interface C1) and the stored document.

The object goes into the state file's result (the provider copies it into the job's
status); the document, the same object plus `backup-id`, `job-id` and `unit`, goes beside
the backup in storage (`Catalog.write_verification`), where any manager reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: the longest reason the interface carries
MAX_REASON = 500
_ELLIPSIS = "..."

Result = Literal["pass", "fail"]


def short_reason(text: str) -> str:
    """`text` on one line, cut to `MAX_REASON` characters (an ellipsis says it was cut)."""
    line = " ".join(text.split())
    if len(line) <= MAX_REASON:
        return line
    return line[: MAX_REASON - len(_ELLIPSIS)] + _ELLIPSIS


@dataclass(frozen=True)
class Verification:
    """The outcome of one drill.

    Attributes:
        result: pass or fail.
        checked_at: when the checks ended (RFC 3339, `Z`).
        duration_seconds: the whole drill, from the first download to the clean-up.
        tables_checked: tables that passed through `CHECK TABLE`.
        tables_compared: tables whose recorded row count and checksum were compared.
        tables_skipped: recorded tables not compared (skipped at backup time or now).
        reason: why it failed (None on a pass).
        point_in_time: the point in time replayed to, when one was asked.
    """

    result: Result
    checked_at: str
    duration_seconds: float
    tables_checked: int = 0
    tables_compared: int = 0
    tables_skipped: int = 0
    reason: str | None = None
    point_in_time: str | None = None

    @property
    def passed(self) -> bool:
        """Whether the backup proved restorable."""
        return self.result == "pass"

    def to_dict(self) -> dict[str, object]:
        """The interface's `verification` object."""
        document: dict[str, object] = {
            "result": self.result,
            "checked-at": self.checked_at,
            "duration-seconds": round(max(self.duration_seconds, 0.0), 3),
            "tables-checked": self.tables_checked,
            "tables-compared": self.tables_compared,
            "tables-skipped": self.tables_skipped,
        }
        if self.result == "fail":
            document["reason"] = short_reason(self.reason or "the drill failed")
        if self.point_in_time is not None:
            document["point-in-time"] = self.point_in_time
        return document

    def document(
        self, backup_id: str, *, job_id: str | None, unit: str | None
    ) -> dict[str, object]:
        """What is stored beside the backup: the object, the backup, the job and the unit."""
        return {**self.to_dict(), "backup-id": backup_id, "job-id": job_id, "unit": unit}
