"""Events the library emits, for charms that prefer events to getters."""

from __future__ import annotations

from typing import Any

import ops

from . import codec
from .model import JobRequest, JobStatus
from .remote import remote_app


class _RelationJobEvent(ops.EventBase):
    """Base: an event about one job on one relation; survives a defer."""

    def __init__(self, handle: ops.Handle, relation: ops.Relation, job_id: str) -> None:
        super().__init__(handle)
        self.relation = relation
        self.job_id = job_id

    def snapshot(self) -> dict[str, Any]:
        """Save the relation by name and id, and the job id."""
        return {
            "relation_name": self.relation.name,
            "relation_id": self.relation.id,
            "job_id": self.job_id,
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Restore from `snapshot`."""
        relation = self.framework.model.get_relation(
            snapshot["relation_name"], snapshot["relation_id"]
        )
        if relation is None:
            raise ValueError("the relation of a deferred job event is gone")
        self.relation = relation
        self.job_id = snapshot["job_id"]


class JobRequestedEvent(_RelationJobEvent):
    """A job has been assigned to this unit and should start (provider side).

    ops stores every event's snapshot in the charm's state database and hands the charm
    the restored copy, deferred or not. The snapshot holds the job without inline
    credentials (a draft-style requirer's `access-key`/`secret-key`); `restore` reads them
    again from the relation, where the requirer keeps them, so they never reach the disk.
    A CA chain named by id (`tls-ca-chain-id`) comes back resolved from the relation too.
    """

    def __init__(self, handle: ops.Handle, relation: ops.Relation, job: JobRequest) -> None:
        super().__init__(handle, relation, job.job_id)
        self.job = job

    def snapshot(self) -> dict[str, Any]:
        """Save the job's wire form too (without inline credentials)."""
        return {**super().snapshot(), "job": self.job.to_dict()}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Restore from `snapshot`; inline credentials come back from the relation."""
        super().restore(snapshot)
        self.job = _from_relation(self.relation, JobRequest.from_dict(snapshot["job"]))


def _from_relation(relation: ops.Relation, job: JobRequest) -> JobRequest:
    """The relation's copy of `job` (inline keys, CA chain resolved) when it is the same request.

    A job no longer requested, or requested differently, keeps the snapshot's copy (no
    inline keys, no chain): the charm then reports that no credentials were given.
    """
    app = remote_app(relation)
    if app is None:
        return job
    for current in codec.decode_bag(relation.data[app]).jobs:
        if current.job_id != job.job_id:
            continue
        if current.to_dict() == job.to_dict():
            return current
        break
    return job


class JobStatusEvent(_RelationJobEvent):
    """A provider unit reported a job's new status (requirer side)."""

    def __init__(self, handle: ops.Handle, relation: ops.Relation, status: JobStatus) -> None:
        super().__init__(handle, relation, status.job_id)
        self.status = status

    def snapshot(self) -> dict[str, Any]:
        """Save the status's wire form too."""
        return {**super().snapshot(), "status": self.status.to_dict()}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Restore from `snapshot`."""
        super().restore(snapshot)
        self.status = JobStatus.from_dict(snapshot["status"])


class JobStartedEvent(JobStatusEvent):
    """A job is running on a provider unit."""


class JobSucceededEvent(JobStatusEvent):
    """A job finished with `success`."""


class JobFailedEvent(JobStatusEvent):
    """A job finished with `error`; `status.message` says why."""


class DatabaseBackupProviderEvents(ops.ObjectEvents):
    """Events of `DatabaseBackupProvider`."""

    job_requested = ops.EventSource(JobRequestedEvent)


class DatabaseBackupRequirerEvents(ops.ObjectEvents):
    """Events of `DatabaseBackupRequirer`."""

    job_started = ops.EventSource(JobStartedEvent)
    job_succeeded = ops.EventSource(JobSucceededEvent)
    job_failed = ops.EventSource(JobFailedEvent)
