"""Retention: which backups to delete (a pure function over the catalog's contents).

Rules, in order of precedence:

1. A held backup (``preserve.json`` with a time still in the future: a backup hold) and a
   protected one (e.g. the backup a restore is reading) are never selected. New backups
   keep being taken meanwhile; once the hold expires the backup is selected again like
   any other.
2. A backup that a kept incremental backup depends on (its parent, transitively) is
   never selected.
3. The ``min_count`` newest complete backups are always kept.
4. Beyond those, complete backups past the ``max_count`` newest, or finished more than
   ``max_age`` ago, are selected.
5. Incomplete backups (no valid ``backup.json``: failed, or still being uploaded) never
   count as kept backups; they are selected once untouched for ``incomplete_grace``, so a
   backup in progress is left alone.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from database_backup.timefmt import as_utc

from .metadata import BackupMetadata, IncompleteBackup

CatalogEntry = BackupMetadata | IncompleteBackup


@dataclass(frozen=True)
class RetentionPolicy:
    """How many backups to keep, and for how long."""

    min_count: int = 1
    max_count: int | None = None
    max_age: timedelta | None = None
    incomplete_grace: timedelta = timedelta(days=1)

    def __post_init__(self) -> None:
        """Refuse values that make no sense."""
        if self.min_count < 0:
            raise ValueError("min-count must be 0 or more")
        if self.max_count is not None and self.max_count < 1:
            raise ValueError("max-count must be at least 1 (or unset)")
        if self.max_age is not None and self.max_age <= timedelta(0):
            raise ValueError("max-age must be positive (or unset)")
        if self.incomplete_grace < timedelta(0):
            raise ValueError("the grace period for incomplete backups must not be negative")


@dataclass(frozen=True)
class Decision:
    """One backup to delete, and why."""

    backup_id: str
    reason: str


def _is_complete(entry: CatalogEntry) -> bool:
    return isinstance(entry, BackupMetadata) and entry.is_complete


def _entry_time(entry: CatalogEntry) -> datetime:
    if isinstance(entry, BackupMetadata):
        return entry.started_at
    return entry.last_modified


def _last_activity(entry: CatalogEntry) -> datetime:
    if isinstance(entry, BackupMetadata):
        return entry.finished_at
    return entry.last_modified


def _policy_reason(
    index: int, entry: BackupMetadata, policy: RetentionPolicy, now: datetime
) -> str | None:
    """Why the complete backup at ``index`` (0 = newest) is past the policy, else None."""
    if index < policy.min_count:
        return None
    if policy.max_count is not None and index >= policy.max_count:
        return f"beyond the {policy.max_count} newest backups (max-count)"
    if policy.max_age is not None and now - entry.finished_at > policy.max_age:
        return f"finished more than {policy.max_age} ago (max-age)"
    return None


def select_for_deletion(
    backups: Sequence[CatalogEntry],
    holds: Mapping[str, datetime],
    policy: RetentionPolicy,
    now: datetime,
    protected: Collection[str] = (),
) -> list[Decision]:
    """Select the backups retention deletes, oldest first.

    Args:
        backups: the catalog's entries (complete and incomplete), in any order.
        holds: backup id -> held until (expired holds may be included: they are ignored).
        policy: the retention policy.
        now: the current time (timezone-aware).
        protected: ids never to delete now (e.g. a backup being restored or copied).

    Returns:
        The decisions, oldest backup first.
    """
    now = as_utc(now)
    untouchable = {backup_id for backup_id, until in holds.items() if as_utc(until) > now}
    untouchable.update(protected)

    complete = sorted(
        (entry for entry in backups if isinstance(entry, BackupMetadata) and entry.is_complete),
        key=lambda entry: (entry.started_at, entry.backup_id),
        reverse=True,
    )
    candidates: dict[str, str] = {}
    for index, entry in enumerate(complete):
        reason = _policy_reason(index, entry, policy, now)
        if reason is not None:
            candidates[entry.backup_id] = reason
    for entry in backups:
        if not _is_complete(entry) and now - _last_activity(entry) > policy.incomplete_grace:
            candidates[entry.backup_id] = (
                f"incomplete and untouched for more than {policy.incomplete_grace}"
            )
    for backup_id in untouchable:
        candidates.pop(backup_id, None)

    _keep_parents_of_kept(backups, candidates)

    by_id = {entry.backup_id: entry for entry in backups}
    chosen = sorted(candidates, key=lambda backup_id: (_entry_time(by_id[backup_id]), backup_id))
    return [Decision(backup_id, candidates[backup_id]) for backup_id in chosen]


def _keep_parents_of_kept(backups: Sequence[CatalogEntry], candidates: dict[str, str]) -> None:
    """Drop from ``candidates`` every ancestor of a backup that is kept."""
    parents = {
        entry.backup_id: entry.parent_id
        for entry in backups
        if isinstance(entry, BackupMetadata) and entry.parent_id
    }
    for entry in backups:
        if entry.backup_id in candidates:
            continue
        seen = {entry.backup_id}
        parent = parents.get(entry.backup_id)
        while parent is not None and parent not in seen:
            seen.add(parent)
            candidates.pop(parent, None)
            parent = parents.get(parent)
