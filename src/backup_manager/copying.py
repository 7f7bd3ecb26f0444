"""Copy a backup between storage locations (a cross-region copy), outside the hook.

`plan` checks everything that can be checked at once (the backup exists, the locations
differ and answer with their credentials, an incremental's parent is already there) and
returns a spec; `launch` runs the copy as a job of `database_backup.jobs`, like every
other long job: a job directory under `STATE_DIR/jobs` with the spec in a 0600 file
(deleted at the end), a worker with a clean environment that holds the job's lock (a
transient systemd unit where systemd runs), the engine `backup_manager.copy_worker`, and a
hand-back (`/usr/bin/juju-exec ... update-status`). `collect` gives the leader the
outcome: from the local job on the unit that started the copy, else (after a leadership
change) from the copy's status object and `backup.json` in the destination storage
(`copy_status`), never from a pid.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from database_backup.catalog import BackupMetadata, Catalog, CatalogError, new_backup_id
from database_backup.jobs import (
    ERROR,
    SUCCESS,
    JobRecord,
    JobStore,
    LocalJob,
    dispatch_command,
    job_key,
    start_worker,
)
from database_backup.storage import StorageError

from . import copy_status, joblines
from .catalogs import Catalogs, format_time, utc_now
from .errors import ManagerError
from .history import Record
from .locations import Location

logger = logging.getLogger(__name__)

STATE_DIR = Path("/var/lib/backup-manager")
ENGINE = "backup_manager.copy_worker"
SCOPE = "copy"
KEEP_FINISHED = 20


def plan(
    catalogs: Catalogs,
    *,
    app: str,
    backup_id: str,
    source: Location,
    dest: Location,
    include_binlogs: bool,
    copy_id: str,
) -> dict[str, Any]:
    """Validate a copy and return its spec (credentials included: keep it in a 0600 file).

    Raises:
        ManagerError: same location, unknown backup, unreachable location, missing parent.
    """
    if source.name == dest.name:
        raise ManagerError(
            f"backup {backup_id} is already in location {dest.name!r}: copy it to another "
            f"location ({_others(catalogs, dest.name)})"
        )
    _, meta = catalogs.find(app, backup_id, source.name)
    catalogs.check(dest)
    existing = catalogs.complete(app, dest)
    parent_id = None
    if meta.parent_id is not None:
        parent_id = _copied(existing, source.name, meta.parent_id)
        if parent_id is None:
            raise ManagerError(
                f"backup {backup_id} is an incremental on top of {meta.parent_id}, which is "
                f"not in location {dest.name!r} yet: copy {meta.parent_id} first"
            )
    already = _copied(existing, source.name, backup_id)
    if already is not None:
        raise ManagerError(
            f"backup {backup_id} was already copied to location {dest.name!r} as {already}"
        )
    return {
        "copy-id": copy_id,
        "requested-at": format_time(utc_now()),
        "app": app,
        "cluster-id": catalogs.catalog(app, source).cluster_id,
        "backup-id": backup_id,
        "new-backup-id": new_backup_id(utc_now()),
        "new-parent-id": parent_id,
        "size": meta.stored_size,
        "include-binlogs": include_binlogs,
        "source": source.spec(),
        "dest": dest.spec(),
    }


def _others(catalogs: Catalogs, name: str) -> str:
    others = sorted(n for n in catalogs.locations if n != name)
    return "one of " + ", ".join(others) if others else "relate a second s3-integrator first"


def _copied(backups: list[BackupMetadata], location: str, backup_id: str) -> str | None:
    """The id of the copy of `location`:`backup_id` among `backups`, if any."""
    for backup in backups:
        origin = backup.extra.get("copied-from")
        if not isinstance(origin, dict):
            continue
        copied_from = cast("dict[str, object]", origin)
        if (copied_from.get("location"), copied_from.get("backup-id")) == (location, backup_id):
            return backup.backup_id
    return None


def _key(copy_id: str) -> str:
    """The copy's job directory name: its copy id (`copy-<time>-<hex>`), made safe."""
    return job_key(SCOPE, copy_id.removeprefix(f"{SCOPE}-"))


def job_store(state_dir: Path) -> JobStore:
    """The manager's job directories (copies)."""
    return JobStore(state_dir / "jobs")


def local_job(state_dir: Path, copy_id: str) -> LocalJob | None:
    """The copy's job on this unit, if this unit started it."""
    return job_store(state_dir).get(_key(copy_id))


def worker_ended(state_dir: Path, copy_id: str) -> bool:
    """Whether this unit's worker for the copy recorded its end (or never ran here)."""
    local = local_job(state_dir, copy_id)
    return local is None or local.finished_record() is not None


def launch(spec: dict[str, Any], state_dir: Path) -> dict[str, Any]:
    """Start the copy as a job (returns at once); return what the leader keeps of it.

    Runs in the hook of the `copy-backup` action: the unit and charm directory of the
    hand-back come from its environment (nothing of it reaches the worker).

    A worker that cannot be started leaves its job failed with the reason, which the
    next hook reports like any other copy's outcome.
    """
    dest: Mapping[str, Any] = spec.get("dest") or {}
    unit = start_job(
        state_dir,
        ManagerJob(
            key=_key(spec["copy-id"]),
            job_id=spec["copy-id"],
            kind="copy",
            engine=ENGINE,
            labels={"new-backup-id": spec.get("new-backup-id"), "location": dest.get("name")},
        ),
        spec,
    )
    return {
        "unit": unit,
        "cluster-id": spec.get("cluster-id"),
        "location": dest.get("name"),
        "backup-id": spec.get("new-backup-id"),
        "started-at": spec.get("requested-at") or format_time(utc_now()),
    }


@dataclasses.dataclass(frozen=True)
class ManagerJob:
    """A long job of the manager's own (a copy, a retention run): what `start_job` needs."""

    key: str  #: the job directory's name (`job_key(scope, id)`)
    job_id: str
    kind: str  #: also the engine's subcommand and the job's scope
    engine: str  #: the Python module the worker runs
    labels: Mapping[str, Any] = dataclasses.field(default_factory=dict[str, Any])


def start_job(state_dir: Path, job: ManagerJob, spec: Mapping[str, Any]) -> str:
    """Start one of the manager's jobs in a detached worker (returns at once).

    The spec (credentials inside) goes to a 0600 file; the worker hands back with
    `juju-exec ... update-status`, whose hook collects the outcome. A worker that cannot
    be started leaves its job failed with the reason, reported by the next hook.

    Returns:
        This unit's name (the job runs here).
    """
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(state_dir, 0o700)
    unit = os.environ.get("JUJU_UNIT_NAME", "")
    charm_dir = os.environ.get("JUJU_CHARM_DIR", "")
    notify = dispatch_command(unit, Path(charm_dir), "update-status") if unit else None
    record = JobRecord(
        key=job.key,
        job_id=job.job_id,
        scope=job.kind,
        kind=job.kind,
        command=(job.kind,),
        engine=job.engine,
        notify=notify,
        notify_cwd=charm_dir or None,
        # its worker writes the job's start and end lines to the manager's job log, as a
        # `copy` or `retention` job (`database_backup.joblog`)
        labels={**job.labels, "job-log": str(joblines.log_path())},
    )
    store = job_store(state_dir)
    local = store.create(record, {**spec, "unit": unit})
    try:
        start_worker(local, popen=subprocess.Popen, run=subprocess.run)
    except OSError as exc:  # recorded in the job: the next hook reports it
        logger.error("%s %s: the worker did not start: %s", job.kind, job.job_id, exc)
    store.prune(KEEP_FINISHED)
    return unit


def collect(
    state_dir: Path,
    copies: Mapping[str, Mapping[str, Any]],
    records: list[Record],
    catalogs: Catalogs,
) -> list[dict[str, Any]]:
    """Results of the copies that ended (running ones are left out).

    Args:
        state_dir: this unit's job directories.
        copies: copy id -> what `launch` returned, for the copies in flight.
        records: the history (for copies recorded before `launch` returned this).
        catalogs: access to the storage locations.
    """
    results: list[dict[str, Any]] = []
    for copy_id, info in copies.items():
        record = next((r for r in records if r.job_id == copy_id), Record(copy_id))
        target = {**_from_record(record), **{k: v for k, v in info.items() if v}}
        local = local_job(state_dir, copy_id)
        if local is not None:
            result = _local_result(local)
        else:
            result = _storage_result(copy_id, target, catalogs)
        if result is None:
            continue
        if result["status"] == ERROR:
            _discard(catalogs, target)
        results.append(result)
    return results


def _from_record(record: Record) -> dict[str, Any]:
    return {
        "app": record.app,
        "location": record.location,
        "backup-id": record.backup_id,
        "started-at": record.requested_at,
    }


def _local_result(local: LocalJob) -> dict[str, Any] | None:
    """The copy's result from its job on this unit; None while it runs."""
    if local.is_dead():
        logger.error("copy %s: its worker died", local.record.job_id)
        local.mark_dead("run copy-backup again")
    outcome = local.outcome()
    if not outcome.finished:
        return None
    result: dict[str, Any] = {
        "copy-id": local.record.job_id,
        "status": outcome.status,
        "message": outcome.message,
        "finished-at": outcome.finished_at or format_time(utc_now()),
    }
    if outcome.status == SUCCESS and outcome.result is not None:
        result["size"] = outcome.result.get("size")
    return result


def _catalog(catalogs: Catalogs, target: Mapping[str, Any]) -> tuple[Location, Catalog] | None:
    location = catalogs.locations.get(str(target.get("location") or ""))
    if location is None:
        return None
    cluster = target.get("cluster-id") or catalogs.catalog(str(target.get("app")), location)
    cluster_id = cluster if isinstance(cluster, str) else cluster.cluster_id
    return location, Catalog(catalogs.storage(location), cluster_id)


def _storage_result(
    copy_id: str, target: Mapping[str, Any], catalogs: Catalogs
) -> dict[str, Any] | None:
    """The result of a copy another unit started, from the destination storage."""
    found = _catalog(catalogs, target)
    if found is None:
        age = copy_status.age(target.get("started-at"), utc_now())
        if age is not None and age < copy_status.NO_TRACE_AFTER:
            return None  # the location may come back (an s3 relation being set up)
        return {
            "copy-id": copy_id,
            "status": ERROR,
            "finished-at": format_time(utc_now()),
            "message": (
                f"the copy's destination location {target.get('location')!r} is no longer "
                "configured, so its outcome is unknown: relate it again to check, or run "
                "copy-backup again"
            ),
        }
    location, catalog = found
    backup_id = str(target.get("backup-id") or "")
    try:
        document = copy_status.read(catalog, backup_id)
        complete = _complete(catalog, backup_id)
    except (StorageError, CatalogError, ValueError) as exc:
        logger.warning("copy %s: cannot read its status in %s: %s", copy_id, location.name, exc)
        return None  # the next hook tries again
    return copy_status.judge(
        copy_id,
        document,
        complete=complete,
        location=location.name,
        started_at=str(target.get("started-at") or ""),
    )


def _complete(catalog: Catalog, backup_id: str) -> bool:
    try:
        return catalog.read_metadata(backup_id).is_complete
    except CatalogError:
        return False


def _discard(catalogs: Catalogs, target: Mapping[str, Any]) -> None:
    """Delete what a failed copy left in the destination (unless it is complete)."""
    found = _catalog(catalogs, target)
    backup_id = str(target.get("backup-id") or "")
    if found is None or not backup_id:
        return
    location, catalog = found
    try:
        if not _complete(catalog, backup_id):
            catalog.storage.delete_prefix(catalog.backup_prefix(backup_id))
    except (StorageError, CatalogError, ValueError) as exc:
        logger.warning("could not delete the failed copy %s in %s: %s", backup_id, location, exc)
