"""Point-in-time recovery into the running server: plan, restore, replay, new timeline.

`recovery_plan.plan_recovery` is pure reading: it picks the newest suitable physical
backup (full or chain) that finished at or before the target on the history being
recovered, and checks that the shipped binlogs cover the way from that backup to the
target. It refuses, before anything is touched, when they do not: a gap in the files (a
number missing, GTIDs that do not follow, the start of the history purged), a target
before the first backup, or a target after the last shipped event.

`recover_to_point` then (holding the binlog lock, so no shipment runs meanwhile):

1. ships the server's closed binlogs, rotating first, so the old history is safe in
   storage and "latest" means now (refuses to go on if that fails, unless told to);
2. plans as above;
3. downloads and verifies the binlogs to replay (a damaged one refuses the recovery);
4. restores the backup (`restore_physical` with `keep_previous`: the previous data is
   kept, and the datadir locked, until step 6 has finished; the journal beside the
   datadir records kind `pitr` and the phase reached);
5. starts a new timeline in storage (and marks it in the work directory as the one
   this server writes, see `timeline_owner`) and resets the server's binary log to the
   backup's GTID state (`RESET MASTER`, then the GTID state), so the replayed and all
   later events are logged on the new timeline and never overwrite the old one;
6. replays the shipped binlogs from the backup's position up to the target
   (`--stop-datetime`, one-second resolution: events of the target's second are
   included) or to the end ("latest");
7. deletes the previous data (phase `done`), rotates and ships the new timeline's
   first file.

A failure in steps 5-6 (a replay error, SIGTERM) stops the server, puts the previous data
and this server's timeline marker back and starts it again (`data_changed` False); a
process killed there leaves the journal in state `replaying`, and `recover`
(`recover_interrupted_restore`) puts the previous data back. The timeline created in
step 5 stays in storage, empty or partly written; the next shipment forks from it.

Timelines (see `catalog.binlogs`): a recovery to a time before the current timeline
began follows the timeline's parent up to the moment it forked from.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from database_backup import stopping
from database_backup.catalog import Catalog
from database_backup.catalog.binlogs import BinlogCatalog, BinlogEntry

from ..binlog.replay import ReplayError, ReplayStats, query, replay
from ..binlog.shipping import BinlogError, binlog_lock, ship_binlogs
from ..binlog.timeline_owner import MARKER_NAME, claim_new_timeline
from ..connection import ConnectionSpec
from ..errors import RestoreError
from ..flavour import Flavour, FlavourError, detect, for_name
from ..physical.datadir import DatadirSwap
from ..physical.restore import discard_previous, restore_physical, roll_back_held
from ..progress import ProgressCallback, emit
from ..server import ServerControl
from .plan import (
    LATEST,
    RecoveryError,
    RecoveryPlan,
    parse_target,
    plan_recovery,
    plan_restore_point,
)

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20

__all__ = [
    "LATEST",
    "RecoveryError",
    "RecoveryPlan",
    "RecoveryResult",
    "download_binlog",
    "parse_target",
    "plan_recovery",
    "plan_restore_point",
    "recover_to_point",
    "reset_binlog_sql",
]


@dataclass
class RecoveryResult:
    """What a point-in-time recovery did."""

    plan: RecoveryPlan
    new_timeline: str
    replayed_files: int = 0
    replayed_bytes: int = 0
    restore_seconds: float = 0.0
    replay_seconds: float = 0.0
    shipped_before: list[str] = field(default_factory=list[str])
    gtid_after: str = ""
    replay_route: str = ""

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
            "replay-route": self.replay_route,
        }


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
    replay_binlogs: bool = True,
    prefetch: bool = True,
    source: Catalog | None = None,
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
        replay_binlogs: False restores `backup_id` as it is (`target` is ignored), still
            shipping first and starting a new timeline: a plain restore that keeps the
            binlog history in storage consistent.
        prefetch: download and verify every binlog to replay into `workdir` before the
            restore, so a damaged or missing one refuses the recovery while nothing is
            touched (needs their size in local space); False fetches each one file ahead
            of the replay instead.
        source: another cluster's catalog (a clone): its backup and binlogs are read, and
            the new timeline is still written to `catalog` (this server's own prefix,
            with no parent); nothing is written to `source`.

    Raises:
        RecoveryError: refused (`data_changed` False) or failed.
    """
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    index = BinlogCatalog(catalog)
    origin = catalog if source is None else source
    cloned = "" if source is None else f" from cluster {source.cluster_id}"
    try:
        with binlog_lock(work, timeout=lock_timeout):
            shipped = (
                _ship_first(conn, catalog, work, key, compression_level, binlog_dir, progress)
                if ship_first
                else []
            )
            emit(progress, "plan")
            if replay_binlogs:
                plan = plan_recovery(origin, target, backup_id=backup_id)
                what = target.isoformat() if target is not None else LATEST
                reason = f"point-in-time recovery to {what}{cloned}"
            else:
                if backup_id is None:
                    raise RecoveryError("name the backup to restore")
                plan = plan_restore_point(origin, backup_id)
                reason = f"restore of backup {backup_id}{cloned}"
            try:
                sources = _sources(BinlogCatalog(origin), plan, work, key, prefetch, progress)
                result = _execute(
                    conn, server, origin, index, plan, sources, work, key, compression_level,
                    binlog_dir, progress, verify_timeout, reason,
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
    sources: list[Path | Callable[[], Path]],
    work: Path,
    key: bytes | None,
    compression_level: int | None,
    binlog_dir: str | os.PathLike[str] | None,
    progress: ProgressCallback | None,
    verify_timeout: float,
    reason: str,
) -> RecoveryResult:
    started = time.monotonic()
    try:
        restored_backup = restore_physical(
            conn, server, catalog, plan.backup.backup_id, key=key, progress=progress,
            workdir=work / f"restore-{plan.backup.backup_id}", verify_timeout=verify_timeout,
            keep_previous=True, kind="pitr",
        )  # fmt: skip
    except RestoreError as exc:
        raise RecoveryError(
            f"restoring backup {plan.backup.backup_id} failed: {exc}",
            data_changed=exc.data_changed,
        ) from exc
    held = restored_backup.held
    if held is None:  # keep_previous=True always holds it
        raise RecoveryError("the restore did not keep the previous data", data_changed=True)
    restored = time.monotonic()
    try:
        held.start_replay(keep_files=(work / MARKER_NAME,))
        flavour = detect(conn, workdir=work)
        timeline = index.create_timeline(
            parent=plan.timeline.timeline_id if index.catalog is catalog else None,
            fork_backup=plan.backup.backup_id if index.catalog is catalog else None,
            fork_target=plan.target,
            fork_gtid=plan.backup.gtid_set,
            reason=reason,
        )
        claim_new_timeline(work, index.catalog, timeline.timeline_id)  # this server writes it
        query(conn, flavour, reset_binlog_sql(flavour, plan.backup.gtid_set), work)
        emit(progress, "replay", 0, len(plan.files))
        stats = ReplayStats(files=0, binlog_bytes=0, seconds=0.0)
        if plan.files:
            stats = replay(
                conn,
                flavour,
                sources,
                workdir=work,
                start_position=plan.start_position,
                stop_datetime=plan.stop_at,
                on_file=lambda done, total: emit(progress, "replay", done, total),
            )
        if plan.target is None and plan.files:
            index.write_timeline(replace(timeline, fork_target=plan.files[-1].last_event_at))
        gtid = query(conn, flavour, "SELECT @@gtid_binlog_pos;", work)
        stopping.raise_if_requested()  # a stop asked for (and swallowed) before the commit
    except BaseException as exc:
        _put_previous_back(conn, server, plan, held, work, verify_timeout, exc)
        raise  # only reached for exceptions that are not errors (KeyboardInterrupt...)
    discard_previous(held)
    result = RecoveryResult(
        plan=plan,
        new_timeline=timeline.timeline_id,
        replayed_files=stats.files,
        replayed_bytes=stats.binlog_bytes,
        restore_seconds=restored - started,
        replay_seconds=stats.seconds,
        gtid_after=gtid[0][0] if gtid and gtid[0] else "",
        replay_route=stats.route if plan.files else "",
    )
    emit(progress, "ship")
    try:
        ship_binlogs(
            conn, index.catalog, workdir=work, key=key, compression_level=compression_level,
            flush=True, binlog_dir=binlog_dir, locked=True,
        )  # fmt: skip
    except BinlogError as exc:  # the recovery itself succeeded
        logger.warning("recovered; shipping the new timeline failed: %s", exc)
    emit(progress, "done")
    return result


def _put_previous_back(
    conn: ConnectionSpec,
    server: ServerControl,
    plan: RecoveryPlan,
    held: DatadirSwap,
    work: Path,
    verify_timeout: float,
    cause: BaseException,
) -> None:
    """After a failure during the replay: the previous data and timeline marker back.

    Raises:
        RecoveryError: always (for an `Exception` cause), saying what failed and whether
            the previous data is back.
    """
    what = f"replaying the binlogs onto backup {plan.backup.backup_id} failed ({cause})"
    logger.warning("%s; putting the previous data back", what)
    try:
        flavour = for_name(plan.backup.flavour, plan.backup.server_version)
        roll_back_held(conn, server, held, flavour, work, verify_timeout)
    except (RestoreError, FlavourError) as exc:
        raise RecoveryError(f"{what}, and {exc}", data_changed=True) from cause
    if isinstance(cause, Exception):
        raise RecoveryError(
            f"{what}; the previous data was put back and the server is running again",
            data_changed=False,
        ) from cause


def reset_binlog_sql(flavour: Flavour, gtid_set: str | None) -> str:
    """SQL that empties the binary log and sets its GTID state to the backup's."""
    sql = "RESET MASTER;"
    if gtid_set:
        quoted = gtid_set.replace("\\", "").replace("'", "").replace("\n", "")
        sql += " " + flavour.set_gtid_state_sql(quoted)
    return sql


def _sources(
    index: BinlogCatalog,
    plan: RecoveryPlan,
    work: Path,
    key: bytes | None,
    prefetch: bool,
    progress: ProgressCallback | None,
) -> list[Path | Callable[[], Path]]:
    """The binlogs to replay: downloaded and verified now (prefetch), or fetchers."""
    if not prefetch:
        return [_fetcher(index, entry, work, key) for entry in plan.files]
    total = sum(entry.stored_size for entry in plan.files)
    done = 0
    paths: list[Path | Callable[[], Path]] = []
    for entry in plan.files:
        emit(progress, "fetch", done, total)
        try:
            paths.append(download_binlog(index, entry, work / "binlogs", key))
        except Exception as exc:
            raise RecoveryError(
                f"shipped binlog {entry.name} of timeline {entry.timeline} cannot be used "
                f"({exc}); nothing was changed"
            ) from exc
        done += entry.stored_size
    return paths


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

    if entry.encrypted and key is None:
        raise ReplayError(f"binlog {entry.name} is encrypted: provide the encryption key")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / entry.name
    source = index.catalog.storage.open_stream(index.object_key(entry.timeline, entry.object_name))
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
