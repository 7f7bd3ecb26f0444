"""Events the library emits, for charms that prefer events to getters."""

from __future__ import annotations

from typing import Any

import ops

from .model import JobRequest, JobStatus


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
    """A job has been assigned to this unit and should start (provider side)."""

    def __init__(self, handle: ops.Handle, relation: ops.Relation, job: JobRequest) -> None:
        super().__init__(handle, relation, job.job_id)
        self.job = job

    def snapshot(self) -> dict[str, Any]:
        """Save the job's wire form too (without inline credentials)."""
        return {**super().snapshot(), "job": self.job.to_dict()}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Restore from `snapshot`."""
        super().restore(snapshot)
        self.job = JobRequest.from_dict(snapshot["job"])


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
