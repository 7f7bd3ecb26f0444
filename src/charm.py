#!/usr/bin/env python3
"""backup-manager: the requirer side of `database_backup`.

This is the foundation's skeleton: it wires the relation library so later work only adds
behaviour (schedule, catalog, actions - see the backup-manager issue).
"""

from __future__ import annotations

import logging

import ops

from database_backup.interface import DatabaseBackupRequirer, JobStatusEvent

logger = logging.getLogger(__name__)


class BackupManagerCharm(ops.CharmBase):
    """Asks related database applications for backups and restores."""

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.backups = DatabaseBackupRequirer(self, "database-backup")
        framework.observe(self.backups.on.job_started, self._on_job_event)
        framework.observe(self.backups.on.job_succeeded, self._on_job_event)
        framework.observe(self.backups.on.job_failed, self._on_job_event)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

    def _on_job_event(self, event: JobStatusEvent) -> None:
        status = event.status
        logger.info(
            "job %s on %s: %s %s",
            status.job_id,
            event.relation.app.name if event.relation.app else "?",
            status.status.value,
            status.message or "",
        )

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        if not self.backups.relations:
            event.add_status(ops.BlockedStatus("relate a database over database-backup"))
        event.add_status(ops.ActiveStatus())


if __name__ == "__main__":  # pragma: nocover
    ops.main(BackupManagerCharm)
