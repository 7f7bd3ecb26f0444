#!/usr/bin/env python3
"""mysql-server: a MySQL (or MariaDB) server that runs backup jobs over `database_backup`.

The provider side of the relation, through the `database_backup` provider library. The
charm runs one unit: its units do not replicate, so the leader runs every job and ships the
binlogs, and other units are blocked (and refuse any job). The leader starts a detached
worker (the engine's command line) for each job and returns at once. The worker
dispatches `job-finished` with `juju-exec` when it ends, so the result is published
immediately; `update-status` is the safety net (and retries a failed install).
This file only wires events: the logic is in the `mysql_provider` package.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import ops
from mysql_provider.service import ProviderService, juju_exec_command
from mysql_provider.workload import Server

from database_backup.cos import CosAgentProvider
from database_backup.interface import DatabaseBackupProvider, JobRequestedEvent

logger = logging.getLogger(__name__)


class JobFinishedEvent(ops.EventBase):
    """A detached job worker ended and dispatched `job-finished` through `juju-exec`."""


class MySQLServerEvents(ops.CharmEvents):
    """The charm's events, with the one job workers dispatch."""

    job_finished = ops.EventSource(JobFinishedEvent)


class MySQLServerCharm(ops.CharmBase):
    """Runs a MySQL server and the backup and restore jobs a backup manager asks for."""

    on = MySQLServerEvents()  # pyright: ignore[reportAssignmentType]

    #: test seams: what runs the server, and how a worker hands back to the charm
    server_factory: Callable[[str], Server] = Server
    notify_command: Callable[[str, Path], list[str] | None] = staticmethod(juju_exec_command)

    def __init__(self, framework: ops.Framework) -> None:
        super().__init__(framework)
        self.backups = DatabaseBackupProvider(
            self, "database-backup", peer_relation_name="mysql-peers"
        )
        self.service = ProviderService(
            self,
            self.backups,
            server_factory=type(self).server_factory,
            notify=type(self).notify_command,
        )
        # COS: the collector this relation brings tails the job log; no rules of its own
        self.cos = CosAgentProvider(
            self, metrics_rules_dir=None, logs_rules_dir=None, dashboard_dirs=()
        )
        for event in (
            self.on.install,
            self.on.config_changed,
            self.on.upgrade_charm,
            self.on.start,
        ):
            framework.observe(event, self._on_configure)
        framework.observe(self.backups.on.job_requested, self._on_job_requested)
        framework.observe(self.on.job_finished, self._on_job_finished)
        framework.observe(self.on.update_status, self._on_update_status)
        endpoint = self.on["database-backup"]
        for event in (
            endpoint.relation_changed,
            endpoint.relation_broken,
            self.on.leader_elected,
            self.on.secret_changed,
        ):
            framework.observe(event, self._on_shipping_inputs)
        framework.observe(self.on.remove, self._on_remove)
        framework.observe(self.on.collect_unit_status, self._on_collect_status)
        for action in self.meta.actions:  # show-jobs, shipping-status, cancel-job
            framework.observe(self.on[action].action, self._on_action)

    def _on_configure(self, _: ops.EventBase) -> None:
        """Install (retrying a failed install), configure and start the server; shipping."""
        self.service.configure()
        self.service.reconcile_shipping()

    def _on_job_requested(self, event: JobRequestedEvent) -> None:
        self.service.on_job_requested(event)

    def _on_job_finished(self, _: JobFinishedEvent) -> None:
        logger.info("a job worker dispatched job-finished")
        self.service.sync()

    def _on_update_status(self, _: ops.UpdateStatusEvent) -> None:
        """Safety net: results nobody dispatched, progress, dead workers, a failed install."""
        self.service.configure()
        self.service.sync()
        self.backups.reconcile()

    def _on_shipping_inputs(self, _: ops.EventBase) -> None:
        self.service.reconcile_shipping()

    def _on_remove(self, _: ops.RemoveEvent) -> None:
        self.service.stop_shipping()

    def _on_action(self, event: ops.ActionEvent) -> None:
        self.service.run_action(event)

    def _on_collect_status(self, event: ops.CollectStatusEvent) -> None:
        event.add_status(self.service.unit_status())


if __name__ == "__main__":  # pragma: nocover
    ops.main(MySQLServerCharm)
