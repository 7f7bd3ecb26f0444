"""The catalog index: one small object per cluster that summarises every complete backup.

``<cluster-id>/index.json``::

    {"format-version": 1, "cluster-id": "<model-uuid>/<app>", "generation": 42,
     "updated-at": "...Z",
     "backups": {"<backup-id>": {<backup.json without databases, tables, table-sums>,
                                 "preserve-until": "...Z",      (held; absent if not)
                                 "verification": {...}}},       (newest drill; absent if never)
     "pending": ["<backup-id>", ...]}    (seen without a complete backup.json)

The per-backup files (``backup.json``, ``preserve.json``, ``verification.json``) stay the
truth; the index is a cache every writer updates after writing its file (a backup
completed or copied, deleted, held or released, drilled). A reader GETs it once and lists
``backups/`` with a delimiter *after the newest id it knows* (backup ids sort by start
time, so that is one request for the few new ones): ids the index lacks are read from
their own files and added, and the pending ids (in progress or failed) are read again
(``Catalog.read_index``). A missing or unreadable index is rebuilt from a full listing.
What that cannot see - a hold or a drill result whose index update another writer's
concurrent update overwrote, an entry a lost deletion left, a failed backup's leftovers
older than the newest id - is corrected by ``Catalog.reindex`` (the retention worker runs
it daily), and never endangers a backup: retention re-reads ``preserve.json`` of each
backup before deleting it, and deletes by the backup's own files.

This module is pure (no storage): the document's form and the view of one read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .documents import as_list, as_object, load_json
from .errors import MetadataError
from .metadata import BackupMetadata, IncompleteBackup, format_time, parse_time

INDEX_FILE = "index.json"
INDEX_VERSION = 1
HOLD_KEY = "preserve-until"
VERIFICATION_KEY = "verification"
#: backup.json keys the index leaves out (selection lists, per-table sums: unbounded)
LEFT_OUT = ("databases", "tables", "table-sums", "format-version")

Summary = dict[str, Any]


def summarize(
    meta: BackupMetadata,
    *,
    hold: datetime | None = None,
    verification: Mapping[str, object] | None = None,
) -> Summary:
    """The index entry of a complete backup (its hold and drill result, if any)."""
    summary = {k: v for k, v in meta.to_dict().items() if k not in LEFT_OUT}
    if hold is not None:
        summary[HOLD_KEY] = format_time(hold)
    if verification is not None:
        summary[VERIFICATION_KEY] = dict(verification)
    return summary


def to_metadata(backup_id: str, summary: Mapping[str, object]) -> BackupMetadata:
    """The backup's metadata as the index has it (``databases``/``tables`` left out).

    Raises:
        MetadataError: the entry is not a valid summary of ``backup_id``.
    """
    document = {k: v for k, v in summary.items() if k not in (HOLD_KEY, VERIFICATION_KEY)}
    meta = BackupMetadata.from_dict({**document, "format-version": 1})
    if meta.backup_id != backup_id:
        raise MetadataError(f"the index entry of {backup_id} names {meta.backup_id}")
    return meta


def hold_of(summary: Mapping[str, object]) -> datetime | None:
    """The time the entry's backup is held until (possibly past), or None."""
    value = summary.get(HOLD_KEY)
    return None if value is None else parse_time(value, f"{HOLD_KEY} in the index")


def verification_of(summary: Mapping[str, object]) -> dict[str, object] | None:
    """The entry's newest drill result, or None."""
    return as_object(summary.get(VERIFICATION_KEY))


@dataclass
class IndexDocument:
    """The stored index: a generation (bumped by every write) and the summaries."""

    cluster_id: str
    generation: int = 0
    backups: dict[str, Summary] = field(default_factory=dict[str, Summary])
    #: ids seen without a complete backup.json (in progress, or failed): read again by
    #: every read until they complete or are deleted
    pending: list[str] = field(default_factory=list[str])

    def newest_id(self) -> str:
        """The highest backup id the index knows (ids sort by start time), or ""."""
        return max([*self.backups, *self.pending], default="")

    def copy(self) -> IndexDocument:
        """A deep copy (summaries are plain JSON)."""
        backups = json.loads(json.dumps(self.backups))
        return IndexDocument(self.cluster_id, self.generation, backups, list(self.pending))

    def dump(self, now: datetime) -> bytes:
        """The stored form (compact JSON: it is read by every catalog read)."""
        document = {
            "format-version": INDEX_VERSION,
            "cluster-id": self.cluster_id,
            "generation": self.generation,
            "updated-at": format_time(now),
            "backups": {key: self.backups[key] for key in sorted(self.backups)},
            "pending": sorted(set(self.pending)),
        }
        return json.dumps(document, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def load(cls, raw: bytes, what: str) -> IndexDocument:
        """Parse a stored index.

        Raises:
            MetadataError: not an index document of a version this software reads.
        """
        document = as_object(load_json(raw, what))
        if document is None:
            raise MetadataError(f"{what} is not a JSON object")
        version = document.get("format-version")
        if version != INDEX_VERSION:
            raise MetadataError(f"{what} has format-version {version!r}, not {INDEX_VERSION}")
        cluster_id, generation = document.get("cluster-id"), document.get("generation")
        backups = as_object(document.get("backups"))
        if not isinstance(cluster_id, str) or backups is None:
            raise MetadataError(f"{what} lacks cluster-id or backups")
        if not isinstance(generation, int) or isinstance(generation, bool) or generation < 0:
            raise MetadataError(f"{what} has no valid generation")
        entries: dict[str, Summary] = {}
        for backup_id, summary in backups.items():
            entry = as_object(summary)
            if entry is not None:
                entries[backup_id] = entry
        pending = as_list(document.get("pending")) or []
        return cls(cluster_id, generation, entries, [p for p in pending if isinstance(p, str)])


@dataclass(frozen=True)
class CatalogView:
    """What one read of a cluster's catalog found: backups, holds and drill results."""

    complete: tuple[BackupMetadata, ...] = ()
    incomplete: tuple[IncompleteBackup, ...] = ()
    held: Mapping[str, datetime] = field(default_factory=dict[str, datetime])
    drills: Mapping[str, dict[str, object]] = field(default_factory=dict[str, dict[str, object]])

    def entries(self, include_incomplete: bool = False) -> list[BackupMetadata | IncompleteBackup]:
        """The backups, oldest first (like ``Catalog.list_backups``)."""
        found: list[BackupMetadata | IncompleteBackup] = list(self.complete)
        if include_incomplete:
            found.extend(self.incomplete)
        found.sort(key=entry_sort_key)
        return found

    def holds(self) -> dict[str, datetime]:
        """Every backup's hold time (expired ones included), by backup id."""
        return dict(self.held)

    def verifications(self) -> dict[str, dict[str, object]]:
        """Every drilled backup's newest verification document, by backup id."""
        return {backup_id: dict(document) for backup_id, document in self.drills.items()}


def entry_sort_key(entry: BackupMetadata | IncompleteBackup) -> tuple[datetime, str]:
    """Oldest first: a complete backup by its start, an incomplete one by its last write."""
    if isinstance(entry, BackupMetadata):
        return entry.started_at, entry.backup_id
    return entry.last_modified, entry.backup_id
