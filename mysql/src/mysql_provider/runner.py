"""Jobs on this unit: start them as detached workers, publish their progress and results.

The charm calls `start` from the library's `job_requested` event and `sync` from the
`job-finished` event (dispatched by the worker through `juju-exec`) and from
`update-status` (the safety net: results nobody dispatched, progress, dead workers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import ops

from database_backup.catalog import new_backup_id
from database_backup.contract import EngineResult, normalise_time
from database_backup.interface import (
    DatabaseBackupProvider,
    DataValidationError,
    JobRequest,
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
    Outcome,
    cancel,
    job_key,
    read_json,
    start_worker,
)

from . import drills, specs
from .workload import Server

logger = logging.getLogger(__name__)

NOT_READY = (
    "the database server on {unit} is not ready ({reason}); request the job again once "
    "the unit is active"
)


class JobRunner:
    """Start, follow and report the jobs assigned to this unit."""

    def __init__(
        self,
        charm: ops.CharmBase,
        provider: DatabaseBackupProvider,
        server: Server,
        *,
        notify: Callable[[str], list[str] | None],
        python_path: list[str] | None = None,
    ) -> None:
        self._charm = charm
        self._provider = provider
        self._server = server
        self._notify = notify
        self._python_path = python_path
        self.store = JobStore(server.state_dir / "jobs")

    @property
    def unit(self) -> str:
        """This unit's name."""
        return self._charm.unit.name

    # -- questions ----------------------------------------------------------------------

    def local_work(self) -> list[Work]:
        """Work of this unit's jobs that have not finished (whatever the relations say)."""
        kinds = {kind.value: kind for kind in WorkKind}
        return [
            Work(kinds[job.record.kind], job.record.job_id)
            for job in self.store.running()
            if job.record.kind in kinds
        ]

    def live_server_jobs(self) -> list[LocalJob]:
        """Running jobs that use the live server (every kind but a drill's scratch server)."""
        return [job for job in self.store.running() if job.record.kind != WorkKind.DRILL.value]

    def restore_running(self) -> LocalJob | None:
        """The restore running on this unit, if any."""
        for job in self.store.running():
            if job.record.kind == WorkKind.RESTORE.value:
                return job
        return None

    # -- starting -----------------------------------------------------------------------

    def start(
        self,
        relation: ops.Relation,
        job: JobRequest,
        *,
        password: str | None,
        not_ready: str,
        drill: specs.DrillPlace | None = None,
        table_sums_budget: int | None = None,
    ) -> JobStatus:
        """Start `job` unless the lock policy or the unit refuses; return its first status.

        A restore first stops the drills running on this unit (a drill never delays a
        real restore), once the restore itself is known to be startable.
        """
        running = self._provider.running_work() + self.local_work()
        decision = may_start(running, work_of(job))
        if not decision.allowed:
            return self.refusal(job, decision.reason)
        if not_ready or password is None:
            reason = not_ready or "the backup user has no password yet"
            return self.refusal(job, NOT_READY.format(unit=self.unit, reason=reason))
        key = job_key(str(relation.id), job.job_id)
        existing = self.store.get(key)
        if existing is not None:
            return self.status_of(existing)
        try:
            credentials = self._provider.credentials_for(job)
            key_bytes = self._provider.encryption_key_for(job)
            engine = specs.engine_job(
                job,
                cluster_id=self.cluster_id(relation),
                new_backup_id=new_backup_id(datetime.now(timezone.utc)),
                credentials=(credentials.access_key, credentials.secret_key),
                encryption_key=key_bytes,
                backup_connection=self._server.backup_connection(password),
                admin_connection=self._server.admin_connection(),
                server=self._server.server_section(),
                workdir=str(self._server.state_dir / "work"),
                drill=drill,
                table_sums_budget=table_sums_budget,
            )
        except (SecretUnavailableError, specs.JobSpecError) as exc:
            return self.refusal(job, str(exc))
        if job.job_type is JobType.RESTORE:
            self._cancel_drills(job)
        record = JobRecord(
            key=key,
            job_id=job.job_id,
            scope=str(relation.id),
            kind=engine.kind.value,
            command=engine.command,
            notify=tuple(self._notify(self.unit) or ()) or None,
            notify_cwd=str(self._charm.charm_dir),
            labels={
                "request": job.to_dict(),
                "backup-id": engine.backup_id,
                "cluster-id": engine.cluster_id,
                "job-log": str(self._server.job_log),
            },
        )
        local = self.store.create(record, engine.spec)
        try:
            pid = start_worker(local, python_path=self._python_path)  # returns at once
        except OSError:
            logger.exception("job %s: the worker did not start", job.job_id)
            return self.status_of(local)
        logger.info("job %s (%s) started: worker pid %d", job.job_id, engine.kind.value, pid)
        return self.status_of(local)

    def _cancel_drills(self, restore: JobRequest) -> None:
        """Stop this unit's drills for `restore` and publish them as cancelled.

        SIGTERM goes to each drill's worker (the jobs store's stop path); the engine
        removes its scratch server on its own. The drill is recorded as ended now, so the
        restore need not wait for that clean-up (the scratch server never touches the
        live server's files).
        """
        message = drills.cancelled_message(restore.job_id)
        for local in self.store.running():
            if local.record.kind != WorkKind.DRILL.value:
                continue
            stopping = cancel(local)
            local.finish(JobState.ERROR.value, message, cancelled_by=restore.job_id)
            logger.warning(
                "job %s (drill) cancelled for restore %s%s",
                local.record.job_id,
                restore.job_id,
                "" if stopping else " (its worker was not running)",
            )
            relation = self._relation(local)
            if relation is not None:
                self.publish(relation, self.status_of(local))

    def cluster_id(self, relation: ops.Relation) -> str:
        """The requirer's `cluster-id`, else `<model-uuid>/<app>`."""
        given = self._provider.cluster_id(relation)
        return given or f"{self._charm.model.uuid}/{self._charm.app.name}"

    # -- reporting ----------------------------------------------------------------------

    def sync(self) -> list[LocalJob]:
        """Publish every local job's current status; fail dead workers.

        Returns the jobs whose published status changed to success or error.
        """
        newly_finished: list[LocalJob] = []
        for local in self.store.jobs():
            if local.is_dead():
                logger.error("job %s: its worker died", local.record.job_id)
                local.mark_dead(self._recover_if_restore(local))
            relation = self._relation(local)
            if relation is None:
                continue
            status = self.status_of(local)
            previous = self._provider.published(relation).get(local.record.job_id)
            if previous == status:
                continue
            if status.finished and (previous is None or not previous.finished):
                newly_finished.append(local)
            self.publish(relation, status)
        self.store.prune()
        return newly_finished

    def _recover_if_restore(self, dead: LocalJob) -> str:
        """Start the engine's `recover` after a restore whose worker died; say so.

        What the engine's state says decides (its `data-changed`): a logical restore sets
        it False before applying and True once it applies statements, which nothing can
        undo; a physical restore or PITR leaves it unset, and its journal beside the
        datadir lets `recover` (same spec) put the previous data back, as a local job that
        holds the restore lock while it runs.
        """
        if dead.record.kind != WorkKind.RESTORE.value or dead.record.scope == "local":
            return ""
        changed = dead.engine_state().data_changed
        if changed is True:
            return (
                "it was applying the backup's statements: the data was changed and cannot "
                "be put back automatically; restore a backup again"
            )
        if changed is False:
            return "no data had been changed"
        spec = read_json(dead.spec_path)
        if spec is None:
            logger.error("job %s: no spec left to recover the restore with", dead.record.job_id)
            return "the previous data could not be put back automatically: run a restore"
        record = JobRecord(
            key=f"{dead.record.key}-recover",
            job_id=f"{dead.record.job_id}-recover",
            scope="local",
            kind=WorkKind.RESTORE.value,
            command=("recover",),
            notify=dead.record.notify,
            notify_cwd=dead.record.notify_cwd,
            labels={
                "request": dead.record.labels["request"],
                "recovers": dead.record.job_id,
                "job-log": str(self._server.job_log),
            },
        )
        if self.store.get(record.key) is None:
            try:
                start_worker(self.store.create(record, spec), python_path=self._python_path)
            except OSError:
                logger.exception("job %s: could not start the recovery", dead.record.job_id)
                return "the previous data could not be put back automatically: run a restore"
        logger.warning("job %s: recovering the interrupted restore", dead.record.job_id)
        return "the previous data is being put back (see show-jobs)"

    def publish(self, relation: ops.Relation, status: JobStatus) -> None:
        """Publish a status; one the schema refuses is replaced by an error that says so."""
        try:
            self._provider.publish_status(relation, status)
        except DataValidationError as exc:
            logger.error("job %s: status refused by the schema: %s", status.job_id, exc)
            fallback = JobStatus(
                status.job_id,
                JobState.ERROR,
                request=status.request,
                message=f"the job's status could not be published: {exc}"[:1900],
                unit=self.unit,
            )
            self._provider.publish_status(relation, fallback)

    def status_of(self, local: LocalJob) -> JobStatus:
        """The wire status of a local job, from its record and the engine's state."""
        labels = local.record.labels
        job = JobRequest.from_dict(labels["request"])
        outcome = local.outcome()
        state = JobState(outcome.status)
        fields: dict[str, Any] = {
            "unit": self.unit,
            "phase": (outcome.phase or "starting")[:64],
            "started_at": _rfc3339(outcome.started_at) or _rfc3339(local.record.created_at),
            "bytes_done": outcome.bytes_done,
            "bytes_estimated": outcome.bytes_estimated if outcome.bytes_done is not None else None,
            "message": outcome.message,
        }
        if outcome.finished:
            fields["finished_at"] = _rfc3339(outcome.finished_at)
        if job.is_drill:
            state, drill_fields = drills.result_fields(job, state, local.state())
            fields.update(drill_fields)
        elif job.job_type is JobType.BACKUP:
            fields.update(backup_id=labels.get("backup-id"), backup_kind=job.kind.value)
            fields["parent_backup_id"] = job.parent_backup_id
            if state is JobState.SUCCESS:
                fields.update(_backup_result(outcome, job, labels))
        else:
            fields.update(recovered_from_backup=labels.get("backup-id"))
            fields["point_in_time"] = job.point_in_time
            if state is JobState.SUCCESS:
                fields.update(_restore_result(outcome))
        return JobStatus.for_request(job, state, **fields)

    def _relation(self, local: LocalJob) -> ops.Relation | None:
        for relation in self._provider.relations:
            if str(relation.id) != local.record.scope:
                continue
            requested = {job.job_id for job in self._provider.requests(relation).jobs}
            return relation if local.record.job_id in requested else None
        return None

    def refusal(self, job: JobRequest, message: str) -> JobStatus:
        """The error status of a job this unit does not run, saying why."""
        return JobStatus.for_request(job, JobState.ERROR, message=message, unit=self.unit)


def _rfc3339(text: str | None) -> str | None:
    return normalise_time(text)


def _backup_result(outcome: Outcome, job: JobRequest, labels: Mapping[str, Any]) -> dict[str, Any]:
    result = outcome.engine_result()
    backup_id = result.backup_id or labels.get("backup-id")
    fields: dict[str, Any] = {
        "backup_id": backup_id,
        "message": "backup complete",
        "phase": "done",
        "artefact_path": specs.artefact_path(job, str(labels.get("cluster-id")), str(backup_id)),
        "size_bytes": result.stored_size,
        "sha256": result.sha256,
        "compression_algorithm": result.compression,
        "encrypted": result.encrypted,
        **_server_fields(result),
    }
    return {name: value for name, value in fields.items() if value is not None}


def _restore_result(outcome: Outcome) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "message": "restore complete",
        "phase": "done",
        **_server_fields(outcome.engine_result()),
    }
    return {name: value for name, value in fields.items() if value is not None}


def _server_fields(result: EngineResult) -> dict[str, Any]:
    return {
        "flavour": result.flavour,
        "server_version": result.server_version,
        "binlog_file": result.binlog_file,
        "binlog_position": result.binlog_position,
        "gtid_set": result.gtid_set,
    }
