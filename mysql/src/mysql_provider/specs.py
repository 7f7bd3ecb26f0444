"""From a job request to the engine's spec file and command line (pure functions).

The spec holds the secrets (storage keys, database password, encryption key) and goes to
a 0600 file; the command line holds none. Fields the engine's CLI may not know yet are
passed through as options, so an engine that lacks them fails the job with a clear
"unrecognized arguments" error instead of silently running something else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from database_backup.contract import (
    JSON,
    ConnectionSection,
    EngineSpec,
    ServerSection,
    SpecError,
    StorageSection,
)
from database_backup.interface import (
    BackupKind,
    JobRequest,
    JobType,
    StorageConfig,
    WorkKind,
    work_of,
)

DEFAULT_COMPRESSION_LEVEL = 3


class JobSpecError(Exception):
    """The job cannot be turned into an engine command; the message says why."""


@dataclasses.dataclass(frozen=True)
class EngineJob:
    """What the worker runs: the CLI's arguments and spec, and what the job is."""

    command: tuple[str, ...]
    engine_spec: EngineSpec = dataclasses.field(repr=False)
    kind: WorkKind
    backup_id: str | None
    cluster_id: str

    @property
    def spec(self) -> dict[str, Any]:
        """The spec document for the job's 0600 spec file (secrets included)."""
        return self.engine_spec.to_json()


@dataclasses.dataclass(frozen=True)
class DrillPlace:
    """Where this unit's restore drills build their scratch servers (config `drill-*`).

    `unit` names this unit in the verdict the engine stores beside the backup.
    """

    scratch_root: str
    min_free_bytes: int | None = None
    unit: str | None = None


__all__ = [
    "DrillPlace",
    "EngineJob",
    "JobSpecError",
    "artefact_path",
    "backup_command",
    "drill_command",
    "engine_job",
    "restore_command",
    "restore_source",
    "shipping_spec",
    "storage",
]


def storage(config: StorageConfig, access_key: str, secret_key: str) -> StorageSection:
    """The spec's storage section for a storage config and its credentials."""
    return StorageSection(
        bucket=config.bucket,
        access_key=access_key,
        secret_key=secret_key,
        endpoint=config.endpoint,
        region=config.region,
        path=config.path or "",
        uri_style=config.uri_style or "path",
        tls_ca_chain=config.tls_ca_chain,
    )


def shipping_spec(
    *,
    cluster_id: str,
    storage_config: StorageConfig,
    credentials: tuple[str, str],
    encryption_key: bytes | None,
    backup_connection: Mapping[str, JSON],
    workdir: str,
) -> EngineSpec:
    """The spec of the binlog shipping timer's `ship-binlogs` runs (the backup user's).

    Raises:
        JobSpecError: this unit cannot describe the shipping to the engine.
    """
    try:
        return EngineSpec(
            cluster_id=cluster_id,
            storage=storage(storage_config, *credentials),
            connection=ConnectionSection.from_json(backup_connection),
            encryption_key=encryption_key,
            workdir=Path(workdir),
        )
    except SpecError as exc:
        raise JobSpecError(f"this unit cannot describe log shipping to the engine: {exc}") from exc


def restore_source(job: JobRequest, default_cluster: str) -> tuple[str, str | None]:
    """(cluster id, backup id) of the backup a restore job names.

    `backup-id` wins for the id; `artefact-path` (`[<path>/]<cluster>/backups/<id>`) gives
    the cluster the backup belongs to. A backup of another cluster is cloned: the engine
    reads it (and, for PITR, that cluster's binlogs) with `--source-cluster`, while the
    spec's cluster id, where it writes, stays this application's.
    A point-in-time recovery may name no backup (the engine picks the newest suitable one).

    Raises:
        JobSpecError: a plain restore that does not say which backup.
    """
    backup_id = job.backup_id
    cluster = default_cluster
    artefact = (job.artefact_path or "").strip("/")
    prefix = (job.storage.path or "").strip("/")
    if prefix and artefact.startswith(prefix + "/"):
        artefact = artefact[len(prefix) + 1 :]
    head, separator, tail = artefact.rpartition("/backups/")
    if separator and head and tail and "/" not in tail:
        cluster = head
        backup_id = backup_id or tail
    if not backup_id and not job.point_in_time:
        raise JobSpecError(
            f"the restore names no backup: give backup-id, or an artefact-path of the form "
            f"'<path>/<cluster>/backups/<backup-id>' (got {job.artefact_path!r})"
        )
    return cluster, backup_id


def artefact_path(job: JobRequest, cluster_id: str, backup_id: str) -> str:
    """Where a backup's artefacts are in the bucket (the storage path included)."""
    prefix = (job.storage.path or "").strip("/")
    key = f"{cluster_id}/backups/{backup_id}"
    return f"{prefix}/{key}" if prefix else key


def _selection(job: JobRequest) -> list[str]:
    command: list[str] = []
    if job.databases:
        command += ["--databases", ",".join(job.databases)]
    if job.tables:
        command += ["--tables", ",".join(job.tables)]
    return command


def backup_command(
    job: JobRequest, backup_id: str, table_sums_budget: int | None = None
) -> list[str]:
    """The CLI arguments of a backup job (`backup --kind ...`, see docs/architecture.md).

    `table_sums_budget` (config `table-sums-budget`; 0 measures none) goes on as
    `--table-sums-budget`; None leaves the engine's default.
    """
    command = ["backup", "--backup-id", backup_id, "--job-id", job.job_id]
    kind = job.kind
    if kind is not BackupKind.FULL:
        command += ["--kind", kind.value]
    if kind is BackupKind.INCREMENTAL and job.parent_backup_id:
        command += ["--parent-id", job.parent_backup_id]  # else: the newest physical backup
    command += _selection(job)
    if job.description:
        command += ["--description", job.description]
    if job.compression:
        command += ["--compression-level", str(job.compression_level or DEFAULT_COMPRESSION_LEVEL)]
    else:
        command.append("--no-compression")
    if table_sums_budget is not None:
        command += ["--table-sums-budget", str(table_sums_budget)]
    return command


def restore_command(job: JobRequest, backup_id: str | None) -> list[str]:
    """The CLI arguments of a restore job: `pitr` with a point in time, else `restore`."""
    if job.point_in_time:
        command = ["pitr", "--target", job.point_in_time]
        return command + (["--backup-id", backup_id] if backup_id else [])
    if backup_id is None:
        raise JobSpecError("the restore names no backup")
    return ["restore", "--backup-id", backup_id, *_selection(job)]


def drill_command(job: JobRequest, place: DrillPlace) -> list[str]:
    """The CLI arguments of a restore drill: `verify` the backup in a scratch server."""
    if not job.verify_backup_id:
        raise JobSpecError("a drill names the backup to verify in verify-backup-id")
    command = ["verify", "--backup-id", job.verify_backup_id, "--job-id", job.job_id]
    if place.unit:
        command += ["--unit", place.unit]
    if job.point_in_time:
        command += ["--point-in-time", job.point_in_time]
    command += ["--scratch-root", place.scratch_root]
    if place.min_free_bytes is not None:
        command += ["--min-free-bytes", str(place.min_free_bytes)]
    return command


def engine_job(
    job: JobRequest,
    *,
    cluster_id: str,
    new_backup_id: str,
    credentials: tuple[str, str],
    encryption_key: bytes | None,
    backup_connection: Mapping[str, JSON],
    admin_connection: Mapping[str, JSON],
    server: Mapping[str, JSON],
    workdir: str,
    drill: DrillPlace | None = None,
    table_sums_budget: int | None = None,
) -> EngineJob:
    """Everything the worker needs to run `job`.

    Backups connect as the least-privilege backup user; restores as the administrator
    (they stop, replace and restart the server, and may replay logs). A drill connects as
    the backup user too, only to ask the live server what it runs (flavour, program): its
    scratch server has a throwaway account of its own, and `server` only tells the engine
    where not to go. `table_sums_budget` bounds a backup's table sums (see
    `backup_command`).

    Raises:
        JobSpecError: the job is incomplete.
    """
    connection: Mapping[str, JSON]
    if job.is_drill:
        if drill is None:
            raise JobSpecError("this unit has no drill-directory: set it to run drills")
        cluster, backup_id = cluster_id, job.verify_backup_id
        command = drill_command(job, drill)
        connection = backup_connection
    elif job.job_type is JobType.RESTORE:
        cluster, backup_id = restore_source(job, cluster_id)
        command = restore_command(job, backup_id)
        if cluster != cluster_id:  # a clone: read there, write our own timeline here
            command += ["--source-cluster", cluster]
        connection = admin_connection
    else:
        cluster, backup_id = cluster_id, new_backup_id
        command = backup_command(job, backup_id, table_sums_budget)
        connection = backup_connection
    try:
        spec = EngineSpec(
            cluster_id=cluster_id,
            storage=storage(job.storage, *credentials),
            connection=ConnectionSection.from_json(connection),
            server=ServerSection.from_json(dict(server)),
            encryption_key=encryption_key,
            workdir=Path(workdir),
        )
    except SpecError as exc:
        raise JobSpecError(f"this unit cannot describe the job to the engine: {exc}") from exc
    return EngineJob(
        command=tuple(command),
        engine_spec=spec,
        kind=work_of(job).kind,
        backup_id=backup_id,
        cluster_id=cluster,
    )
