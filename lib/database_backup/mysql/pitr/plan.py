"""Planning a point-in-time recovery (pure reading; nothing is touched).

`plan_recovery` picks the newest suitable physical backup (full or chain) that finished
at or before the target on the history being recovered, and checks that the shipped
binlogs cover the way from that backup to the target. It refuses, with a message that
says why and what to do, when they do not: a gap in the files (a number missing, GTIDs
that do not follow, the start of the history purged), a target before the first backup,
or a target after the last shipped event. Binlog event times have one-second
resolution: the events of the target's second are included.

Timelines (see `catalog.binlogs`): a recovery to a time before the current timeline
began follows the timeline's parent, up to the moment it forked from.

`plan_restore_point` plans the restore of one backup as it is (no replay) that still
starts a new timeline, so that a plain restore does not mix two histories either.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from database_backup.catalog import BackupMetadata, BackupNotFoundError, Catalog, CatalogError
from database_backup.catalog.binlogs import (
    BinlogCatalog,
    BinlogEntry,
    Timeline,
    binlog_sequence,
    timeline_at,
)

from ..binlog.reader import gtid_positions
from ..errors import DataChangeError
from ..physical.incremental import ChainError, resolve_chain

LATEST = "latest"


class RecoveryError(DataChangeError):
    """Point-in-time recovery refused or failed.

    Attributes:
        data_changed: False when the server's data is what it was before.
    """


@dataclass(frozen=True)
class RecoveryPlan:
    """What a point-in-time recovery will do.

    Attributes:
        target: the requested moment (UTC), None for "latest".
        timeline: the timeline whose binlogs are replayed.
        backup: the backup restored first (an incremental brings its chain).
        chain: ids of the backups restored, full first.
        files: the shipped binlogs replayed, in order.
        start_position: offset in the first file where the replay starts (None: its start).
        stop_at: the replay stops at the first event at or after this moment (None: end).
        covered_until: time of the last shipped event of the timeline.
    """

    target: datetime | None
    timeline: Timeline
    backup: BackupMetadata
    chain: tuple[str, ...]
    files: tuple[BinlogEntry, ...]
    start_position: int | None
    stop_at: datetime | None
    covered_until: datetime | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary."""
        return {
            "target": self.target.isoformat() if self.target else LATEST,
            "timeline": self.timeline.timeline_id,
            "backup-id": self.backup.backup_id,
            "chain": list(self.chain),
            "binlogs": [entry.name for entry in self.files],
            "start-position": self.start_position,
            "stop-at": self.stop_at.isoformat() if self.stop_at else None,
            "covered-until": self.covered_until.isoformat() if self.covered_until else None,
        }


def parse_target(text: str) -> datetime | None:
    """Parse a recovery target: "latest" (None) or an ISO 8601 time (UTC if no offset).

    Raises:
        ValueError: neither.
    """
    if text.strip().lower() == LATEST:
        return None
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


# -- planning ---------------------------------------------------------------------------


def _resolve_timeline(
    timelines: list[Timeline], target: datetime | None
) -> tuple[Timeline, datetime | None]:
    """The timeline holding the history at `target` (walking up forks), and the target."""
    by_id = {timeline.timeline_id: timeline for timeline in timelines}
    timeline = timelines[-1]
    while target is not None and target < timeline.created_at and timeline.parent in by_id:
        if timeline.fork_target is not None:
            target = min(target, timeline.fork_target)
        timeline = by_id[str(timeline.parent)]
    return timeline, target


def _candidates(
    backups: list[BackupMetadata],
    timelines: list[Timeline],
    timeline: Timeline,
) -> list[tuple[BackupMetadata, bool]]:
    """(backup, starts-at-timeline-start) pairs usable on `timeline`, newest last."""
    found: list[tuple[BackupMetadata, bool]] = []
    for backup in backups:
        if backup.kind not in ("full", "incremental"):
            continue
        if backup.backup_id == timeline.fork_backup:
            found.append((backup, True))
            continue
        owner = timeline_at(backup.started_at, timelines)
        if owner is not None and owner.timeline_id == timeline.timeline_id:
            found.append((backup, False))
    found.sort(key=lambda pair: (pair[0].finished_at, pair[0].backup_id))
    return found


def plan_recovery(
    catalog: Catalog,
    target: datetime | None,
    *,
    backup_id: str | None = None,
) -> RecoveryPlan:
    """Choose the backup and the binlogs for a recovery to `target` (None = latest).

    Raises:
        RecoveryError: the recovery is impossible (the message says why and what to do);
            nothing was touched.
    """
    index = BinlogCatalog(catalog)
    timelines = index.timelines()
    if not timelines:
        raise RecoveryError(
            "no binlogs have been shipped for this cluster: point-in-time recovery needs "
            "shipped binlogs (run ship-binlogs on a timer), restore a backup instead"
        )
    timeline, effective = _resolve_timeline(timelines, target)
    # the complete backups from the cluster's index (one GET and a listing of the ids it
    # does not know yet), not a GET of every backup.json; the chosen one is read in full
    backups = list(catalog.read_index().complete)
    candidates = _candidates(backups, timelines, timeline)
    usable = [pair for pair in candidates if effective is None or pair[0].finished_at <= effective]
    if backup_id is not None:
        usable = [pair for pair in usable if pair[0].backup_id == backup_id]
        if not usable:
            raise RecoveryError(
                f"backup {backup_id} cannot start a recovery to {_what(target)}: it is not a "
                "complete physical backup of this history finished before the target"
            )
    if not usable:
        first = (
            f" (the first backup finished at {candidates[0][0].finished_at.isoformat()})"
            if candidates
            else " (there is no physical backup of it)"
        )
        raise RecoveryError(
            f"the target {_what(target)} is before the first backup of this history{first}: "
            "nothing to recover from"
        )
    chosen, from_start = usable[-1]
    try:
        links = resolve_chain(catalog, chosen.backup_id)
    except ChainError as exc:
        raise RecoveryError(f"cannot recover from backup {chosen.backup_id}: {exc}") from exc
    chain = tuple(item.backup_id for item in links)
    backup = links[-1]  # its own backup.json: the index leaves out selections and sums
    entries = index.entries(timeline.timeline_id)
    files, start_position = _files_from(entries, backup, from_start, timeline)
    stop_at = _stop_at(effective)
    covered = entries[-1].last_event_at if entries else None
    needed = _check_coverage(files, stop_at, covered, backup)
    for previous, current in itertools.pairwise(needed):  # a gap after the target is no matter
        _check_follows(previous, current)
    return RecoveryPlan(
        target=target,
        timeline=timeline,
        backup=backup,
        chain=chain,
        files=tuple(needed),
        start_position=start_position,
        stop_at=stop_at,
        covered_until=covered,
    )


def _what(target: datetime | None) -> str:
    return target.isoformat() if target is not None else LATEST


def _stop_at(target: datetime | None) -> datetime | None:
    """Binlog times have one-second resolution: include every event of the target's second."""
    if target is None:
        return None
    return target.replace(microsecond=0) + timedelta(seconds=1)


def _files_from(
    entries: list[BinlogEntry], backup: BackupMetadata, from_start: bool, timeline: Timeline
) -> tuple[list[BinlogEntry], int | None]:
    """The shipped files from the backup's position on."""
    tid = timeline.timeline_id
    if from_start:
        if not entries or entries[0].sequence != 1:
            raise RecoveryError(
                f"the beginning of timeline {tid} (after backup {backup.backup_id}) is not in "
                "storage: its first binlogs were purged or never shipped"
            )
        files, position = entries, None
    else:
        if not backup.binlog_file or backup.binlog_position is None:
            raise RecoveryError(
                f"backup {backup.backup_id} has no binlog position: it cannot start a "
                "point-in-time recovery"
            )

        start = binlog_sequence(backup.binlog_file)
        files = [entry for entry in entries if entry.sequence >= start]
        if not files or files[0].sequence != start:
            shipped = (
                f"shipped binlogs of timeline {tid} end at {entries[-1].name}"
                if entries
                else f"timeline {tid} has no shipped binlogs"
            )
            raise RecoveryError(
                f"the binlogs after backup {backup.backup_id} (from {backup.binlog_file}) are "
                f"not in storage ({shipped}): ship them (ship-binlogs --flush) or pick a "
                "target covered by another backup"
            )
        position = backup.binlog_position
        _check_gtid_start(files[0], backup)
    return files, position


def _check_gtid_start(first: BinlogEntry, backup: BackupMetadata) -> None:
    """The backup's GTID position must lie within (or at the start of) its first file."""
    if not backup.gtid_set or not (first.gtid_list or first.last_gtids):
        return
    start = gtid_positions(",".join(first.gtid_list))
    end = gtid_positions(",".join(first.last_gtids)) or start
    for domain, seq in gtid_positions(backup.gtid_set).items():
        low, high = start.get(domain, 0), max(end.get(domain, 0), start.get(domain, 0))
        if not low <= seq <= high:
            raise RecoveryError(
                f"backup {backup.backup_id} is at GTID {backup.gtid_set}, which is not in the "
                f"shipped {first.name} of its timeline (GTIDs {low}..{high} in domain "
                f"{domain}): the shipped history does not belong to this backup"
            )


def _check_follows(previous: BinlogEntry, current: BinlogEntry) -> None:
    if current.sequence != previous.sequence + 1:
        raise RecoveryError(
            f"gap in the shipped binlogs: {previous.name} is followed by {current.name} "
            "(files in between were never shipped or were purged); recover to a time before "
            f"{previous.last_event_at.isoformat()} or from a backup taken after the gap"
        )
    before = gtid_positions(",".join(previous.last_gtids) or ",".join(previous.gtid_list))
    after = gtid_positions(",".join(current.gtid_list))
    for domain, seq in before.items():
        if current.gtid_list and after.get(domain, 0) < seq:
            raise RecoveryError(
                f"gap in the shipped binlogs: {current.name} does not continue the GTIDs of "
                f"{previous.name} (domain {domain}: {seq} then {after.get(domain, 0)})"
            )


def _check_coverage(
    files: list[BinlogEntry],
    stop_at: datetime | None,
    covered: datetime | None,
    backup: BackupMetadata,
) -> list[BinlogEntry]:
    """The files needed up to `stop_at`; refuse a target after the last shipped event."""
    if stop_at is None:
        return files
    last_event = files[-1].last_event_at if files else covered
    if last_event is None or stop_at - timedelta(seconds=1) > last_event:
        until = last_event.isoformat() if last_event else "nothing"
        raise RecoveryError(
            f"the target {(stop_at - timedelta(seconds=1)).isoformat()} is after the last "
            f"shipped binlog event ({until}) of the history of backup {backup.backup_id}: "
            "ship the binlogs first (ship-binlogs --flush) or choose an earlier target"
        )
    needed: list[BinlogEntry] = []
    for entry in files:
        needed.append(entry)
        if entry.last_event_at >= stop_at:
            break
    return needed


def plan_restore_point(catalog: Catalog, backup_id: str) -> RecoveryPlan:
    """Plan the restore of `backup_id` as it is (no binlog replay) on a new timeline.

    Raises:
        RecoveryError: no binlogs were ever shipped (then a plain restore is enough), or
            the backup (chain) cannot be restored.
    """
    timelines = BinlogCatalog(catalog).timelines()
    if not timelines:
        raise RecoveryError("no binlogs have been shipped for this cluster: no timeline to fork")
    try:
        meta = catalog.read_metadata(backup_id)
        chain = tuple(item.backup_id for item in resolve_chain(catalog, backup_id))
    except (BackupNotFoundError, CatalogError, ChainError) as exc:
        raise RecoveryError(f"cannot restore backup {backup_id}: {exc}") from exc
    timeline = timeline_at(meta.started_at, timelines)
    if timeline is None:  # pragma: no cover - timelines is not empty
        raise RecoveryError("no timeline")
    return RecoveryPlan(
        target=meta.finished_at,
        timeline=timeline,
        backup=meta,
        chain=chain,
        files=(),
        start_position=None,
        stop_at=None,
        covered_until=None,
    )
