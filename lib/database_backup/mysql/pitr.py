"""Point-in-time recovery into the running server: plan, restore, replay, new timeline.

`plan_recovery` is pure reading: it picks the newest suitable physical backup (full or
chain) that finished at or before the target on the history being recovered, and checks
that the shipped binlogs cover the way from that backup to the target. It refuses, before
anything is touched, when they do not: a gap in the files (a number missing, GTIDs that
do not follow, the start of the history purged), a target before the first backup, or a
target after the last shipped event.

`recover_to_point` then (holding the binlog lock, so no shipment runs meanwhile):

1. ships the server's closed binlogs, rotating first, so the old history is safe in
   storage and "latest" means now (refuses to go on if that fails, unless told to);
2. plans as above;
3. restores the backup (`restore_physical`: the previous data is kept until the
   restored server answers, and put back on failure);
4. starts a new timeline in storage and resets the server's binary log to the backup's
   GTID state (`RESET MASTER`, then the GTID state), so the replayed and all later
   events are logged on the new timeline and never overwrite the old one;
5. replays the shipped binlogs from the backup's position up to the target
   (`--stop-datetime`, one-second resolution: events of the target's second are
   included) or to the end ("latest");
6. rotates and ships the new timeline's first file.

Timelines (see `catalog.binlogs`): a recovery to a time before the current timeline
began follows the timeline's parent up to the moment it forked from.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .binlogfile import gtid_positions
from .binlogs import BinlogError, binlog_lock, ship_binlogs
from .connection import ConnectionSpec
from .flavour import Flavour, FlavourError, detect
from .incremental import ChainError, resolve_chain
from .progress import ProgressCallback, emit
from .replay import ReplayError, query, replay
from .restore import RestoreError, restore_physical
from .server import ServerControl

if TYPE_CHECKING:
    from database_backup.catalog import BackupMetadata, Catalog
    from database_backup.catalog.binlogs import BinlogCatalog, BinlogEntry, Timeline

logger = logging.getLogger(__name__)

LATEST = "latest"
_CHUNK = 1 << 20


class RecoveryError(Exception):
    """Point-in-time recovery refused or failed.

    Attributes:
        data_changed: False when the server's data is what it was before.
    """

    def __init__(self, message: str, *, data_changed: bool = False) -> None:
        super().__init__(message)
        self.data_changed = data_changed


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


@dataclass
class RecoveryResult:
    """What a point-in-time recovery did."""

    plan: RecoveryPlan
    new_timeline: str
    replayed_files: int = 0
    replayed_bytes: int = 0
    restore_seconds: float = 0.0
    replay_seconds: float = 0.0
    shipped_before: list[str] = field(default_factory=list)
    gtid_after: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary."""
        return {
            **self.plan.to_dict(),
            "new-timeline": self.new_timeline,
            "replayed-files": self.replayed_files,
            "replayed-bytes": self.replayed_bytes,
            "restore-seconds": round(self.restore_seconds, 3),
            "replay-seconds": round(self.replay_seconds, 3),
            "shipped-before": list(self.shipped_before),
            "gtid-after": self.gtid_after,
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
    from database_backup.catalog.binlogs import timeline_at

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
    from database_backup.catalog import BackupMetadata
    from database_backup.catalog.binlogs import BinlogCatalog

    index = BinlogCatalog(catalog)
    timelines = index.timelines()
    if not timelines:
        raise RecoveryError(
            "no binlogs have been shipped for this cluster: point-in-time recovery needs "
            "shipped binlogs (run ship-binlogs on a timer), restore a backup instead"
        )
    timeline, effective = _resolve_timeline(timelines, target)
    backups = [entry for entry in catalog.list_backups() if isinstance(entry, BackupMetadata)]
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
    backup, from_start = usable[-1]
    try:
        chain = tuple(item.backup_id for item in resolve_chain(catalog, backup.backup_id))
    except ChainError as exc:
        raise RecoveryError(f"cannot recover from backup {backup.backup_id}: {exc}") from exc
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
        from database_backup.catalog.binlogs import binlog_sequence

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


# -- execution --------------------------------------------------------------------------


def recover_to_point(
    conn: ConnectionSpec,
    server: ServerControl,
    catalog: Catalog,
    target: datetime | None,
    *,
    workdir: str | os.PathLike[str],
    backup_id: str | None = None,
    key: bytes | None = None,
    compression_level: int | None = 3,
    ship_first: bool = True,
    binlog_dir: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    lock_timeout: float = 300.0,
    verify_timeout: float = 120.0,
) -> RecoveryResult:
    """Recover the server behind `conn`/`server` to `target` (None = latest).

    Args:
        conn: the server (the account needs the backup privileges plus SUPER or
            BINLOG REPLAY/BINLOG ADMIN to replay binlogs and reset the binary log).
        server: stops/starts it for the restore.
        catalog: the cluster's catalog.
        target: the moment to recover to (timezone-aware), None for the newest state.
        workdir: private directory; the same one binlog shipping uses (shared lock).
        backup_id: start from this backup instead of the newest suitable one.
        key: the encryption key of backups and binlogs.
        compression_level: for the binlogs shipped before and after.
        ship_first: ship the server's closed binlogs (after a rotation) before planning;
            when that fails the recovery is refused (pass False when the server's
            binlogs are lost anyway).
        binlog_dir: where the server's binlog files are, if not where it says.
        progress: called with ProgressEvent(phase, done, estimated).
        lock_timeout: seconds to wait for a running shipment.
        verify_timeout: seconds for the restored server to answer.

    Raises:
        RecoveryError: refused (`data_changed` False) or failed.
    """
    from database_backup.catalog.binlogs import BinlogCatalog

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    index = BinlogCatalog(catalog)
    try:
        with binlog_lock(work, timeout=lock_timeout):
            shipped = (
                _ship_first(conn, catalog, work, key, compression_level, binlog_dir, progress)
                if ship_first
                else []
            )
            emit(progress, "plan")
            plan = plan_recovery(catalog, target, backup_id=backup_id)
            try:
                result = _execute(
                    conn, server, catalog, index, plan, work, key, compression_level, binlog_dir,
                    progress, verify_timeout,
                )  # fmt: skip
            finally:
                shutil.rmtree(work / "binlogs", ignore_errors=True)
    except BinlogError as exc:  # the lock: shipping errors are turned into RecoveryError
        raise RecoveryError(str(exc)) from exc
    result.shipped_before = shipped
    return result


def _ship_first(
    conn: ConnectionSpec,
    catalog: Catalog,
    work: Path,
    key: bytes | None,
    compression_level: int | None,
    binlog_dir: str | os.PathLike[str] | None,
    progress: ProgressCallback | None,
) -> list[str]:
    emit(progress, "ship")
    try:
        return ship_binlogs(
            conn, catalog, workdir=work, key=key, compression_level=compression_level,
            flush=True, binlog_dir=binlog_dir, locked=True,
        ).shipped  # fmt: skip
    except BinlogError as exc:
        raise RecoveryError(
            f"could not ship the server's binlogs before the recovery ({exc}); "
            "nothing was changed. Fix that, or recover without shipping first "
            "(the server's unshipped binlogs are then lost)"
        ) from exc


def _execute(
    conn: ConnectionSpec,
    server: ServerControl,
    catalog: Catalog,
    index: BinlogCatalog,
    plan: RecoveryPlan,
    work: Path,
    key: bytes | None,
    compression_level: int | None,
    binlog_dir: str | os.PathLike[str] | None,
    progress: ProgressCallback | None,
    verify_timeout: float,
) -> RecoveryResult:
    started = time.monotonic()
    try:
        restore_physical(
            conn, server, catalog, plan.backup.backup_id, key=key, progress=progress,
            workdir=work / f"restore-{plan.backup.backup_id}", verify_timeout=verify_timeout,
        )  # fmt: skip
    except RestoreError as exc:
        raise RecoveryError(
            f"restoring backup {plan.backup.backup_id} failed: {exc}",
            data_changed=exc.data_changed,
        ) from exc
    restored = time.monotonic()
    try:
        flavour = detect(conn, workdir=work)
        timeline = index.create_timeline(
            parent=plan.timeline.timeline_id,
            fork_backup=plan.backup.backup_id,
            fork_target=plan.target,
            fork_gtid=plan.backup.gtid_set,
            reason=f"point-in-time recovery to {_what(plan.target)}",
        )
        query(conn, flavour, reset_binlog_sql(flavour, plan.backup.gtid_set), work)
        emit(progress, "replay", 0, len(plan.files))
        stats = replay(
            conn,
            flavour,
            [_fetcher(index, entry, work, key) for entry in plan.files],
            workdir=work,
            start_position=plan.start_position,
            stop_datetime=plan.stop_at,
            on_file=lambda done, total: emit(progress, "replay", done, total),
        )
        if plan.target is None and plan.files:
            index.write_timeline(replace(timeline, fork_target=plan.files[-1].last_event_at))
        gtid = query(conn, flavour, "SELECT @@gtid_binlog_pos;", work)
    except (ReplayError, FlavourError, OSError, ValueError) as exc:
        raise RecoveryError(
            f"backup {plan.backup.backup_id} was restored but replaying the binlogs failed: "
            f"{exc}. The server holds the backup plus the events replayed before the failure; "
            "run the recovery again",
            data_changed=True,
        ) from exc
    except Exception as exc:
        raise RecoveryError(
            f"backup {plan.backup.backup_id} was restored but the recovery failed after it: "
            f"{exc}; run the recovery again",
            data_changed=True,
        ) from exc
    result = RecoveryResult(
        plan=plan,
        new_timeline=timeline.timeline_id,
        replayed_files=stats.files,
        replayed_bytes=stats.binlog_bytes,
        restore_seconds=restored - started,
        replay_seconds=stats.seconds,
        gtid_after=gtid[0][0] if gtid and gtid[0] else "",
    )
    emit(progress, "ship")
    try:
        ship_binlogs(
            conn, catalog, workdir=work, key=key, compression_level=compression_level,
            flush=True, binlog_dir=binlog_dir, locked=True,
        )  # fmt: skip
    except BinlogError as exc:  # the recovery itself succeeded
        logger.warning("recovered; shipping the new timeline failed: %s", exc)
    emit(progress, "done")
    return result


def reset_binlog_sql(flavour: Flavour, gtid_set: str | None) -> str:
    """SQL that empties the binary log and sets its GTID state to the backup's."""
    sql = "RESET MASTER;"
    if gtid_set:
        quoted = gtid_set.replace("\\", "").replace("'", "").replace("\n", "")
        if flavour.name == "mariadb":
            sql += f" SET GLOBAL gtid_binlog_state = '{quoted}';"
        else:
            sql += f" SET GLOBAL gtid_purged = '{quoted}';"
    return sql


def _fetcher(
    index: BinlogCatalog, entry: BinlogEntry, work: Path, key: bytes | None
) -> Callable[[], Path]:
    def fetch() -> Path:
        return download_binlog(index, entry, work / "binlogs", key)

    return fetch


def download_binlog(
    index: BinlogCatalog, entry: BinlogEntry, directory: Path, key: bytes | None
) -> Path:
    """Download, verify and decode one shipped binlog into `directory`; return its path.

    Raises:
        ReplayError: it is encrypted and no key was given, or it failed verification.
    """
    from database_backup.stream import IntegrityError, decode

    from .objects import streaming_storage

    if entry.encrypted and key is None:
        raise ReplayError(f"binlog {entry.name} is encrypted: provide the encryption key")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / entry.name
    source = streaming_storage(index.catalog).open_stream(
        index.object_key(entry.timeline, entry.object_name)
    )
    try:
        reader = decode(
            source,
            key=key if entry.encrypted else None,
            compressed=entry.compression != "none",
            expected_sha256=entry.sha256,
            expected_size=entry.stored_size,
        )
        with path.open("wb") as handle:
            while chunk := reader.read(_CHUNK):
                handle.write(chunk)
    except IntegrityError as exc:
        path.unlink(missing_ok=True)
        raise ReplayError(f"shipped binlog {entry.name} failed verification: {exc}") from exc
    finally:
        source.close()
    return path
