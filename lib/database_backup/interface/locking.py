"""The locking policy: may a new piece of work start next to the work already running?

A pure function of plain values, so a provider charm can ask it before starting a worker
and the provider leader can ask it before assigning a job; tests cover every pair.

Rules (the interface's Behaviour section):
- one restore at a time, across the whole application;
- no backup while a restore runs (the restored data would not be what the backup says);
- no restore while a backup is writing (it would copy a half-replaced datadir);
- backups may run side by side, and binlog shipping runs alongside any backup;
- binlog shipping pauses during a restore (the server's history is being replaced);
- a restore drill (a scratch server beside the live one) runs beside backups and shipping,
  one drill at a time, never during a restore; a restore may start while a drill runs:
  the unit running the drill cancels it first, so a drill never delays a real restore.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable

from .model import BackupKind, JobRequest, JobType


class WorkKind(str, enum.Enum):
    """The kinds of work the policy knows."""

    FULL_BACKUP = "full backup"
    INCREMENTAL_BACKUP = "incremental backup"
    LOGICAL_BACKUP = "logical backup"
    RESTORE = "restore"
    LOG_SHIPPING = "binlog shipping"
    DRILL = "restore drill"

    @property
    def is_backup(self) -> bool:
        """True for the three backup kinds."""
        return self in _BACKUPS


_BACKUPS = frozenset({WorkKind.FULL_BACKUP, WorkKind.INCREMENTAL_BACKUP, WorkKind.LOGICAL_BACKUP})

RESTORING_MESSAGE = "the database is being restored (job {job}); try again when it has finished"


@dataclasses.dataclass(frozen=True)
class Work:
    """A running (or requested) piece of work: what it is and its id for messages."""

    kind: WorkKind
    ident: str


@dataclasses.dataclass(frozen=True)
class Decision:
    """The policy's answer: allowed, or refused with a reason a human can act on."""

    allowed: bool
    reason: str = ""


def work_of(job: JobRequest) -> Work:
    """Map a job request to the kind of work it is."""
    if job.job_type is JobType.RESTORE:
        return Work(WorkKind.RESTORE, job.job_id)
    if job.is_drill:
        return Work(WorkKind.DRILL, job.job_id)
    kind = {
        BackupKind.FULL: WorkKind.FULL_BACKUP,
        BackupKind.INCREMENTAL: WorkKind.INCREMENTAL_BACKUP,
        BackupKind.LOGICAL: WorkKind.LOGICAL_BACKUP,
    }[job.kind]
    return Work(kind, job.job_id)


def may_start(running: Iterable[Work], new: Work) -> Decision:
    """Decide whether `new` may start while everything in `running` runs."""
    for current in running:
        if current.ident == new.ident and current.kind == new.kind:
            continue
        refusal = _conflict(current, new)
        if refusal:
            return Decision(False, refusal)
    return Decision(True)


def _conflict(current: Work, new: Work) -> str:
    if current.kind is WorkKind.RESTORE:
        if new.kind is WorkKind.RESTORE:
            return (
                f"another restore (job {current.ident}) is running; "
                "only one restore at a time is allowed"
            )
        return RESTORING_MESSAGE.format(job=current.ident)
    if current.kind is WorkKind.DRILL and new.kind is WorkKind.DRILL:
        return (
            f"another restore drill (job {current.ident}) is running; one drill at a time "
            "is allowed: request it again when that one has finished"
        )
    if new.kind is WorkKind.RESTORE and current.kind.is_backup:
        return (
            f"a {current.kind.value} (job {current.ident}) is writing; a restore cannot "
            "start until it has finished"
        )
    return ""
