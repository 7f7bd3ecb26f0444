"""Requirer side of `database_backup`: the backup manager asks for jobs and reads results."""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import ops

from database_backup.timefmt import format_id_stamp

from . import codec, schemas
from .errors import DataValidationError, NotLeaderError, TooManyJobsError
from .events import DatabaseBackupRequirerEvents
from .model import (
    BackupKind,
    JobRequest,
    JobState,
    JobStatus,
    JobType,
    StorageConfig,
    format_time,
    utc_now,
)

logger = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "database-backup"
REQUEST_ERROR_KEY = "request-error"
LOG_SHIPPING_KEY = "log-shipping"
CLUSTER_ID_KEY = "cluster-id"


@dataclasses.dataclass(frozen=True)
class TrackedJob:
    """A job the requirer asked for, with the provider's latest status (None = not yet)."""

    request: JobRequest
    status: JobStatus | None

    @property
    def finished(self) -> bool:
        """True once a provider unit reported success or error."""
        return self.status is not None and self.status.finished


def new_job_id(job_type: JobType) -> str:
    """A readable, unique job id: `backup-20261122T071500Z-1a2b3c`."""
    stamp = format_id_stamp(utc_now())
    return f"{job_type.value}-{stamp}-{secrets.token_hex(3)}"


def merge_statuses(per_unit: Iterable[Iterable[JobStatus]]) -> dict[str, JobStatus]:
    """Merge statuses reported by several units; a finished report beats a running one."""
    merged: dict[str, JobStatus] = {}
    for statuses in per_unit:
        for status in statuses:
            known = merged.get(status.job_id)
            if known is None or (status.finished and not known.finished):
                merged[status.job_id] = status
    return merged


class DatabaseBackupRequirer(ops.Object):
    """Publish backup and restore requests and follow their statuses.

    Only the leader writes requests; the events fire on the leader only, since the
    leader is the unit that keeps the job history. Every getter works on any unit that
    can read the data (the requests themselves: leader only).
    """

    on = DatabaseBackupRequirerEvents()
    _stored = ops.StoredState()

    def __init__(
        self,
        charm: ops.CharmBase,
        relation_name: str = DEFAULT_ENDPOINT,
        *,
        max_finished: int = 10,
        max_in_flight: int = 20,
    ) -> None:
        super().__init__(charm, f"database-backup-requirer-{relation_name}")
        self._charm = charm
        self._relation_name = relation_name
        self._max_finished = max_finished
        self._max_in_flight = max_in_flight
        self._stored.set_default(seen={})
        events = charm.on[relation_name]
        self.framework.observe(events.relation_changed, self._on_relation_changed)
        self.framework.observe(events.relation_departed, self._on_relation_changed)

    # ---------------------------------------------------------------- getters

    @property
    def relations(self) -> list[ops.Relation]:
        """Every relation on the endpoint (one per related database application)."""
        return list(self._charm.model.relations[self._relation_name])

    def requests(self, relation: ops.Relation) -> list[JobRequest]:
        """The jobs currently in our application databag (leader only)."""
        return list(codec.decode_bag(relation.data[self._charm.app]).jobs)

    def statuses(self, relation: ops.Relation) -> dict[str, JobStatus]:
        """Every job status the provider units report, merged, by job id."""
        per_unit: list[tuple[JobStatus, ...]] = []
        for unit in relation.units:
            decoded = codec.decode_statuses(relation.data[unit].get(codec.JOBS_KEY))
            if decoded.error:
                logger.error("unit %s published unreadable statuses: %s", unit.name, decoded.error)
            for problem in decoded.problems:
                logger.error("unit %s published an invalid status: %s", unit.name, problem.message)
            per_unit.append(decoded.statuses)
        return merge_statuses(per_unit)

    def provider_errors(self, relation: ops.Relation) -> list[str]:
        """Problems the provider reported about our databag as a whole (for example bad JSON)."""
        errors: list[str] = []
        for unit in sorted(relation.units, key=lambda u: u.name):
            message = relation.data[unit].get(REQUEST_ERROR_KEY)
            if message:
                errors.append(f"{unit.name}: {message}")
        return errors

    def jobs(self, relation: ops.Relation) -> list[TrackedJob]:
        """Our requests on `relation`, each with its latest status (leader only)."""
        statuses = self.statuses(relation)
        return [TrackedJob(job, statuses.get(job.job_id)) for job in self.requests(relation)]

    # ---------------------------------------------------------------- writers

    def request_backup(
        self,
        relation: ops.Relation,
        storage: StorageConfig,
        *,
        kind: BackupKind = BackupKind.FULL,
        compression: bool = True,
        compression_level: int | None = None,
        parent_backup_id: str | None = None,
        databases: Sequence[str] | None = None,
        tables: Sequence[str] | None = None,
        encryption_secret_id: str | None = None,
        description: str | None = None,
        job_id: str | None = None,
    ) -> str:
        """Ask the database application on `relation` for a backup; return the job id."""
        job = JobRequest(
            job_id=job_id or new_job_id(JobType.BACKUP),
            job_type=JobType.BACKUP,
            storage=storage,
            compression=compression,
            backup_kind=kind,
            parent_backup_id=parent_backup_id,
            databases=tuple(databases) if databases else None,
            tables=tuple(tables) if tables else None,
            encryption_secret_id=encryption_secret_id,
            compression_level=compression_level,
            description=description,
            requested_at=format_time(utc_now()),
        )
        return self.submit(relation, job)

    def request_restore(
        self,
        relation: ops.Relation,
        storage: StorageConfig,
        *,
        artefact_path: str,
        backup_id: str | None = None,
        point_in_time: str | None = None,
        compression: bool = True,
        databases: Sequence[str] | None = None,
        tables: Sequence[str] | None = None,
        encryption_secret_id: str | None = None,
        job_id: str | None = None,
    ) -> str:
        """Ask for a restore of the backup at `artefact_path`; return the job id.

        `point_in_time` (RFC 3339 or `latest`) asks for a point-in-time recovery starting
        from that backup.
        """
        job = JobRequest(
            job_id=job_id or new_job_id(JobType.RESTORE),
            job_type=JobType.RESTORE,
            storage=storage,
            compression=compression,
            artefact_path=artefact_path,
            backup_id=backup_id,
            point_in_time=point_in_time,
            databases=tuple(databases) if databases else None,
            tables=tuple(tables) if tables else None,
            encryption_secret_id=encryption_secret_id,
            requested_at=format_time(utc_now()),
        )
        return self.submit(relation, job)

    def submit(self, relation: ops.Relation, job: JobRequest) -> str:
        """Validate `job`, add it to the databag (dropping the oldest finished jobs)."""
        self._require_leader()
        if job.storage.has_inline_keys:
            raise DataValidationError(
                "storage credentials must travel as a Juju secret (credentials-secret-id), "
                "not as databag values"
            )
        tracked = self.jobs(relation)
        if any(t.request.job_id == job.job_id for t in tracked):
            raise DataValidationError(f"job id {job.job_id!r} is already in use")
        in_flight = [t for t in tracked if not t.finished]
        if len(in_flight) >= self._max_in_flight:
            raise TooManyJobsError(
                f"{len(in_flight)} jobs are still in flight on relation {relation.id}; "
                "wait for some to finish"
            )
        kept = self._bounded([*tracked, TrackedJob(job, None)])
        self._write_requests(relation, [t.request for t in kept])
        logger.info(
            "requested %s job %s on relation %s", job.job_type.value, job.job_id, relation.id
        )
        return job.job_id

    def clear_finished(
        self, relation: ops.Relation, job_ids: Iterable[str] | None = None
    ) -> list[str]:
        """Remove finished jobs (all, or only `job_ids`) from the databag; return their ids."""
        self._require_leader()
        wanted = set(job_ids) if job_ids is not None else None
        removed: list[TrackedJob] = []
        kept: list[TrackedJob] = []
        for tracked in self.jobs(relation):
            drop = tracked.finished and (wanted is None or tracked.request.job_id in wanted)
            (removed if drop else kept).append(tracked)
        if removed:
            self._write_requests(relation, [t.request for t in kept])
        return [t.request.job_id for t in removed]

    def set_log_shipping(self, relation: ops.Relation, request: Mapping[str, Any] | None) -> None:
        """Ask the provider to ship binlogs continuously (None or enabled=false stops it)."""
        self._require_leader()
        data = relation.data[self._charm.app]
        if request is None:
            data.pop(LOG_SHIPPING_KEY, None)
            return
        storage = request.get("storage-config")
        if (
            isinstance(storage, Mapping)
            and StorageConfig.from_dict(cast("Mapping[str, Any]", storage)).has_inline_keys
        ):
            raise DataValidationError("log-shipping credentials must travel as a Juju secret")
        schemas.validate(request, schemas.REQUIRER, "log-shipping")
        data[LOG_SHIPPING_KEY] = json.dumps(dict(request), sort_keys=True, separators=(",", ":"))

    def set_cluster_id(self, relation: ops.Relation, cluster_id: str) -> None:
        """Tell the provider the cluster identity its catalog prefix derives from."""
        self._require_leader()
        schemas.validate({codec.JOBS_KEY: "[]", CLUSTER_ID_KEY: cluster_id}, schemas.REQUIRER)
        relation.data[self._charm.app][CLUSTER_ID_KEY] = cluster_id

    # ---------------------------------------------------------------- internals

    def _require_leader(self) -> None:
        if not self._charm.unit.is_leader():
            raise NotLeaderError("only the leader unit can request jobs")

    def _bounded(self, tracked: list[TrackedJob]) -> list[TrackedJob]:
        finished = [t for t in tracked if t.finished]
        drop = {id(t) for t in finished[: max(0, len(finished) - self._max_finished)]}
        return [t for t in tracked if id(t) not in drop]

    def _write_requests(self, relation: ops.Relation, jobs: list[JobRequest]) -> None:
        """Write `jobs`, each CA chain once in `tls-ca-chains` (dropped when none is left)."""
        bag = codec.encode_bag(jobs)
        data = relation.data[self._charm.app]
        data[codec.JOBS_KEY] = bag[codec.JOBS_KEY]
        chains = bag.get(codec.CA_CHAINS_KEY)
        if chains is not None:
            data[codec.CA_CHAINS_KEY] = chains
        elif codec.CA_CHAINS_KEY in data:
            del data[codec.CA_CHAINS_KEY]

    def _on_relation_changed(self, event: ops.RelationEvent) -> None:
        if not self._charm.unit.is_leader():
            return
        relation = event.relation
        seen: dict[str, str] = dict(self._stored.seen)
        decoded = codec.decode_bag(relation.data[self._charm.app])
        requested = {job.job_id for job in decoded.jobs}
        requested |= {problem.job_id for problem in decoded.problems if problem.job_id}
        prefix = f"{relation.id}/"
        for key in [k for k in seen if k.startswith(prefix)]:
            if key[len(prefix) :] not in requested:
                del seen[key]
        for job_id, status in self.statuses(relation).items():
            if job_id not in requested:
                continue
            key = f"{prefix}{job_id}"
            if seen.get(key) == status.status.value:
                continue
            seen[key] = status.status.value
            self._emit(relation, status)
        self._stored.seen = seen

    def _emit(self, relation: ops.Relation, status: JobStatus) -> None:
        if status.status is JobState.RUNNING:
            self.on.job_started.emit(relation, status)
        elif status.status is JobState.SUCCESS:
            self.on.job_succeeded.emit(relation, status)
        else:
            self.on.job_failed.emit(relation, status)
