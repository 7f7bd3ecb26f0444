#!/usr/bin/env python3
"""mysql-server: the provider side of `database_backup`.

This is the foundation's skeleton: it wires the provider library so every job gets an
answer. Running jobs (detached workers, the engine) is the provider-charm issue; until
then each job is answered with an explicit error rather than silently dropped.
"""

from __future__ import annotations

import logging

import ops

from database_backup.interface import (
    DatabaseBackupProvider,
    JobRequestedEvent,
    JobState,
    JobStatus,
)

logger = logging.getLogger(__name__)

NOT_YET = "this mysql-server revision cannot run jobs yet (job engine not wired in)"


class MySQLServerCharm(ops.CharmBase):
    """Runs a MySQL server and the backup jobs a backup manager asks for."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.backups = DatabaseBackupProvider(
            self, "database-backup", peer_relation_name="mysql-peers"
        )
        framework.observe(self.backups.on.job_requested, self._on_job_requested)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _on_job_requested(self, event: JobRequestedEvent) -> None:
        status = JobStatus.for_request(event.job, JobState.ERROR, message=NOT_YET)
        self.backups.publish_status(event.relation, status)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        event.add_status(ops.ActiveStatus())


if __name__ == "__main__":  # pragma: nocover
    ops.main(MySQLServerCharm)
