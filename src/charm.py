#!/usr/bin/env python3
"""backup-manager: schedules, catalogs and restores database backups.

The requirer side of `database_backup`: it asks related database applications for
backup and restore jobs and never touches a database itself. This file only observes
events and delegates: the logic lives in the `backup_manager` package.
"""

from __future__ import annotations

import logging

import ops
from object_storage import S3Requirer

from backup_manager import drill_schedule
from backup_manager.actions import Actions
from backup_manager.exporter.server import PORT as EXPORTER_PORT
from backup_manager.manager import Manager
from backup_manager.schedule import DRILL_EVENT_NAME, EVENT_NAME
from database_backup.cos import CosAgentProvider, ScrapeEndpoint
from database_backup.interface import DatabaseBackupRequirer, JobStatusEvent

logger = logging.getLogger(__name__)


class ScheduledBackupEvent(ops.EventBase):
    """Cron dispatched `scheduled-backup` through `juju-exec` on the leader."""


class ScheduledDrillEvent(ops.EventBase):
    """Cron dispatched `scheduled-drill` through `juju-exec` on the leader."""


class ManagerEvents(ops.CharmEvents):
    """The charm's events, with the ones cron dispatches."""

    scheduled_backup = ops.EventSource(ScheduledBackupEvent)
    scheduled_drill = ops.EventSource(ScheduledDrillEvent)


class BackupManagerCharm(ops.CharmBase):
    """Asks related database applications for backups and restores."""

    on = ManagerEvents()  # pyright: ignore[reportAssignmentType]

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.backups = DatabaseBackupRequirer(self, "database-backup")
        self.s3 = S3Requirer(self, "s3")
        self.manager = Manager(self, self.backups, self.s3)
        self.actions = Actions(self.manager)
        self.cos = CosAgentProvider(  # COS: exporter scrape job, alert rules, dashboard
            self,
            endpoints=[ScrapeEndpoint("backup-health", EXPORTER_PORT)],
            metric_prefix="database_backup_",
        )

        for event in (
            self.on.install,
            self.on.upgrade_charm,
            self.on.config_changed,
            self.on.leader_elected,
            self.on.secret_changed,
            self.on["database-backup"].relation_joined,
            self.on["database-backup"].relation_changed,
            self.on["database-backup"].relation_departed,
            self.on["manager-peers"].relation_created,
            self.s3.on.storage_connection_info_changed,
            self.s3.on.storage_connection_info_gone,
        ):
            framework.observe(event, self._reconcile)
        framework.observe(self.on.update_status, self._on_update_status)
        framework.observe(self.on.remove, self._on_remove)
        framework.observe(self.on.scheduled_backup, self._on_scheduled_backup)
        framework.observe(self.on.scheduled_drill, self._on_scheduled_drill)
        framework.observe(self.backups.on.job_started, self._on_job_event)
        framework.observe(self.backups.on.job_succeeded, self._on_job_finished)
        framework.observe(self.backups.on.job_failed, self._on_job_finished)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)

        for name in self.actions.names:
            framework.observe(self.on[name].action, self._on_action)

    def _reconcile(self, _: ops.EventBase) -> None:
        self.manager.reconcile()
        self.manager.update_exporter()

    def _on_update_status(self, _: ops.UpdateStatusEvent) -> None:
        """Reconcile, check storage, catch up a missed scheduled run, daily retention."""
        self.manager.reconcile()
        self.manager.check_storage()
        self.manager.run_schedule()
        drill_schedule.run(self.manager)
        self.manager.daily_retention()
        self.manager.update_exporter()

    def _on_remove(self, _: ops.RemoveEvent) -> None:
        self.manager.remove_cron()
        self.manager.remove_exporter()

    def _on_scheduled_backup(self, _: ScheduledBackupEvent) -> None:
        logger.info("%s dispatched by cron", EVENT_NAME)
        self.manager.run_schedule()

    def _on_scheduled_drill(self, _: ScheduledDrillEvent) -> None:
        logger.info("%s dispatched by cron", DRILL_EVENT_NAME)
        drill_schedule.run(self.manager)

    def _on_job_event(self, event: JobStatusEvent) -> None:
        status = event.status
        app = event.relation.app.name if event.relation.app else "?"
        logger.info(
            "job %s on %s: %s %s", status.job_id, app, status.status.value, status.phase or ""
        )
        self.manager.sync_history()

    def _on_job_finished(self, event: JobStatusEvent) -> None:
        status = event.status
        app = event.relation.app.name if event.relation.app else "?"
        log = logger.info if status.status.value == "success" else logger.error
        log("job %s on %s: %s %s", status.job_id, app, status.status.value, status.message or "")
        self.manager.on_job_finished(event.relation, status)

    def _on_action(self, event: ops.ActionEvent) -> None:
        self.actions.run(event)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        event.add_status(self.manager.status())


if __name__ == "__main__":  # pragma: nocover
    ops.main(BackupManagerCharm)
