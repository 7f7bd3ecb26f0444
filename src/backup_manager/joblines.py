"""The manager's job log lines: each job it requests, and the end of each job it sees.

The lines are `database_backup.joblog`'s (one stable logfmt line per start, end and error),
logged and appended to `/var/log/backup-manager/jobs.log` beside the schedule logs, where
a COS collector related over `cos-agent` picks them up for Loki. Every job type the
history keeps except copies and retention runs: those run in the manager's own workers,
which write their lines to the same file (`copying.start_job`). No `ops`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from database_backup import joblog
from database_backup.timefmt import parse_time

from . import history, schedule
from .locations import Location

LOG_NAME = "jobs.log"
_JOB_TYPES = {"backup", "restore", "drill"}


def log_path() -> Path:
    """The manager's job log file (in the schedule logs' directory)."""
    return schedule.LOG_DIR / LOG_NAME


def describe(record: history.Record) -> tuple[str, str] | None:
    """(job-type, kind) of a record's line; None for jobs that get no line (copies)."""
    if record.type not in _JOB_TYPES:
        return None
    if record.type in ("restore", "drill"):
        return record.type, "pitr" if record.point_in_time else "-"
    return "backup", record.kind if record.kind in joblog.KINDS else "full"


def requested(record: history.Record, cluster: str) -> str | None:
    """Emit the start line of a job just requested; return it (None: no line)."""
    described = describe(record)
    if described is None:
        return None
    line = joblog.JobLine.start(record.job_id, *described, cluster)
    return joblog.emit(line, log_path())


def concluded(
    record: history.Record, cluster: str, before: str | None, secrets: Iterable[str] = ()
) -> str | None:
    """Emit the end or error line of a job whose status just became final.

    `before` is the record's status before this update: nothing is emitted when it was
    final already (the same result seen again) or is not final now.
    """
    described = describe(record)
    if described is None or not record.finished or before in history.FINISHED:
        return None
    duration = _duration(record.started_at or record.requested_at, record.finished_at)
    if record.status in ("success", "complete"):
        line = joblog.JobLine.end(record.job_id, *described, cluster, duration_seconds=duration)
    else:
        line = joblog.JobLine.error(
            record.job_id,
            *described,
            cluster,
            duration_seconds=duration,
            message=record.message or f"the job ended with status {record.status}",
        )
    return joblog.emit(line, log_path(), secrets)


def _duration(started: str | None, finished: str | None) -> float | None:
    if not started or not finished:
        return None
    try:
        return max(0.0, (parse_time(finished) - parse_time(started)).total_seconds())
    except ValueError:
        return None


def location_secrets(locations: Iterable[Location]) -> list[str]:
    """The storage credentials of `locations`: hidden from every line's message."""
    found: list[str] = []
    for location in locations:
        found.extend(location.credentials.values())
    return found
