"""A restore drill: restore one backup into a scratch server, check it, remove the server.

Order of work (the live server is only read: its flavour, program and datadir owner):

1. read the backup's metadata (and its chain, or the point-in-time plan); refuse what
   this unit cannot drill (no key for an encrypted backup, another server version);
2. lock the scratch root, remove what a killed drill left there, and check the disk
   space BEFORE downloading anything (`space`);
3. restore into the scratch directory (`drill-restoring`): a physical backup or chain
   through `physical.extract` (download, SHA-256 and authentication checked, unpack,
   prepare), then start the scratch server on it; a logical one into a freshly
   initialised datadir through `logical.restore_logical`;
4. with a point in time, replay the shipped binlogs into it up to that time
   (`drill-replaying`, `binlog.replay` planned by `pitr.plan`);
5. check (`drill-checking`): `CHECK TABLE` on every table, then the table sums recorded
   at backup time (not after a replay: the data is then at another time);
6. stop and remove the scratch server and its directory, always (`drill-cleanup`; also
   on failure and on SIGTERM);
7. write the verdict beside the backup (`Catalog.write_verification`).

A refusal (`DrillRefusedError`) and a stop (`stopping.TerminatedError`) end the drill without a
verdict; any other failure is a `fail` verdict whose reason says what went wrong.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from database_backup import stopping
from database_backup.catalog import BackupMetadata, BackupNotFoundError, Catalog, CatalogError
from database_backup.catalog.binlogs import BinlogCatalog, BinlogEntry
from database_backup.contract import now_text
from database_backup.storage.errors import ObjectNotFoundError, StorageError
from database_backup.timefmt import format_time

from ..binlog.replay import replay
from ..connection import ConnectionSpec
from ..errors import DataChangeError
from ..logical.restore import restore_logical
from ..objects import check_key
from ..physical.extract import fetch_and_extract, prepare, stage_chain
from ..physical.incremental import ChainError, resolve_chain
from ..pitr.plan import RecoveryError, RecoveryPlan, parse_target, plan_recovery
from ..pitr.recover import download_binlog
from ..progress import ProgressCallback, ProgressEvent, emit
from ..toolrun import ToolLog
from . import checks, space
from .binary import ServerProgram, find_program
from .errors import DrillFailedError, DrillRefusedError
from .scratch import ScratchRoot, ScratchServer, check_passable
from .verification import Verification, short_reason

logger = logging.getLogger(__name__)

RESTORING = "drill-restoring"
REPLAYING = "drill-replaying"
CHECKING = "drill-checking"
CLEANUP = "drill-cleanup"


@dataclass(frozen=True)
class LiveServer:
    """The live server, only read: how to ask it what it is, and its datadir (or None)."""

    conn: ConnectionSpec
    datadir: Path | None = None


@dataclass(frozen=True)
class DrillRequest:
    """What to drill and where.

    Attributes:
        backup_id: the backup to restore.
        scratch_root: the directory scratch servers live in (never in the live datadir).
        point_in_time: replay the shipped binlogs up to this time (`latest` or ISO 8601).
        min_free_bytes: bytes to keep free; None for max(10% of the filesystem, 1 GiB).
        job_id: the job that asked (stored with the verdict).
        unit: the unit that ran it (stored with the verdict).
        start_timeout: seconds for the scratch server to answer.
        sums_budget_seconds: time for measuring the recorded tables.
        parallel: unpack threads.
    """

    backup_id: str
    scratch_root: Path
    point_in_time: str | None = None
    min_free_bytes: int | None = None
    job_id: str | None = None
    unit: str | None = None
    start_timeout: float = 300.0
    sums_budget_seconds: float = 600.0
    parallel: int = 1


@dataclass
class DrillOutcome:
    """A drill that reached a verdict."""

    backup_id: str
    kind: str
    verification: Verification
    notes: list[str] = field(default_factory=list[str])
    restore_seconds: float = 0.0
    replayed_files: int = 0
    stored: bool = False

    def to_result(self) -> dict[str, object]:
        """The state file's result: the verification object and what else is worth saying."""
        return {
            "backup-id": self.backup_id,
            "kind": self.kind,
            "verification": self.verification.to_dict(),
            "restore-seconds": round(self.restore_seconds, 3),
            "replayed-files": self.replayed_files,
            "stored": self.stored,
            "notes": list(self.notes),
        }


@dataclass
class _Plan:
    meta: BackupMetadata
    chain: list[BackupMetadata]
    recovery: RecoveryPlan | None
    target_text: str | None
    #: why the backup cannot be restored at all (a broken chain, binlogs that do not reach)
    problem: str | None = None


@dataclass
class _Tally:
    checked: int = 0
    compared: int = 0
    skipped: int = 0
    restore_seconds: float = 0.0
    replayed_files: int = 0
    notes: list[str] = field(default_factory=list[str])


def run_drill(
    catalog: Catalog,
    live: LiveServer,
    request: DrillRequest,
    *,
    key: bytes | None = None,
    progress: ProgressCallback | None = None,
) -> DrillOutcome:
    """Drill `request.backup_id`; return the verdict (pass or fail), stored beside it.

    Raises:
        DrillRefusedError: nothing was restored and no verdict written (the message says why).
        DrillFailedError: the storage failed meanwhile: no verdict written either.
        stopping.TerminatedError: stopped by SIGTERM (the scratch server was removed).
    """
    started = time.monotonic()
    plan = _plan(catalog, request, key)
    tally = _Tally()
    reason = plan.problem
    if reason is None:
        program = find_program(live.conn, plan.meta)
        datadir = _live_datadir(live, program)
        owner = _owner(datadir)
        with ScratchRoot(request.scratch_root, datadir) as root:
            check_passable(root.root, owner)
            space.check_space(root.root, _need(plan), request.min_free_bytes, datadir)
            scratch = ScratchServer(root.new_directory(), program.path, program.flavour, owner)
            tally.notes += [f"removed an interrupted drill's {name}" for name in root.removed]
            try:
                drill = _Drill(catalog, scratch, plan, request, key, progress, tally)
                reason = drill.restore_and_check()
            finally:
                emit(progress, CLEANUP)
                scratch.remove()
    verdict = Verification(
        result="fail" if reason else "pass",
        checked_at=now_text(),
        duration_seconds=time.monotonic() - started,
        tables_checked=tally.checked,
        tables_compared=tally.compared,
        tables_skipped=tally.skipped,
        reason=short_reason(reason) if reason else None,
        point_in_time=plan.target_text,
    )
    outcome = DrillOutcome(
        plan.meta.backup_id, plan.meta.kind, verdict, tally.notes, tally.restore_seconds,
        tally.replayed_files,
    )  # fmt: skip
    outcome.stored = _store(catalog, outcome, request)
    return outcome


@dataclass
class _Drill:
    """One drill's restore and checks in its scratch server."""

    catalog: Catalog
    scratch: ScratchServer
    plan: _Plan
    request: DrillRequest
    key: bytes | None
    progress: ProgressCallback | None
    tally: _Tally

    def restore_and_check(self) -> str | None:
        """Restore, replay and check; the reason of a failure, None on a pass."""
        try:
            begun = time.monotonic()
            self.restore()
            self.tally.restore_seconds = time.monotonic() - begun
            stopping.raise_if_requested()
            if self.plan.recovery is not None:
                self.tally.replayed_files = self.replay(self.plan.recovery)
                stopping.raise_if_requested()
            emit(self.progress, CHECKING)
            return self.check()
        except DrillRefusedError:
            raise
        except Exception as exc:
            stopping.raise_if_requested()  # a stop that a library turned into a failure
            logger.debug("drill failure details", exc_info=True)
            trouble = _storage_trouble(exc)
            if trouble is not None:
                raise DrillFailedError(
                    f"the storage failed during the drill ({trouble}); nothing is said about "
                    f"backup {self.plan.meta.backup_id}: drill it again once the storage answers"
                ) from exc
            if isinstance(exc, DrillFailedError):
                return str(exc)
            return str(DrillFailedError(str(exc) or type(exc).__name__))

    def restore(self) -> None:
        """Restore the backup (or chain) into the scratch server and start it."""
        emit(self.progress, RESTORING)
        reporting = _as_phase(self.progress, RESTORING)
        scratch, meta, key = self.scratch, self.plan.meta, self.key
        scratch.create()
        if meta.kind == "logical":
            try:  # nothing of the backup is in it yet: a failure is this unit's
                scratch.initialise()
                scratch.start(self.request.start_timeout)
            except DrillFailedError as exc:
                text = str(exc).removeprefix(DrillFailedError.prefix)
                raise DrillRefusedError(
                    f"could not set up a scratch server on this unit: {text}"
                ) from exc
            try:
                restore_logical(scratch.root_conn, self.catalog, meta.backup_id, key=key,
                                progress=reporting, workdir=scratch.work)  # fmt: skip
            except DataChangeError as exc:
                raise DrillFailedError(str(exc)) from exc
            return
        log = ToolLog(scratch.work / "restore.log")
        staging, flavour, parallel = scratch.datadir, scratch.flavour, self.request.parallel
        try:
            if meta.kind == "incremental":
                stage_chain(self.catalog, meta, flavour, staging, key, reporting, log, parallel)
            else:
                fetch_and_extract(self.catalog, meta, flavour, staging, key, reporting, log,
                                  parallel)  # fmt: skip
                prepare(flavour, staging, log)
        except DataChangeError as exc:
            raise DrillFailedError(_scratch_words(str(exc))) from exc
        scratch.start(self.request.start_timeout)

    def replay(self, recovery: RecoveryPlan) -> int:
        """Replay the planned binlogs into the scratch server; the number of files."""
        if not recovery.files:
            return 0
        progress = self.progress
        emit(progress, REPLAYING, 0, len(recovery.files))
        index = BinlogCatalog(self.catalog)
        directory = self.scratch.work / "binlogs"
        sources: list[Path | Callable[[], Path]] = [
            _fetcher(index, entry, directory, self.key) for entry in recovery.files
        ]
        stats = replay(
            self.scratch.conn, self.scratch.flavour, sources, workdir=self.scratch.work,
            start_position=recovery.start_position, stop_datetime=recovery.stop_at,
            on_file=lambda done, total: emit(progress, REPLAYING, done, total),
        )  # fmt: skip
        return stats.files

    def check(self) -> str | None:
        """CHECK TABLE and the table sums; the reason of a failure, None on a pass."""
        scratch, plan, tally = self.scratch, self.plan, self.tally
        conn, flavour, work = scratch.conn, scratch.flavour, scratch.work
        tables = checks.user_tables(conn, flavour, work)
        table_check = checks.check_tables(conn, flavour, work, tables)
        tally.checked = table_check.checked
        tally.skipped = len(table_check.unsupported)
        if table_check.unsupported:
            tally.notes.append(
                f"{len(table_check.unsupported)} tables' engines cannot be checked "
                f"(CHECK TABLE): {checks.problem_text(table_check.unsupported)}"
            )
        problems: list[str] = []
        if table_check.problems:
            problems.append(
                f"CHECK TABLE found {len(table_check.problems)} damaged tables: "
                f"{checks.problem_text(table_check.problems)}"
            )
        if plan.recovery is not None:
            tally.notes.append(
                f"table sums not compared: the data was replayed to {plan.target_text}, "
                "not left at the backup's point"
            )
        else:
            sums = checks.check_sums(conn, flavour, work, plan.meta,
                                     budget_seconds=self.request.sums_budget_seconds)  # fmt: skip
            tally.compared = sums.compared
            tally.skipped += sums.skipped
            if sums.note:
                tally.notes.append(sums.note)
            if sums.mismatches:
                problems.append(
                    "the restored data differs from the table sums recorded at backup time: "
                    + checks.problem_text(sums.mismatches)
                )
        if not problems:
            return None
        return str(DrillFailedError("; ".join(problems)))


def _storage_trouble(exc: BaseException) -> StorageError | None:
    """The storage failure behind `exc` (not a missing object: that is the backup's fault)."""
    current: BaseException | None = exc
    for _ in range(10):
        if current is None:
            break
        if isinstance(current, StorageError) and not isinstance(current, ObjectNotFoundError):
            return current
        current = current.__cause__ or current.__context__
    return None


# -- planning -----------------------------------------------------------------------------


def _plan(catalog: Catalog, request: DrillRequest, key: bytes | None) -> _Plan:
    """Metadata, chain and point-in-time plan; refusals before anything is touched."""
    try:
        meta = catalog.read_metadata(request.backup_id)
    except (BackupNotFoundError, CatalogError) as exc:
        raise DrillRefusedError(
            f"backup {request.backup_id} not found or incomplete: {exc}"
        ) from exc
    try:
        chain = resolve_chain(catalog, meta.backup_id) if meta.kind != "logical" else [meta]
    except ChainError as exc:
        return _Plan(meta, [meta], None, None, problem=str(DrillFailedError(str(exc))))
    _check_keys(chain, key)
    if request.point_in_time is None:
        return _Plan(meta, chain, None, None)
    if meta.kind == "logical":
        raise DrillRefusedError(
            f"backup {meta.backup_id} is logical: a point-in-time drill starts from a "
            "physical backup (drill without a point in time, or name a physical backup)"
        )
    target = _target(request.point_in_time)
    text = format_time(target) if target is not None else "latest"
    try:
        recovery = plan_recovery(catalog, target, backup_id=meta.backup_id)
    except RecoveryError as exc:
        problem = DrillFailedError(f"no point-in-time recovery to {text} from it: {exc}")
        return _Plan(meta, chain, None, text, problem=str(problem))
    return _Plan(meta, chain, recovery, text)


def _check_keys(chain: list[BackupMetadata], key: bytes | None) -> None:
    """Refuse a missing key, or one of another fingerprint (this unit's problem, not the backup's).

    Raises:
        DrillRefusedError: nothing is said about the backup.
    """
    from database_backup.stream import IntegrityError

    for item in chain:
        if item.encrypted and key is None:
            raise DrillRefusedError(
                f"backup {item.backup_id} is encrypted and this drill has no key: give the "
                "spec the encryption key"
            )
        try:
            check_key(item, key)
        except IntegrityError as exc:
            text = str(exc).replace(" and the current data was not touched", "")
            raise DrillRefusedError(text) from None


def _target(text: str) -> datetime | None:
    try:
        return parse_target(text)
    except ValueError as exc:
        raise DrillRefusedError(
            f"point in time {text!r} is not 'latest' or an ISO 8601 time"
        ) from exc


def _need(plan: _Plan) -> int:
    if plan.meta.kind == "logical":
        need = space.logical_need(plan.meta)
    else:
        need = space.physical_need(plan.chain)
    if plan.recovery is not None:
        need += space.binlog_need(plan.recovery.files)
    return need


def _live_datadir(live: LiveServer, program: ServerProgram) -> Path:
    """The live datadir: given, or the one the live server reports."""
    if live.datadir is not None:
        return live.datadir
    if program.flavour.datadir:
        return Path(program.flavour.datadir)
    raise DrillRefusedError(
        "the live server's datadir is unknown: give the spec a server section (datadir)"
    )


def _owner(datadir: Path) -> tuple[int, int]:
    info = os.stat(datadir)
    return info.st_uid, info.st_gid


# -- restoring ----------------------------------------------------------------------------


def _as_phase(progress: ProgressCallback | None, phase: str) -> ProgressCallback | None:
    if progress is None:
        return None

    def report(event: ProgressEvent) -> None:
        emit(progress, phase, event.bytes_done, event.bytes_estimated)

    return report


def _scratch_words(message: str) -> str:
    """A restore's message said for a drill (no live data was ever at stake)."""
    for tail in ("; the current data was not touched", " (the current data was not touched)"):
        message = message.replace(tail, "")
    return message


def _fetcher(
    index: BinlogCatalog, entry: BinlogEntry, directory: Path, key: bytes | None
) -> Callable[[], Path]:
    def fetch() -> Path:
        return download_binlog(index, entry, directory, key)

    return fetch


# -- checking -----------------------------------------------------------------------------


# -- the verdict --------------------------------------------------------------------------


def _store(catalog: Catalog, outcome: DrillOutcome, request: DrillRequest) -> bool:
    """Write the verdict beside the backup; False (with a note) when that failed."""
    document = outcome.verification.document(
        outcome.backup_id, job_id=request.job_id, unit=request.unit
    )
    try:
        catalog.write_verification(outcome.backup_id, document)
    except Exception as exc:  # the verdict stands; the provider still reports it
        logger.warning("could not store the drill's verdict: %s", exc)
        outcome.notes.append(f"the verdict could not be written to storage: {exc}")
        return False
    return True
