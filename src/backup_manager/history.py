"""Job history: every job's request and latest status, bounded, kept by the leader.

The history is a JSON list of records (oldest first) stored in the peer relation's
application databag; the relation databag only carries in-flight and recent jobs. A
record is plain JSON with kebab-case keys, so `list-jobs` can return it as is. No `ops`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from database_backup.interface import (
    RESTORING_MESSAGE,
    JobRequest,
    JobStatus,
    format_time,
    utc_now,
)

MAX_RECORDS = 200
FINISHED = ("success", "error", "complete", "failed")
IN_FLIGHT = ("requested", "running", "copying")

Record = dict[str, Any]


def load(text: str | None) -> list[Record]:
    """Decode the databag value; garbage gives an empty history, never an exception."""
    if not text:
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return []
    if not isinstance(data, list):
        return []
    return [item for item in data if isinstance(item, dict) and item.get("job-id")]


def dump(records: list[Record]) -> str:
    """Encode (bounded: the newest MAX_RECORDS, in-flight ones kept first)."""
    return json.dumps(bound(records), sort_keys=True, separators=(",", ":"))


def bound(records: list[Record], limit: int = MAX_RECORDS) -> list[Record]:
    """Drop the oldest finished records beyond `limit` (in-flight ones are never dropped)."""
    excess = len(records) - limit
    if excess <= 0:
        return records
    kept = []
    for record in records:
        if excess > 0 and is_finished(record):
            excess -= 1
            continue
        kept.append(record)
    return kept


def is_finished(record: Mapping[str, Any]) -> bool:
    """True once the job ended, well or badly."""
    return record.get("status") in FINISHED


def find(records: list[Record], job_id: str) -> Record | None:
    """The record of `job_id`, if any."""
    return next((r for r in records if r.get("job-id") == job_id), None)


def from_request(job: JobRequest, app: str, location: str, *, scheduled: bool = False) -> Record:
    """A new record for a job just requested."""
    record: Record = {
        "job-id": job.job_id,
        "type": job.job_type.value,
        "app": app,
        "location": location,
        "status": "requested",
        "requested-at": job.requested_at or format_time(utc_now()),
    }
    if job.job_type.value == "backup":
        record["kind"] = job.kind.value
    optional = {
        "parent-id": job.parent_backup_id,
        "backup-id": job.backup_id,
        "point-in-time": job.point_in_time,
        "description": job.description,
        "artefact-path": job.artefact_path,
    }
    record.update({key: value for key, value in optional.items() if value})
    if job.databases:
        record["databases"] = list(job.databases)
    if job.tables:
        record["tables"] = list(job.tables)
    if scheduled:
        record["scheduled"] = True
    return record


def apply_status(record: Record, status: JobStatus) -> bool:
    """Update `record` from the provider's latest status; True if anything changed."""
    before = dict(record)
    record["status"] = status.status.value
    fields = {
        "message": status.message,
        "phase": status.phase,
        "unit": status.unit,
        "started-at": status.started_at,
        "finished-at": status.finished_at,
        "backup-id": status.backup_id,
        "size": status.size_bytes,
        "point-in-time": status.point_in_time,
        "recovered-from-backup": status.recovered_from_backup,
    }
    if status.job_type is not None and status.job_type.value == "backup":
        fields["kind"] = status.backup_kind
        fields["parent-id"] = status.parent_backup_id
    record.update({key: value for key, value in fields.items() if value is not None})
    if status.bytes_done is not None:
        record["progress"] = progress_text(status.bytes_done, status.bytes_estimated)
    if status.finished and "finished-at" not in record:
        record["finished-at"] = format_time(utc_now())
    return record != before


def progress_text(done: int, estimated: int | None) -> str:
    """`45% (1.2 GiB of 2.7 GiB)`, or just the bytes when the total is unknown."""
    if estimated:
        percent = min(100, int(done * 100 / estimated))
        return f"{percent}% ({human_size(done)} of {human_size(estimated)})"
    return human_size(done)


def human_size(size: int | None) -> str:
    """Bytes in binary units: `1.5 GiB`."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def clear_finished(records: list[Record], app: str | None = None) -> tuple[list[Record], int]:
    """Remove finished records (of `app`, or all); return what is kept and how many went."""
    kept = [r for r in records if not (is_finished(r) and (app is None or r.get("app") == app))]
    return kept, len(records) - len(kept)


def protected_backups(records: Iterable[Record]) -> set[str]:
    """Backup ids in-flight jobs use: retention and delete-backup must not touch them.

    A running restore or copy reads its backup; a running incremental builds on its
    parent; a running backup (or copy) is writing its own id.
    """
    protected = set()
    for record in records:
        if is_finished(record):
            continue
        for key in ("backup-id", "parent-id", "recovered-from-backup", "source-backup-id"):
            if record.get(key):
                protected.add(str(record[key]))
    return protected


def last_success(records: Iterable[Record]) -> Record | None:
    """The newest successful backup (by finish time)."""
    done = [r for r in records if r.get("type") == "backup" and r.get("status") == "success"]
    return _newest(done)


def last_failure(records: Iterable[Record]) -> Record | None:
    """The newest of the failures still open (see `open_failures`), if any."""
    failures = open_failures(records)
    return failures[-1] if failures else None


def open_failures(records: Iterable[Record]) -> list[Record]:
    """Failed jobs not yet followed by a success of the same kind on the same application.

    The kind is the job's type, and for backups also the backup kind: a failed restore
    stays reported after a backup succeeds, a failed logical backup after a full one; it
    goes once a later job of its kind on that application succeeds, or when the admin
    clears the history. One record (the newest failure) per kind and application, oldest
    first.
    """
    groups: dict[tuple[str, str, str], list[Record]] = {}
    for record in records:
        if is_finished(record) and record.get("type") in ("backup", "restore", "copy"):
            kind = str(record.get("kind") or "") if record["type"] == "backup" else ""
            key = (str(record["type"]), kind, str(record.get("app") or ""))
            groups.setdefault(key, []).append(record)
    failures = []
    for group in groups.values():
        newest = _newest(group)
        if newest is not None and newest.get("status") in ("error", "failed"):
            failures.append(newest)
    return sorted(failures, key=lambda r: str(r.get("finished-at") or ""))


_REFUSED = re.compile(
    "^" + re.escape(RESTORING_MESSAGE).replace(re.escape("{job}"), "(?P<job>[^)]+)", 1) + "$"
)


def refusing_restore(record: Mapping[str, Any]) -> str | None:
    """The restore job id, when the provider refused this backup because it was restoring."""
    if record.get("status") != "error":
        return None
    match = _REFUSED.match(str(record.get("message") or ""))
    return match.group("job") if match else None


def backups_to_retry(records: list[Record]) -> list[Record]:
    """Scheduled backups refused during a restore that has ended: retry each once.

    Not retried: a retry itself (`retry-of`), one already retried (`retried-by`), one a
    later backup of the same application supersedes, or one whose application is still
    restoring.
    """
    candidates = []
    for index, record in enumerate(records):
        if not record.get("scheduled") or record.get("type") != "backup":
            continue
        if record.get("retry-of") or record.get("retried-by"):
            continue
        if refusing_restore(record) is None:
            continue
        app = record.get("app")
        later = records[index + 1 :]
        if any(r.get("type") == "backup" and r.get("app") == app for r in later):
            continue
        if any(
            r.get("type") == "restore" and r.get("app") == app
            for r in records
            if not is_finished(r)
        ):
            continue
        candidates.append(record)
    return candidates


def _newest(records: list[Record]) -> Record | None:
    """The record that finished last; within the same second, the later one in the history."""
    ranked = [(str(r.get("finished-at") or ""), i) for i, r in enumerate(records)]
    if not ranked:
        return None
    return records[max(ranked)[1]]
