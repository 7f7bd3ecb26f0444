"""Minimal test charms that use the library the way real charms will."""

from __future__ import annotations

import ops

from database_backup.interface import (
    DatabaseBackupProvider,
    DatabaseBackupRequirer,
    JobRequestedEvent,
    JobState,
    JobStatus,
    StorageConfig,
    may_start,
    work_of,
)

REQUIRER_META = {
    "name": "manager",
    "requires": {"database-backup": {"interface": "database_backup"}},
}
REQUIRER_ACTIONS = {
    "backup": {"params": {"secret-id": {"type": "string"}}},
    "restore": {"params": {"secret-id": {"type": "string"}, "path": {"type": "string"}}},
}
PROVIDER_META = {
    "name": "mysql",
    "provides": {"database-backup": {"interface": "database_backup"}},
    "peers": {"mysql-peers": {"interface": "mysql_peers"}},
}
PROVIDER_ACTIONS = {
    "finish": {"params": {"job-id": {"type": "string"}, "outcome": {"type": "string"}}},
}


class RequirerCharm(ops.CharmBase):
    """A backup manager reduced to requests and event logging."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.backups = DatabaseBackupRequirer(self)
        self.seen: list[tuple[str, str, str]] = []
        framework.observe(self.on.backup_action, self._on_backup)
        framework.observe(self.on.restore_action, self._on_restore)
        for event in (
            self.backups.on.job_started,
            self.backups.on.job_succeeded,
            self.backups.on.job_failed,
        ):
            framework.observe(event, self._on_job_event)

    def _storage(self, event: ops.ActionEvent) -> StorageConfig:
        return StorageConfig(bucket="backups", credentials_secret_id=event.params["secret-id"])

    def _on_backup(self, event: ops.ActionEvent) -> None:
        relation = self.backups.relations[0]
        event.set_results({"job-id": self.backups.request_backup(relation, self._storage(event))})

    def _on_restore(self, event: ops.ActionEvent) -> None:
        relation = self.backups.relations[0]
        job_id = self.backups.request_restore(
            relation, self._storage(event), artefact_path=event.params["path"]
        )
        event.set_results({"job-id": job_id})

    def _on_job_event(self, event: ops.EventBase) -> None:
        """Record events so tests can read them from `ctx.emitted_events`."""


class ProviderCharm(ops.CharmBase):
    """A database charm reduced to the library's contract: start = publish running."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.backups = self._provider()
        framework.observe(self.backups.on.job_requested, self._on_job_requested)
        framework.observe(self.on.finish_action, self._on_finish)

    def _provider(self) -> DatabaseBackupProvider:
        """Independent servers: no `replicas=`, every job runs on the leader."""
        return DatabaseBackupProvider(self, peer_relation_name="mysql-peers")

    def _on_job_requested(self, event: JobRequestedEvent) -> None:
        job, relation = event.job, event.relation
        decision = may_start(self.backups.running_work(), work_of(job))
        if decision.allowed:
            status = JobStatus.for_request(job, JobState.RUNNING, phase="streaming")
        else:
            status = JobStatus.for_request(job, JobState.ERROR, message=decision.reason)
        self.backups.publish_status(relation, status)

    def _on_finish(self, event: ops.ActionEvent) -> None:
        for relation in self.backups.relations:
            published = self.backups.published(relation)
            current = published.get(event.params["job-id"])
            if current is None:
                continue
            outcome = JobState(event.params["outcome"])
            done = current.replace(status=outcome, phase="done", message=f"job {outcome.value}")
            self.backups.publish_status(relation, done)


class ReplicatedProviderCharm(ProviderCharm):
    """A replicated cluster: every non-leader unit is a replica (preferred for backups)."""

    def _provider(self) -> DatabaseBackupProvider:
        return DatabaseBackupProvider(
            self, peer_relation_name="mysql-peers", replicas=self._replica_units
        )

    def _replica_units(self) -> list[str]:
        """The peers, as the leader (the only unit that assigns) sees them."""
        peer = self.model.get_relation("mysql-peers")
        return [unit.name for unit in peer.units] if peer is not None else []
