"""Job history: every job's request and latest status, bounded, kept by the leader.

The history is a JSON list of records (oldest first) stored in the peer relation's
application databag; the relation databag only carries in-flight and recent jobs. A
`Record` is the one typed shape of a history entry; its JSON form has kebab-case keys, so
`list-jobs` can return it as is, and keys it does not know (written by a newer charm)
survive a load and a dump unchanged. No `ops`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from database_backup.interface import (
    RESTORING_MESSAGE,
    JobRequest,
    JobStatus,
    format_time,
    utc_now,
)

MAX_RECORDS = 200
SHOWN_NAMES = 3  # names a record's selection summary shows before "and N more"
FINISHED = ("success", "error", "complete", "failed")
IN_FLIGHT = ("requested", "running", "copying")


@dataclasses.dataclass
class Record:
    """One job in the history: what was asked, and the latest that is known of it.

    A field that is None is absent from the JSON form (as the history always wrote it).
    """

    job_id: str
    type: str | None = None
    app: str | None = None
    location: str | None = None
    status: str | None = None
    requested_at: str | None = None
    kind: str | None = None
    parent_id: str | None = None
    backup_id: str | None = None
    point_in_time: str | None = None
    description: str | None = None
    artefact_path: str | None = None
    selection: str | None = None
    scheduled: bool | None = None
    message: str | None = None
    phase: str | None = None
    unit: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    size: int | None = None
    progress: str | None = None
    recovered_from_backup: str | None = None
    source_backup_id: str | None = None
    source_location: str | None = None
    retry_of: str | None = None
    retried_by: str | None = None
    drill_of: str | None = None  # a restore drill: the backup id it verifies
    extra: dict[str, Any] = dataclasses.field(default_factory=dict[str, Any])

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Record | None:
        """The record of one decoded history item; None without a job id.

        A known key whose value has an unexpected type stays in `extra`, as it was.
        """
        job_id = data.get("job-id")
        if not isinstance(job_id, str) or not job_id:
            return None
        record = cls(job_id=job_id)
        for key, value in data.items():
            if key != "job-id":
                record.set(key, value)
        record.summarize_lists()
        return record

    def summarize_lists(self) -> None:
        """Fold the `databases`/`tables` lists earlier revisions stored into `selection`."""
        lists = {key: _names_of(self.extra.get(key)) for key in ("databases", "tables")}
        if self.selection is not None or all(names is None for names in lists.values()):
            return
        for key, names in lists.items():
            if names is not None:
                del self.extra[key]
        self.selection = selection_summary(lists["databases"], lists["tables"])

    def set(self, key: str, value: object) -> None:
        """Set the value of JSON key `key` (kept in `extra` if the field has another type)."""
        name = _FIELDS.get(key)
        if name is not None and _fits(name, value):
            setattr(self, name, value)
        else:
            self.extra[key] = value

    def to_json(self) -> dict[str, Any]:
        """The JSON form: kebab-case keys, None fields left out, unknown keys kept."""
        out: dict[str, Any] = dict(self.extra)
        for key, name in _FIELDS.items():
            value = getattr(self, name)
            if value is not None:
                out[key] = value
        return out

    @property
    def finished(self) -> bool:
        """True once the job ended, well or badly."""
        return self.status in FINISHED


# JSON key -> attribute, for every field but `extra`.
_FIELDS = {
    field.name.replace("_", "-"): field.name
    for field in dataclasses.fields(Record)
    if field.name != "extra"
}
_STRINGS = set(_FIELDS.values()) - {"scheduled", "size"}


def _fits(name: str, value: object) -> bool:
    """Whether `value` has the type of the field `name`."""
    if name in _STRINGS:
        return isinstance(value, str)
    if name == "scheduled":
        return isinstance(value, bool)
    return isinstance(value, int) and not isinstance(value, bool)  # size


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
    records: list[Record] = []
    for item in cast("list[object]", data):
        record = Record.from_json(cast("dict[str, Any]", item)) if isinstance(item, dict) else None
        if record is not None:
            records.append(record)
    return records


def dump(records: list[Record]) -> str:
    """Encode (bounded: the newest MAX_RECORDS, in-flight ones kept first)."""
    items = [record.to_json() for record in bound(records)]
    return json.dumps(items, sort_keys=True, separators=(",", ":"))


def bound(records: list[Record], limit: int = MAX_RECORDS) -> list[Record]:
    """Drop the oldest finished records beyond `limit` (in-flight ones are never dropped)."""
    excess = len(records) - limit
    if excess <= 0:
        return records
    kept: list[Record] = []
    for record in records:
        if excess > 0 and record.finished:
            excess -= 1
            continue
        kept.append(record)
    return kept


def is_finished(record: Record) -> bool:
    """True once the job ended, well or badly."""
    return record.finished


def find(records: list[Record], job_id: str) -> Record | None:
    """The record of `job_id`, if any."""
    return next((r for r in records if r.job_id == job_id), None)


def from_request(job: JobRequest, app: str, location: str, *, scheduled: bool = False) -> Record:
    """A new record for a job just requested."""
    backup = job.job_type.value == "backup"
    return Record(
        job_id=job.job_id,
        type=job.job_type.value,
        app=app,
        location=location,
        status="requested",
        requested_at=job.requested_at or format_time(utc_now()),
        kind=job.kind.value if backup else None,
        parent_id=job.parent_backup_id or None,
        backup_id=job.backup_id or None,
        point_in_time=job.point_in_time or None,
        description=job.description or None,
        artefact_path=job.artefact_path or None,
        selection=selection_summary(job.databases, job.tables),
        scheduled=True if scheduled else None,
    )


def _names_of(value: object) -> list[str] | None:
    """`value` as a list of names, or None when it is not one."""
    if not isinstance(value, list):
        return None
    items = cast("list[object]", value)
    names = [item for item in items if isinstance(item, str)]
    return names if len(names) == len(items) else None


def selection_summary(databases: Sequence[str] | None, tables: Sequence[str] | None) -> str | None:
    """`2 databases: shop, crm; 300 tables: a.b, a.c, a.d and 297 more` (None: no selection).

    A record keeps this instead of the lists: a selection may name hundreds of tables and
    the history keeps MAX_RECORDS records in the peer databag.
    """
    parts: list[str] = []
    for noun, names in (("database", databases), ("table", tables)):
        if not names:
            continue
        shown = ", ".join(names[:SHOWN_NAMES])
        more = len(names) - SHOWN_NAMES
        plural = "" if len(names) == 1 else "s"
        parts.append(
            f"{len(names)} {noun}{plural}: {shown}" + (f" and {more} more" if more > 0 else "")
        )
    return "; ".join(parts) or None


def copy_record(
    *,
    copy_id: str,
    app: str,
    source: str,
    source_backup_id: str,
    dest: str,
    backup_id: str,
    size: int | None,
) -> Record:
    """A new record for a copy just started (by this leader's `copy-backup`)."""
    return Record(
        job_id=copy_id,
        type="copy",
        app=app,
        location=dest,
        status="copying",
        backup_id=backup_id,
        source_backup_id=source_backup_id,
        source_location=source,
        size=size,
        requested_at=format_time(utc_now()),
        message=f"copying {source}:{source_backup_id} to {dest}",
    )


def apply_status(record: Record, status: JobStatus) -> bool:
    """Update `record` from the provider's latest status; True if anything changed."""
    before = dataclasses.replace(record, extra=dict(record.extra))
    record.status = status.status.value
    updates: dict[str, Any] = {
        "message": status.message,
        "phase": status.phase,
        "unit": status.unit,
        "started_at": status.started_at,
        "finished_at": status.finished_at,
        "backup_id": status.backup_id,
        "size": status.size_bytes,
        "point_in_time": status.point_in_time,
        "recovered_from_backup": status.recovered_from_backup,
    }
    if status.job_type is not None and status.job_type.value == "backup":
        updates["kind"] = status.backup_kind
        updates["parent_id"] = status.parent_backup_id
    for name, value in updates.items():
        if value is not None:
            setattr(record, name, value)
    if status.bytes_done is not None:
        record.progress = progress_text(status.bytes_done, status.bytes_estimated)
    if status.finished and record.finished_at is None:
        record.finished_at = format_time(utc_now())
    return record != before


def apply_copy_result(record: Record, result: Mapping[str, Any]) -> None:
    """Fold the outcome of a copy (from `copying.collect`) into its record."""
    for key in ("status", "message", "finished-at", "size"):
        value = result.get(key)
        if value is not None:
            record.set(key, value)


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
    kept = [r for r in records if not (r.finished and (app is None or r.app == app))]
    return kept, len(records) - len(kept)


def protected_backups(records: Iterable[Record]) -> set[str]:
    """Backup ids in-flight jobs use: retention and delete-backup must not touch them.

    A running restore or copy reads its backup; a running incremental builds on its
    parent; a running backup (or copy) is writing its own id.
    """
    protected: set[str] = set()
    for record in records:
        if record.finished:
            continue
        used = (
            record.backup_id,
            record.parent_id,
            record.recovered_from_backup,
            record.source_backup_id,
        )
        protected.update(backup_id for backup_id in used if backup_id)
    return protected


def last_success(records: Iterable[Record]) -> Record | None:
    """The newest successful backup (by finish time)."""
    done = [r for r in records if r.type == "backup" and r.status == "success"]
    return _newest(done)


def last_failure(records: Iterable[Record]) -> Record | None:
    """The newest of the failures still open (see `open_failures`), if any."""
    failures = open_failures(records)
    return failures[-1] if failures else None


#: the job types whose failure shows in the status until a later one succeeds
REPORTED_FAILURES = ("backup", "restore", "copy", "retention")


def open_failures(records: Iterable[Record]) -> list[Record]:
    """Failed jobs not yet followed by a success of the same kind on the same application.

    The kind is the job's type, and for backups also the backup kind: a failed restore
    stays reported after a backup succeeds, a failed logical backup after a full one; it
    goes once a later job of its kind on that application succeeds, or when the admin
    clears the history. A retention run (the retention worker's, also a reindex) counts
    like a copy: its application is the one it ran on, none when it ran on several. One
    record (the newest failure) per kind and application, oldest first.
    """
    groups: dict[tuple[str, str, str], list[Record]] = {}
    for record in records:
        if record.finished and record.type in REPORTED_FAILURES:
            kind = (record.kind or "") if record.type == "backup" else ""
            key = (record.type, kind, record.app or "")
            groups.setdefault(key, []).append(record)
    failures: list[Record] = []
    for group in groups.values():
        newest = _newest(group)
        if newest is not None and newest.status in ("error", "failed"):
            failures.append(newest)
    return sorted(failures, key=lambda r: r.finished_at or "")


_REFUSED = re.compile(
    "^" + re.escape(RESTORING_MESSAGE).replace(re.escape("{job}"), "(?P<job>[^)]+)", 1) + "$"
)


def refusing_restore(record: Record) -> str | None:
    """The restore job id, when the provider refused this backup because it was restoring."""
    if record.status != "error":
        return None
    match = _REFUSED.match(record.message or "")
    return match.group("job") if match else None


def backups_to_retry(records: list[Record]) -> list[Record]:
    """Scheduled backups refused during a restore that has ended: retry each once.

    Not retried: a retry itself (`retry-of`), one already retried (`retried-by`), one a
    later backup of the same application supersedes, or one whose application is still
    restoring.
    """
    candidates: list[Record] = []
    for index, record in enumerate(records):
        if not record.scheduled or record.type != "backup":
            continue
        if record.retry_of or record.retried_by:
            continue
        if refusing_restore(record) is None:
            continue
        app = record.app
        later = records[index + 1 :]
        if any(r.type == "backup" and r.app == app for r in later):
            continue
        if any(r.type == "restore" and r.app == app for r in records if not r.finished):
            continue
        candidates.append(record)
    return candidates


def _newest(records: list[Record]) -> Record | None:
    """The record that finished last; within the same second, the later one in the history."""
    ranked = [(r.finished_at or "", i) for i, r in enumerate(records)]
    if not ranked:
        return None
    return records[max(ranked)[1]]
