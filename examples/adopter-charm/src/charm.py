#!/usr/bin/env python3
"""An example MySQL charm serving `database_backup` jobs with the `database-backup` package.

docs/how-to/adopt-the-provider-library.md quotes this file; tests/adopter/ runs its tests
against the installed package in a fresh virtualenv. Everything about installing and
running the database itself is left out: only the backup wiring is here.
"""

from __future__ import annotations

import datetime
import logging
from pathlib import Path
from typing import Any, TypedDict

import ops

from database_backup.catalog import new_backup_id
from database_backup.contract import (
    ConnectionSection,
    EngineSpec,
    ServerSection,
    StorageSection,
    normalise_time,
)
from database_backup.interface import (
    BackupKind,
    DatabaseBackupProvider,
    JobRequest,
    JobRequestedEvent,
    JobState,
    JobStatus,
    JobType,
    SecretUnavailableError,
    Work,
    WorkKind,
    may_start,
    work_of,
)
from database_backup.jobs import (
    JobRecord,
    JobStore,
    LocalJob,
    dispatch_command,
    job_key,
    start_worker,
)

logger = logging.getLogger(__name__)


class DatabaseSections(TypedDict):
    """The parts of the engine's spec only your charm knows: how to reach your server."""

    connection: ConnectionSection
    server: ServerSection
    workdir: Path


class JobFinishedEvent(ops.EventBase):
    """A job's worker ended: `juju-exec` dispatched `job-finished` (see `dispatch_command`)."""


class AdopterEvents(ops.CharmEvents):
    """The charm's events, with the worker's hand-back."""

    job_finished = ops.EventSource(JobFinishedEvent)


def engine_command(job: JobRequest, backup_id: str) -> tuple[str, ...]:
    """The engine's arguments for a job (`database-backup <command>`; no secret in them).

    Raises:
        ValueError: a restore that says neither which backup nor which point in time.
    """
    selection: list[str] = []
    if job.databases:
        selection += ["--databases", ",".join(job.databases)]
    if job.tables:
        selection += ["--tables", ",".join(job.tables)]
    if job.job_type is JobType.RESTORE:
        # `backup-id`, else the last part of `artefact-path` (`.../backups/<backup-id>`)
        source = job.backup_id or (job.artefact_path or "").rstrip("/").rpartition("/")[2]
        if job.point_in_time:
            start = ("--backup-id", source) if source else ()
            return ("pitr", "--target", job.point_in_time, *start)
        if not source:
            raise ValueError("the restore names no backup: give backup-id or artefact-path")
        return ("restore", "--backup-id", source, *selection)
    command = ["backup", "--backup-id", backup_id, "--job-id", job.job_id]
    command += ["--kind", job.kind.value]
    if job.kind is BackupKind.INCREMENTAL and job.parent_backup_id:
        command += ["--parent-id", job.parent_backup_id]
    if job.compression:
        command += ["--compression-level", str(job.compression_level or 3)]
    else:
        command.append("--no-compression")
    return (*command, *selection)


class AdopterCharm(ops.CharmBase):
    """A MySQL charm's backup wiring (the database itself is left out)."""

    on = AdopterEvents()  # pyright: ignore[reportAssignmentType]

    #: Where the jobs live (their directories, 0600 spec files, state and logs). A class
    #: attribute, read when a job starts, so tests point it at a temporary directory.
    state_dir = Path("/var/lib/adopter-mysql")

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.backups = DatabaseBackupProvider(
            self, "database-backup", peer_relation_name="database-peers"
        )
        framework.observe(self.backups.on.job_requested, self._on_job_requested)
        framework.observe(self.on.job_finished, self._publish_outcomes)
        framework.observe(self.on.update_status, self._publish_outcomes)

    @property
    def store(self) -> JobStore:
        """This unit's jobs."""
        return JobStore(self.state_dir / "jobs")

    def _on_job_requested(self, event: JobRequestedEvent) -> None:
        job = event.job
        running = self.backups.running_work() + self._local_work()
        decision = may_start(running, work_of(job))
        if not decision.allowed:
            status = JobStatus.for_request(job, JobState.ERROR, message=decision.reason)
        else:
            try:
                self._start(event.relation, job)
            except (SecretUnavailableError, ValueError) as exc:
                # a secret not granted or unusable, a restore naming no backup: say why
                status = JobStatus.for_request(job, JobState.ERROR, message=str(exc))
            else:
                status = JobStatus.for_request(job, JobState.RUNNING, phase="starting")
        self.backups.publish_status(event.relation, status)

    def _local_work(self) -> list[Work]:
        """Jobs still running on this unit, whatever the relations say now."""
        kinds = {kind.value: kind for kind in WorkKind}
        return [
            Work(kinds[local.record.kind], local.record.job_id)
            for local in self.store.running()
            if local.record.kind in kinds
        ]

    def _start(self, relation: ops.Relation, job: JobRequest) -> None:
        """Start `job` in a detached worker; return at once."""
        key = job_key(str(relation.id), job.job_id)
        if self.store.get(key) is not None:
            return  # started by an earlier run of this hook: never twice
        credentials = self.backups.credentials_for(job)  # secret, or a draft's inline keys
        encryption_key = self.backups.encryption_key_for(job)
        # The manager publishes `cluster-id`; a draft-style requirer does not.
        cluster_id = self.backups.cluster_id(relation) or f"{self.model.uuid}/{self.app.name}"
        backup_id = new_backup_id(datetime.datetime.now(datetime.timezone.utc))
        storage = StorageSection(
            bucket=job.storage.bucket,
            access_key=credentials.access_key,
            secret_key=credentials.secret_key,
            endpoint=job.storage.endpoint,
            region=job.storage.region,
            path=job.storage.path or "",
            uri_style=job.storage.uri_style or "path",
            tls_ca_chain=job.storage.tls_ca_chain,
        )
        spec = EngineSpec(  # the engine's spec, secrets included: written 0600
            cluster_id=cluster_id,
            storage=storage,
            encryption_key=encryption_key,
            **self._database_sections(job),
        )
        record = JobRecord(
            key=key,
            job_id=job.job_id,
            scope=str(relation.id),
            kind=work_of(job).kind.value,
            command=engine_command(job, backup_id),
            notify=dispatch_command(self.unit.name, self.charm_dir),  # None without Juju
            notify_cwd=str(self.charm_dir),
            labels={"backup-id": backup_id if job.job_type is JobType.BACKUP else None},
        )
        start_worker(self.store.create(record, spec.to_json()))  # detached; returns at once

    def _database_sections(self, job: JobRequest) -> DatabaseSections:
        """How the engine reaches and controls your server: your charm knows this.

        Backups need an account that reads and copies; restores stop, replace and restart
        the server and replay binlogs, so they need an administrator (see the guide's
        "Accounts"). Here both use root over the socket (socket authentication).
        """
        return {
            "connection": ConnectionSection(socket="/run/mysqld/mysqld.sock", user="root"),
            "server": ServerSection(kind="systemd", unit="mysql", datadir="/var/lib/mysql"),
            "workdir": self.state_dir / "work",
        }

    def _publish_outcomes(self, _: ops.EventBase) -> None:
        """Publish each local job's progress or result (job-finished and update-status)."""
        for local in self.store.jobs():
            if local.is_dead():  # no result and no live process: the worker died
                local.mark_dead()
            relation = self.model.get_relation("database-backup", int(local.record.scope))
            if relation is None:
                continue
            requests = {job.job_id: job for job in self.backups.requests(relation).jobs}
            job = requests.get(local.record.job_id)
            if job is None:
                continue  # the requirer has forgotten it
            status = status_of(job, local)
            if self.backups.published(relation).get(job.job_id) != status:
                self.backups.publish_status(relation, status)
        self.store.prune()


def status_of(job: JobRequest, local: LocalJob) -> JobStatus:
    """The wire status of a local job, from the engine's state file."""
    outcome = local.outcome()
    fields: dict[str, Any] = {
        "phase": (outcome.phase or "starting")[:64],
        "message": outcome.message,
        "started_at": _utc(outcome.started_at),
        "finished_at": _utc(outcome.finished_at) if outcome.finished else None,
        "bytes_done": outcome.bytes_done,
        "bytes_estimated": outcome.bytes_estimated if outcome.bytes_done is not None else None,
    }
    result = outcome.engine_result()  # typed: a value the engine did not report is None
    if job.job_type is JobType.BACKUP:
        fields["backup_id"] = result.backup_id or local.record.labels.get("backup-id")
        fields["backup_kind"] = job.kind.value
        fields["size_bytes"] = result.stored_size
    else:
        fields["recovered_from_backup"] = job.backup_id
    return JobStatus.for_request(job, JobState(outcome.status), **fields)


def _utc(text: str | None) -> str | None:
    """RFC 3339 with `Z`, as the interface wants (older engines wrote `+00:00`)."""
    return normalise_time(text)


if __name__ == "__main__":  # pragma: nocover
    ops.main(AdopterCharm)
