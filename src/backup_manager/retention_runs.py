"""Retention runs from the manager's hooks: start one in a worker, record it when it ends.

A hook only starts the run (`retention_jobs.start`, no storage request) and returns; a
later hook (`collect`, from reconcile) records the outcome in the history and refreshes
the summary of the backups in storage. Leader only: the leader keeps the history.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import ops

from database_backup.interface import JobStatus, remote_app, utc_now

from . import copying, history, retention_jobs
from .errors import ManagerError
from .locations import Location

if TYPE_CHECKING:
    from .manager import Manager

logger = logging.getLogger(__name__)


def start(
    manager: Manager,
    apps: Sequence[str],
    locations: Sequence[Location],
    *,
    reason: str,
    reindex: bool = False,
) -> history.Record | None:
    """Start retention over those clusters and locations in a worker (leader).

    The hook returns at once (no storage request); `collect` records the outcome in a
    later hook. With `reindex`, each catalog index is rebuilt first.
    """
    config = manager.setup.config
    if config is None or not manager.is_leader or not apps or not locations:
        return None
    records = manager.state.history()
    catalogs = manager.catalogs()
    targets = [(app, catalogs.cluster_of(app), loc) for loc in locations for app in apps]
    record = retention_jobs.start(
        copying.STATE_DIR,
        targets,
        config.retention,
        history.protected_backups(records),
        reindex=reindex,
        reason=reason,
        now=utc_now(),
    )
    records.append(record)
    manager.state.save_history(records)
    logger.info("retention %s started: %s", record.job_id, reason)
    return record


def start_reindex(
    manager: Manager, apps: Sequence[str], locations: Sequence[Location]
) -> history.Record:
    """Start a rebuild of those clusters' catalog indexes in a worker (no deletion)."""
    if not apps:
        raise ManagerError(
            "no database application is related: name one with cluster=<model-uuid>/<app>"
        )
    catalogs = manager.catalogs()
    targets = [(app, catalogs.cluster_of(app), loc) for loc in locations for app in apps]
    records = manager.state.history()
    record = retention_jobs.start(
        copying.STATE_DIR,
        targets,
        manager.usable_setup().config.retention,
        (),
        reindex=True,
        retain=False,
        reason="rebuilding the catalog index (reindex action)",
        now=utc_now(),
    )
    records.append(record)
    manager.state.save_history(records)
    return record


def collect(manager: Manager) -> None:
    """Record the outcome of retention runs that ended (leader, from reconcile).

    The summary of the backups in storage is refreshed from the index of each cluster
    a run went over (two requests each).
    """
    records = manager.state.history()
    ended = retention_jobs.collect(copying.STATE_DIR, records, utc_now())
    if not ended:
        return
    manager.state.save_history(records)
    touched = {target for run in ended for target in run.targets}
    apps = set(manager.apps())
    catalogs = manager.catalogs()
    try:
        for app, name in sorted(touched):
            location = manager.setup.locations.get(name)
            if app not in apps or location is None:
                continue
            try:
                catalogs.view(app, location)  # the recording catalog updates the summary
            except ManagerError as exc:
                logger.warning("backup summary of %s not refreshed: %s", app, exc)
    finally:
        catalogs.close()


def daily(manager: Manager) -> history.Record | None:
    """Once a (UTC) day, from update-status: retention (and an index rebuild) everywhere."""
    today = utc_now().date().isoformat()
    if not manager.is_leader or manager.state.last_retention == today:
        return None
    if not manager.setup.usable:
        return None
    record = start(
        manager,
        manager.apps(),
        list(manager.setup.locations.values()),
        reason="daily retention, with a rebuild of the catalog index",
        reindex=True,
    )
    manager.state.last_retention = today
    return record


def after_job(
    manager: Manager, relation: ops.Relation, status: JobStatus, records: list[history.Record]
) -> None:
    """After a successful backup (not a drill), start retention over its cluster.

    `records` is the history just synced with the job's final status.
    """
    if status.job_type is None or status.job_type.value != "backup" or status.is_drill:
        return  # a drill (C1: a backup job) adds no backup: no retention to apply
    app = remote_app(relation)
    if status.status.value != "success" or app is None:
        return
    record = history.find(records, status.job_id)
    location = manager.setup.locations.get(record.location or "" if record is not None else "")
    location = location or manager.setup.backup_location
    if location is not None:
        start(manager, [app.name], [location], reason=f"after backup {status.job_id}")
